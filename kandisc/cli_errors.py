"""How every command turns failures into exit codes (shared by ``kandisc`` and ``kandisc batch``).

``with user_errors():`` or ``@user_errors()``: a ``KandiscError`` becomes one line on stderr and
exit code 2; Ctrl-C becomes "interrupted" and exit 130. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import typer


@contextmanager
def user_errors():
    from kandisc.errors import KandiscError

    try:
        yield
    except KandiscError as err:
        print(f"error: {err}", file=sys.stderr)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise typer.Exit(130) from None
