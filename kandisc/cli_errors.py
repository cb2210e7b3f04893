"""How every command turns failures into exit codes (shared by ``kandisc`` and ``kandisc batch``).

``with user_errors():`` or ``@user_errors()``: a ``KandiscError`` becomes one line on stderr and
exit code 2; Ctrl-C, SIGTERM and SIGHUP become "interrupted" and exit 128 + the signal number
(130, 143, 129; see :mod:`kandisc.signals`). Anything else is a bug and keeps its traceback.
:class:`OneLineErrors` does the same for what typer itself refuses (an unknown option, a missing
argument, ``--seed abc``): one line and exit 2 instead of a usage panel.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import typer
from typer.core import TyperGroup

from kandisc import signals

try:  # typer >= 0.20 carries its own copy of click
    from typer._click import exceptions as _click_errors
except ImportError:  # older typer uses click itself
    from click import exceptions as _click_errors

_NO_ARGS_HELP = getattr(_click_errors, "NoArgsIsHelpError", ())  # `kandisc batch` alone: help, as it is


@contextmanager
def user_errors():
    from kandisc.errors import KandiscError

    try:
        with signals.stop_signals():
            yield
    except KandiscError as err:
        print(f"error: {_one_line(str(err))}", file=sys.stderr)
        raise typer.Exit(2) from None
    except KeyboardInterrupt as err:
        signals.mark_reported()
        print(signals.describe(err), file=sys.stderr)
        raise typer.Exit(signals.exit_code(err)) from None


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


class OneLineErrors(TyperGroup):
    """The top-level command group: usage errors and early interrupts as one stderr line."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        with signals.stop_signals(process_exits=True):
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except _NO_ARGS_HELP as err:
                err.show()
                sys.exit(err.exit_code)
            except _click_errors.ClickException as err:
                where = f"; see '{err.ctx.command_path} --help'" if getattr(err, "ctx", None) else ""
                if isinstance(err, _click_errors.NoSuchOption):
                    where += " (a value that starts with '-' goes after '--', e.g. kandisc compile -- '-x*y')"
                message = _one_line(err.format_message()).rstrip(".")
                message = message if len(message) <= 300 else message[:297] + "..."  # a 10000-character token
                print(f"error: {message}{where}", file=sys.stderr)
                sys.exit(err.exit_code)
            except typer.Abort:
                print("error: aborted (end of input)", file=sys.stderr)
                sys.exit(1)
            signum = signals.take_unreported()  # a signal before a command's own handling began
        if signum is not None:
            print(signals.describe(signals.Interrupted(signum)), file=sys.stderr)
            sys.exit(128 + signum)
        sys.exit(code if isinstance(code, int) else 0)
