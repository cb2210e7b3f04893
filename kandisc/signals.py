"""Stop signals as interrupts: SIGINT, SIGTERM and SIGHUP end a command the way Ctrl-C does.

Inside :func:`stop_signals` each of them raises :class:`Interrupted` (a ``KeyboardInterrupt``), so
a fit saves its last model and marks its run ``interrupted`` whichever way it was stopped (Slurm's
``scancel`` and time limit send SIGTERM; closing a terminal sends SIGHUP). The exit code is the
shell's 128 + signal number: 130, 143, 129.

The first signal starts the clean-up; later ones are ignored until the command ends, so pressing
Ctrl-C twice cannot cut the saving of the model or of run.json short. The handlers are installed
even when the parent ignored SIGINT (a background job of a script): an explicit ``kill -INT`` is a
request to stop. SIGHUP is left alone when it was ignored at start: ``nohup`` asked for that.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_received: list[int] = []  # signals that interrupted the current command and were not yet reported
_count = [0]  # stop signals handled in this process


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``exit_code`` is 128 + its number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


def exit_code(err: BaseException) -> int:
    """130 for a plain Ctrl-C (KeyboardInterrupt), 128 + the signal number for a stop signal."""
    return getattr(err, "exit_code", 130)


def describe(err: BaseException) -> str:
    """The one stderr line for an interrupt, e.g. ``interrupted (SIGTERM)``."""
    signum = getattr(err, "signum", signal.SIGINT)
    return "interrupted" if signum == signal.SIGINT else f"interrupted ({signal.Signals(signum).name})"


def take_unreported() -> int | None:
    """The signal that interrupted the command if nobody reported it yet (then it counts as reported)."""
    return _received.pop() if _received else None


def mark_reported() -> None:
    _received.clear()


def _interrupt(signum: int, frame: object) -> None:
    for sig in _SIGNALS:  # one interrupt per command: the clean-up it starts must run to its end
        if signal.getsignal(sig) is _interrupt:
            signal.signal(sig, signal.SIG_IGN)
    _received[:] = [signum]
    _count[0] += 1
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_signals(process_exits: bool = False) -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into :class:`Interrupted` for the body; restores the handlers after.

    ``process_exits``: the caller exits the process right after; once interrupted, the signals stay
    ignored so that a second Ctrl-C cannot break the interpreter's own shutdown.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {}
    for sig in _SIGNALS:
        old = signal.getsignal(sig)
        if old is _interrupt or (sig == getattr(signal, "SIGHUP", None) and old is signal.SIG_IGN):
            continue  # an outer stop_signals already handles it / nohup
        previous[sig] = old
        signal.signal(sig, _interrupt)
    before = _count[0]
    try:
        yield
    finally:
        if process_exits and _count[0] != before:
            previous.clear()
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
