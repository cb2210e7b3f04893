"""``time_limited``: a call given a wall-clock limit, with a fallback (SIGALRM; nestable).

sympy's expand and simplify can run for minutes on a messy formula; the snapping steps of
``symbolic.simplify`` run under these limits.
"""

from __future__ import annotations

import signal
import threading
import time


class _OutOfTime(Exception):
    pass


_deadlines: list[float] = []  # the limits of the time_limited calls now running, outermost first


def time_limited(compute, seconds: float, fallback):
    """``compute()``, or ``fallback()`` when it has not returned after ``seconds``.

    The limit is a SIGALRM timer, so it needs the main thread (each search worker is one);
    elsewhere ``compute`` runs unlimited. Calls nest: an inner limit never outlasts the outer one,
    and the outer one's time running out inside the inner call ends the outer call.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return compute()
    now = time.monotonic()
    deadline = min([now + seconds, *_deadlines])

    def give_up(signum, frame):
        raise _OutOfTime

    previous = signal.signal(signal.SIGALRM, give_up)
    _deadlines.append(deadline)
    signal.setitimer(signal.ITIMER_REAL, max(deadline - now, 1e-3))
    try:
        return compute()
    except _OutOfTime:
        if len(_deadlines) > 1 and time.monotonic() >= _deadlines[-2]:
            raise  # the outer call's time is up too: it falls back
        return fallback()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _deadlines.pop()
        signal.signal(signal.SIGALRM, previous)
        if _deadlines:  # the outer call's timer again, for what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(_deadlines[-1] - time.monotonic(), 1e-3))
