"""Running manifest rows: one row (:func:`run_one`, idempotent) and a local process pool (:func:`run_batch`).

``run_one`` calls the same :func:`kandisc.api.fit_run` as ``kandisc fit``. It skips a row whose
``run.json`` says ``completed``, resumes one that was ``interrupted`` (or left ``running`` by a
killed process: a preempted Slurm task) with :func:`kandisc.api.resume_run`, from its last stage
checkpoint when its config writes them, and redoes anything else; a fit that raises is recorded as ``failed``
in ``run.json`` (written here when the fit could not write one) so that ``batch status`` sees it.
A row refused by validation (bad data, config or override: the fit never started) whose run
directory does not exist yet writes nothing: like ``kandisc fit``, bad input leaves no half-made run
directory (its Outcome says ``invalid``); an existing run directory gets the failure recorded.

``run_batch`` uses a ``spawn`` process pool (forking a process that holds torch threads is fragile);
each worker pins its thread count through ``OMP_NUM_THREADS`` & co. before torch is imported. Idle
workers ignore SIGINT; on Ctrl-C the parent cancels what has not started, interrupts what runs (each
fit marks its run ``interrupted``) and re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kandisc.batch.manifest import Row, atomic_write_text
from kandisc.errors import ConfigError, KandiscError
from kandisc.gc_policy import collect_rarely

FitFn = Callable[..., Any]
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class Outcome:
    """What happened to one row: completed, skipped (already completed), failed, interrupted, cancelled."""

    index: int
    status: str
    run_dir: Path
    error: str | None = None
    wall_seconds: float = 0.0
    invalid: bool = False  # refused before the fit started (bad input): nothing was written


def read_run_json(run_dir: Path) -> dict | None:
    """The run's ``run.json`` as a dict; None when absent, ``{"status": "unreadable"}`` when corrupt."""
    path = run_dir / "run.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: bad JSON and bytes that are not UTF-8
        return {"status": "unreadable", "error": f"cannot parse {path}"}
    return data if isinstance(data, dict) else {"status": "unreadable", "error": f"{path} is not an object"}


def run_status(run_dir: Path) -> str | None:
    info = read_run_json(run_dir)
    return None if info is None else str(info.get("status", "unreadable"))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")  # as run.json has it


def _record(row: Row, status: str, error: str, t0: float, started: str, before: dict | None = None) -> None:
    """Record the end of an attempt in run.json, unless the fit already recorded it there.

    ``before`` is run.json as it was when the attempt began: an unchanged file is a stale record
    of an earlier attempt and is replaced, not trusted.
    """
    info = read_run_json(row.run_dir)
    fresh = info is not None and info != before and info.get("status") != "unreadable"
    if fresh and info.get("status") in ("failed", "interrupted"):
        return
    if not fresh:
        info = {"run_id": row.run_dir.name, "seed": row.seed, "data": {"path": str(row.data)}}
        info.update(start_time=started, wall_seconds=None)
    info.update(status=status, end_time=_now(), error=error, recorded_by="kandisc batch run-one")
    if info.get("wall_seconds") is None:
        info["wall_seconds"] = round(time.monotonic() - t0, 3)
    atomic_write_text(row.run_dir / "run.json", json.dumps(info, indent=2) + "\n")


def _default_fit() -> FitFn:
    from kandisc.api import fit_run  # lazy: pulls in torch

    return fit_run


def _attempt(row: Row, fit: FitFn | None, status: str | None) -> Any:
    """Resume an interrupted row in place and redo the others; a ``fit`` given by the caller (another
    fit function) always starts over, since only kandisc's own runs can be resumed."""
    if fit is None and status in ("interrupted", "running") and (row.run_dir / "config.yaml").is_file():
        from kandisc.api import resume_run

        return resume_run(row.run_dir)
    return (fit or _default_fit())(
        row.data, config=row.config, out=row.run_dir, overrides=list(row.overrides), seed=row.seed, overwrite=True
    )


def run_one(row: Row, fit: FitFn | None = None) -> Outcome:
    """Run one manifest row exactly as ``kandisc fit`` would; skip it if already completed.

    The row's overrides are applied on top of its config: a no-op for planned rows (their resolved
    configs include them), what makes hand-written rows work.
    """
    status = run_status(row.run_dir)
    if status == "completed":
        return Outcome(row.index, "skipped", row.run_dir)
    t0, started, before = time.monotonic(), _now(), read_run_json(row.run_dir)
    existed = row.run_dir.is_dir()
    try:
        result = _attempt(row, fit, status)
    except KeyboardInterrupt:
        _record(row, "interrupted", "interrupted by the user", t0, started, before)
        raise
    except KandiscError as exc:
        if not existed and read_run_json(row.run_dir) is None:  # refused by validation, no folder to record in
            return Outcome(row.index, "failed", row.run_dir, str(exc), time.monotonic() - t0, invalid=True)
        _record(row, "failed", str(exc), t0, started, before)
        return Outcome(row.index, "failed", row.run_dir, str(exc), time.monotonic() - t0)
    except Exception as exc:  # a bug in one fit must not take the batch down; keep its traceback
        traceback.print_exc(file=sys.stderr)
        msg = f"{type(exc).__name__}: {exc}"
        _record(row, "failed", msg, t0, started, before)
        return Outcome(row.index, "failed", row.run_dir, msg, time.monotonic() - t0)
    status = getattr(result, "status", None) or run_status(row.run_dir) or "completed"
    error = None
    if status != "completed":
        error = (read_run_json(row.run_dir) or {}).get("error") or f"fit ended with status {status}"
    return Outcome(row.index, str(status), row.run_dir, error, time.monotonic() - t0)


# --------------------------------------------------------------------------- process pool


def available_cores() -> int:
    """Cores this process may use (the Slurm/cgroup affinity mask, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


def check_resources(jobs: int, threads: int, oversubscribe: bool = False) -> None:
    if jobs < 1 or threads < 1:
        raise ConfigError("--jobs and --threads-per-job must be at least 1")
    cores = available_cores()
    if jobs * threads > cores and not oversubscribe:
        raise ConfigError(
            f"--jobs {jobs} x --threads-per-job {threads} = {jobs * threads} threads exceeds the "
            f"{cores} cores available; lower them or pass --oversubscribe"
        )


_CANCEL: Any = None  # the parent's cancel Event, set in each worker by _init_worker


def _init_worker(threads: int, cancel: Any) -> None:
    global _CANCEL
    _CANCEL = cancel
    collect_rarely()
    for var in THREAD_VARS:  # read by torch/OpenMP when they initialise, so before torch is imported
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # idle workers survive Ctrl-C; jobs re-enable it


def _interrupt_once(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the interrupt handling
    raise KeyboardInterrupt


def _pool_job(row: Row, fit: FitFn | None) -> Outcome:
    signal.signal(signal.SIGINT, _interrupt_once)  # before the cancel check: no lost interrupt
    try:
        if _CANCEL is not None and _CANCEL.is_set():
            return Outcome(row.index, "cancelled", row.run_dir)
        return run_one(row, fit)
    except KeyboardInterrupt:
        return Outcome(row.index, "interrupted", row.run_dir, "interrupted by the user")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _broken(row: Row, exc: BaseException) -> Outcome:
    msg = f"worker process died ({type(exc).__name__}: {exc}); out of memory?"
    if run_status(row.run_dir) == "running":
        _record(row, "failed", msg, time.monotonic(), _now())
    return Outcome(row.index, "failed", row.run_dir, msg)


def run_batch(
    rows: Sequence[Row],
    jobs: int,
    threads: int = 1,
    fit: FitFn | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Run every row in a pool of ``jobs`` processes; completed rows are skipped without a worker.

    ``fit`` must be picklable (a module-level function) since it travels to spawned workers.
    Raises KeyboardInterrupt after a clean stop when the user presses Ctrl-C.
    """
    outcomes: list[Outcome] = []

    def done(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)

    todo = []
    for row in rows:
        if run_status(row.run_dir) == "completed":
            done(Outcome(row.index, "skipped", row.run_dir))
        else:
            todo.append(row)
    if not todo:
        return outcomes
    ctx = multiprocessing.get_context("spawn")
    cancel = ctx.Event()
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(threads, cancel)
    )
    futures: dict[Future, Row] = {pool.submit(_pool_job, row, fit): row for row in todo}
    try:
        for fut in as_completed(futures):
            try:
                done(fut.result())
            except Exception as exc:  # BrokenProcessPool: a worker was killed (OOM, segfault)
                done(_broken(futures[fut], exc))
    except KeyboardInterrupt:
        _stop(pool, futures, cancel)
        raise
    pool.shutdown(wait=True)
    return outcomes


def _stop(pool: ProcessPoolExecutor, futures: dict[Future, Row], cancel: Any) -> None:
    cancel.set()  # first, so that a worker picking up a queued job sees it
    for fut in futures:
        fut.cancel()
    # A terminal's Ctrl-C reaches the whole process group; a `kill -INT` of the parent does not.
    for pid in list(getattr(pool, "_processes", None) or {}):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGINT)
    pool.shutdown(wait=True, cancel_futures=True)
