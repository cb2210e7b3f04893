"""The ``kandisc`` console script (and ``python -m kandisc``): stop signals handled from the start.

Importing the CLI (typer, rich) takes a noticeable moment; a Ctrl-C or SIGTERM in it should end
the command as "interrupted" like any later one, not with a traceback or, where the parent ignored
SIGINT, not at all. So the handlers of :mod:`kandisc.signals` go in before anything heavy.
"""

from __future__ import annotations

import sys


def main() -> None:
    from kandisc import signals

    with signals.stop_signals(process_exits=True):
        try:
            from kandisc.cli import main as cli_main
        except KeyboardInterrupt as err:
            print(signals.describe(err), file=sys.stderr)
            sys.exit(signals.exit_code(err))
        cli_main()
