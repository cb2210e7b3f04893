"""Run the search's candidates within the time budget: in this process (one job) or in a pool of
worker processes (several), reporting each outcome as it arrives.

Worker processes fork from the server of :mod:`kandisc.search.forkserver`, which has imported
kandisc once, so a worker starts in milliseconds without inheriting the parent's thread pools; each
runs torch on one thread. A shared event tells running candidates to stop once ``on_outcome`` says
the search is done (an exact law was found); candidates that have not started are cancelled, and
the deadline ends the others. Candidates that ``skip`` turns down once an outcome has arrived are
never started either (the search has its law and waits only for a model).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

import numpy as np

from kandisc.gc_policy import collect_rarely
from kandisc.search.forkserver import context
from kandisc.search.plan import Candidate
from kandisc.search.worker import Outcome, run_candidate

_STOP = None  # the worker process's copy of the shared stop event


def _init_worker(stop_event) -> None:
    global _STOP
    import torch

    collect_rarely()

    torch.set_num_threads(1)
    _STOP = stop_event


def _run_in_worker(prep, candidate, train_idx, test_idx, deadline_wall: float) -> Outcome:
    # The parent's monotonic clock means nothing here; the deadline travels as wall time.
    deadline = time.monotonic() + (deadline_wall - time.time())
    return run_candidate(prep, candidate, train_idx, test_idx, deadline, _STOP.is_set)


def run_candidates(
    prep,
    candidates: list[Candidate],
    split: tuple[np.ndarray, np.ndarray],
    budget_s: float,
    jobs: int,
    on_outcome: Callable[[Outcome], bool],
    skip: Callable[[Candidate], bool] = lambda candidate: False,
) -> None:
    """Run ``candidates``; ``on_outcome`` sees each result and returns True to end the search, and
    a candidate not yet started is dropped when ``skip`` says so (it is asked after each outcome)."""
    train_idx, test_idx = split
    if jobs <= 1 or len(candidates) <= 1:
        deadline = time.monotonic() + budget_s
        for candidate in candidates:
            if skip(candidate):
                continue
            if time.monotonic() > deadline:
                on_outcome(Outcome(candidate, "timeout", 0.0, "not started: time budget spent"))
                continue
            if on_outcome(run_candidate(prep, candidate, train_idx, test_idx, deadline)):
                return
        return
    _run_pool(prep, candidates, train_idx, test_idx, budget_s, jobs, on_outcome, skip)


def _run_pool(prep, candidates, train_idx, test_idx, budget_s, jobs, on_outcome, skip) -> None:
    ctx = context()
    stop = ctx.Event()
    deadline_wall = time.time() + budget_s
    with ProcessPoolExecutor(min(jobs, len(candidates)), ctx, initializer=_init_worker, initargs=(stop,)) as pool:
        pending = {pool.submit(_run_in_worker, prep, c, train_idx, test_idx, deadline_wall): c for c in candidates}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                candidate = pending.pop(future)
                if future.cancelled():
                    continue
                error = future.exception()
                outcome = future.result() if error is None else Outcome(candidate, "failed", 0.0, repr(error)[:200])
                if on_outcome(outcome) and not stop.is_set():
                    stop.set()
                    for other in pending:
                        other.cancel()
                for other, queued in pending.items():
                    if skip(queued):
                        other.cancel()  # a no-op once it runs: then it finishes and is reported
