"""The parent of the search's worker processes: a ``forkserver`` that imports kandisc once.

Workers fork from it in milliseconds and inherit none of the main process's thread pools. Starting
it takes as long as importing torch and kandisc (about 3 s here), so ``kandisc fit`` starts it as
soon as the config says a search with several jobs will run (``start_early``): its imports then
overlap the main process's own instead of delaying the first candidate. This module imports only
the standard library, so that call costs nothing on the way to training.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver

_PRELOAD = ["kandisc.search.worker"]


def default_jobs() -> int:
    """Every core this process may use (the search's default ``jobs``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def context():
    """The multiprocessing context the search's pool uses (its server preloads the worker module)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def start_early(cfg) -> None:
    """Start the forkserver now if ``cfg`` (a ``KandiscConfig``) runs the search with several jobs;
    the pool created later reuses it, and it exits with this process."""
    if cfg.pipeline is None and (cfg.search.jobs or default_jobs()) > 1:
        context()
        forkserver.ensure_running()
