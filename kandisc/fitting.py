"""One ``kandisc fit`` run end to end: validate, create the run directory, fit, write the results.

``fit_run`` prepares everything first (bad input loses nothing), then either runs the config's
``pipeline`` once or, when the config names none, the discovery search (:mod:`kandisc.search`),
and hands the resulting state to :func:`kandisc.pipeline.finalize.finalize_run`. Every file is
written atomically, run.json tracks the status, and Ctrl-C / errors leave a marked, usable run.
``resume_run(run_dir)`` continues an interrupted run in place (``kandisc fit --resume``).
``fit_prepared(prep, out=None)`` runs the same fit in memory (the notebook estimator): it stops
after :func:`kandisc.pipeline.finalize.summarize_fit` and writes nothing.
"""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kandisc import __version__
from kandisc.errors import RunDirError
from kandisc.io.config import OptionOverride, config_to_yaml
from kandisc.io.data import split
from kandisc.io.model_file import save_model
from kandisc.io.rundir import METRICS_COLUMNS, RunDir, default_run_dir
from kandisc.pipeline.checkpoint import latest_checkpoint, restore_state, save_checkpoint
from kandisc.pipeline.finalize import finalize_run, summarize_fit
from kandisc.pipeline.runner import Prepared, build_bundle, model_space_data, prepare
from kandisc.pipeline.stages import run_pipeline
from kandisc.pipeline.state import NullSink, ProgressSink, RunState, StageReport
from kandisc.train import StepRecord


@dataclass
class FitResult:
    run_dir: Path | None  # None: fitted in memory, nothing written
    status: str
    summary: dict = field(default_factory=dict)
    reports: list[StageReport] = field(default_factory=list)
    state: RunState | None = None  # the fitted model (state.bundle), its data and formulas
    split: tuple | None = None  # (train rows, test rows) of the table
    metrics: list[dict] = field(default_factory=list)  # every optimiser step: the rows of metrics.csv


class MetricsSink:
    """Forwards progress to the caller's sink and keeps every step (``rows``), also in metrics.csv
    when given its ``writer``."""

    def __init__(self, writer, inner: ProgressSink):
        self.writer, self.inner = writer, inner
        self.global_step = 0
        self.rows: list[dict] = []

    def stage_started(self, label: str, total_steps: int) -> None:
        self.inner.stage_started(label, total_steps)

    def step(self, label: str, record: StepRecord, global_step: int, n_edges: int) -> None:
        self.global_step = global_step
        values = (global_step, label, record.train_loss, record.test_loss, record.reg, n_edges)
        self.rows.append(dict(zip(METRICS_COLUMNS, values, strict=True)))
        if self.writer is not None:
            self.writer.write(*values)
        self.inner.step(label, record, global_step, n_edges)

    def stage_finished(self, label: str, report: StageReport) -> None:
        self.inner.stage_finished(label, report)


def _versions() -> dict:
    return {
        "kandisc": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def fit_run(
    data: Path | str,
    config=None,
    out: Path | None = None,
    overrides=(),
    seed: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: ProgressSink | None = None,
    argv: list[str] | None = None,
) -> FitResult:
    """Validate, fit (one pipeline or the search), write the run directory; see the module docstring.

    ``config``: a YAML path, a mapping of the same keys, a ``KandiscConfig`` or None (defaults).
    """
    sets = (
        list(overrides)
        + ([OptionOverride("seed", seed, "--seed")] if seed is not None else [])
        + ([OptionOverride("device", device, "--device")] if device is not None else [])
    )
    prep = prepare(Path(data), config, sets)
    out = Path(out) if out else default_run_dir(data, config_to_yaml(prep.cfg), prep.table.sha256)
    return fit_prepared(prep, out, overwrite, progress, argv, overrides)


def fit_prepared(
    prep: Prepared,
    out: Path | str | None = None,
    overwrite: bool = False,
    progress: ProgressSink | None = None,
    argv: list[str] | None = None,
    overrides=(),
) -> FitResult:
    """Fit a prepared run (:func:`kandisc.pipeline.runner.prepare` or ``prepare_table``) into the
    run directory ``out``, or with ``out=None`` in memory: the same fit, and nothing written."""
    run = RunDir.create(Path(out), overwrite=overwrite) if out is not None else None
    with _threads(prep):
        if run is None:
            return _run_in_memory(prep, progress or NullSink())
        return _run(run, prep, overrides, progress or NullSink(), argv)


@contextlib.contextmanager
def _threads(prep: Prepared):
    """torch's thread count for this fit (``threads:`` or the size rule below), restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(prep.cfg.threads or _default_threads(prep))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _default_threads(prep: Prepared) -> int:
    """Small KANs run faster on one thread (per-op overhead dominates); big ones use torch's default."""
    widths = [w if isinstance(w, int) else sum(w) for w in prep.width]
    edges = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    rows = prep.table.n_rows
    return 1 if edges * rows * (prep.cfg.model.grid + prep.cfg.model.k) < 5e7 else torch.get_num_threads()


def _initial_state(prep: Prepared, split_idx, sink) -> RunState:
    train_idx, test_idx = split_idx
    bundle = build_bundle(prep, train_idx)
    dataset = model_space_data(bundle, prep.x_all, prep.y, train_idx, test_idx)
    generator = torch.Generator().manual_seed(prep.cfg.seed)
    state = RunState(bundle, dataset, generator, sink, aux_exprs=prep.aux_exprs, task=prep.task)
    state.shape_history.append(bundle.model.spec.display_width())
    return state


def _fit_state(
    prep: Prepared, split_idx, sink, best_so_far: list, run=None, checkpoint: tuple | None = None
) -> tuple[RunState, Prepared]:
    """The config's pipeline once, or (pipeline: null) the discovery search; ``best_so_far`` gets
    the state worth saving on Ctrl-C (the pipeline's own, the search's best finished candidate).
    ``checkpoint`` (index, stage, path): resume the pipeline after that stage.
    Returns the state and the prepared run it belongs to (the search's winner has its own inputs)."""
    if prep.cfg.pipeline is None:
        from kandisc.search.driver import search

        return search(prep, split_idx, sink, best_so_far)
    if checkpoint is None:
        state, first = _initial_state(prep, split_idx, sink), 1
    else:
        stages = [item.stage for item in prep.cfg.pipeline]
        state, first = restore_state(prep, split_idx, sink, checkpoint[2], stages), checkpoint[0] + 1
    best_so_far.append(state)
    if run is not None and prep.cfg.output.checkpoints:  # the model after every stage
        state.on_stage_end = lambda index, stage: save_checkpoint(
            state, index, stage, run.checkpoint_path(index, stage)
        )
    run_pipeline(state, prep.cfg.pipeline, first)
    if prep.cfg.units:  # every formula returned is dimensionally consistent, as in the search
        from kandisc.pipeline.units_check import drop_inconsistent  # sympy: not before training

        names = list(prep.model_inputs)
        dropped = drop_inconsistent(state.formulas, prep.cfg.units, names, state.aux_exprs)
        note = f"{dropped} dimensionally inconsistent formula(s) dropped" if dropped else ""
        state.reports.append(StageReport("units", "units", "ok", {"dropped_inconsistent": dropped}, note))
    return state, prep


def _checkpoint_steps(checkpoint: tuple | None) -> int:
    """Optimiser steps done before the checkpoint: metrics.csv keeps its rows up to there."""
    if checkpoint is None:
        return 0
    from kandisc.io.model_file import load_model

    return int(load_model(checkpoint[2]).extras.get("resume", {}).get("global_step", 0))


def _run_in_memory(prep: Prepared, progress: ProgressSink) -> FitResult:
    start = time.monotonic()
    split_idx = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    sink = MetricsSink(None, progress)
    state, prep = _fit_state(prep, split_idx, sink, [])
    summary = summarize_fit(prep, state, split_idx[1], split_idx[0]).summary
    summary["wall_seconds"] = round(time.monotonic() - start, 3)
    return FitResult(None, "completed", summary, state.reports, state, split_idx, sink.rows)


def resume_run(run_dir: Path | str, progress: ProgressSink | None = None, argv: list[str] | None = None) -> FitResult:
    """Continue an interrupted run in place (``kandisc fit --resume RUN_DIR``) with its own config.yaml
    and data: an explicit pipeline from the stage after its last checkpoint (the same formulas and
    metrics as a run that never stopped), from its start without checkpoints; the discovery search
    (pipeline: null) is run again from the start (its time budget makes it a new search anyway)."""
    run = RunDir.resume(run_dir)
    info = run.info
    data = Path(str((info.get("data") or {}).get("path") or ""))
    if not data.is_file():
        raise RunDirError(f"{run_dir}: its data {data} is not a file any more; restore it to --resume")
    prep = prepare(data, run.path / "config.yaml", [])
    if prep.table.sha256 != (info.get("data") or {}).get("sha256"):
        raise RunDirError(f"{data} changed since run {run_dir} started; resume needs the same data (or start anew)")
    checkpoint = None
    if prep.cfg.pipeline is not None and prep.cfg.output.checkpoints:
        checkpoint = latest_checkpoint(run.path / "checkpoints")
    with _threads(prep):
        return _run(run, prep, info.get("overrides") or [], progress or NullSink(), argv, checkpoint)


def _run(run: RunDir, prep: Prepared, overrides, progress: ProgressSink, argv, checkpoint=None) -> FitResult:
    cfg = prep.cfg
    data = prep.table.path  # a CSV, or the label of in-memory arrays
    resumed = run.info.get("status") is not None
    if not resumed:
        run.write_config(config_to_yaml(cfg))
    extra = {"device": prep.device, "overrides": list(overrides)}
    if resumed:
        extra["resumed_after_stage"] = checkpoint[0] if checkpoint else 0
    run.start(
        list(argv) if argv is not None else ["kandisc.fit_run", str(data)],
        cfg.seed,
        data.resolve() if data.is_file() else data,
        prep.table.sha256,
        _versions(),
        extra=extra,
    )
    state = None
    best_so_far: list[RunState] = []  # what to keep on Ctrl-C (see _fit_state)
    try:
        split_idx = split(prep.table, cfg.data.test_fraction, cfg.seed)
        keep_steps = _checkpoint_steps(checkpoint) if resumed else None
        with run.metrics_writer(keep_steps) as writer:
            sink = MetricsSink(writer, progress)
            state, prep = _fit_state(prep, split_idx, sink, best_so_far, run, checkpoint)
        summary = finalize_run(run, prep, state, split_idx[1], split_idx[0])
        run.finish("completed")
        return FitResult(run.path, "completed", summary, state.reports, state, split_idx, sink.rows)
    except KeyboardInterrupt:
        kept = state if state is not None else (best_so_far[-1] if best_so_far else None)
        if kept is not None:
            save_model(kept.bundle, run.model_path)
        run.finish("interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except BaseException as err:
        run.finish("failed", f"{type(err).__name__}: {err}")
        raise
