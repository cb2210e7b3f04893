"""The ``kandisc`` console script (and ``python -m kandisc``): stop signals handled from the start,
and an exit without the interpreter's teardown.

Importing the CLI (typer, rich) takes a noticeable moment; a Ctrl-C or SIGTERM in it should end
the command as "interrupted" like any later one, not with a traceback or, where the parent ignored
SIGINT, not at all. So the handlers of :mod:`kandisc.signals` go in before anything heavy.

The garbage collector runs rarely (:mod:`kandisc.gc_policy`): with torch, sympy and matplotlib
loaded, each full collection walks millions of objects.

Once the command has returned, every result is written and closed; what is left is the
interpreter's teardown of torch, sympy, pandas and matplotlib, about half a second of every
command (more than the whole ``kandisc --version``). :func:`exit_now` skips it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def main() -> None:
    from kandisc import gc_policy, signals

    gc_policy.collect_rarely()
    with signals.stop_signals(process_exits=True):
        try:
            try:
                from kandisc.cli import main as cli_main
            except KeyboardInterrupt as err:
                print(signals.describe(err), file=sys.stderr)
                sys.exit(signals.exit_code(err))
            cli_main()
        except SystemExit as stop:
            code = stop.code
        else:
            code = 0
    exit_now(code)


def exit_now(code: int | str | None) -> NoReturn:
    """End the process with ``code`` (``sys.exit``'s meaning) without tearing the interpreter down.

    The exit handlers still run first (``atexit``: multiprocessing's children, logging, temporary
    folders) and the output streams are flushed. A thread still working (not a daemon) makes this
    the normal exit, which waits for it; so does a profiler or debugger (``python -m cProfile -m
    kandisc ...`` writes its statistics after the command, not in an exit handler).
    """
    working = any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread())
    if working or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (kandisc ... | head): nothing to keep
            stream.flush()
    os._exit(code)
