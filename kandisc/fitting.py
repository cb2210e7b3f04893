"""One ``kandisc fit`` run end to end: validate, create the run directory, fit, write the results.

``fit_run`` prepares everything first (bad input loses nothing), then either runs the config's
``pipeline`` once or, when the config names none, the discovery search (:mod:`kandisc.search`),
and hands the resulting state to :func:`kandisc.pipeline.finalize.finalize_run`. Every file is
written atomically, run.json tracks the status, and Ctrl-C / errors leave a marked, usable run.
``fit_prepared(prep, out=None)`` runs the same fit in memory (the notebook estimator): it stops
after :func:`kandisc.pipeline.finalize.summarize_fit` and writes nothing.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kandisc import __version__
from kandisc.io.config import config_to_yaml
from kandisc.io.data import split
from kandisc.io.model_file import save_model
from kandisc.io.rundir import METRICS_COLUMNS, RunDir, default_run_dir
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
        + ([f"seed={seed}"] if seed is not None else [])
        + ([f"device={device}"] if device is not None else [])
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
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(prep.cfg.threads or _default_threads(prep))
    try:
        if run is None:
            return _run_in_memory(prep, progress or NullSink())
        return _run(run, prep, overrides, progress or NullSink(), argv)
    finally:
        torch.set_num_threads(previous_threads)


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


def _fit_state(prep: Prepared, split_idx, sink, best_so_far: list, run=None) -> tuple[RunState, Prepared]:
    """The config's pipeline once, or (pipeline: null) the discovery search; ``best_so_far`` gets
    the state worth saving on Ctrl-C (the pipeline's own, the search's best finished candidate).
    Returns the state and the prepared run it belongs to (the search's winner has its own inputs)."""
    if prep.cfg.pipeline is None:
        from kandisc.search.driver import search

        return search(prep, split_idx, sink, best_so_far)
    state = _initial_state(prep, split_idx, sink)
    best_so_far.append(state)
    if run is not None and prep.cfg.output.checkpoints:  # the model after every stage
        state.on_stage_end = lambda index, stage: save_model(state.bundle, run.checkpoint_path(index, stage))
    run_pipeline(state, prep.cfg.pipeline)
    return state, prep


def _run_in_memory(prep: Prepared, progress: ProgressSink) -> FitResult:
    start = time.monotonic()
    split_idx = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    sink = MetricsSink(None, progress)
    state, prep = _fit_state(prep, split_idx, sink, [])
    summary = summarize_fit(prep, state, split_idx[1], split_idx[0]).summary
    summary["wall_seconds"] = round(time.monotonic() - start, 3)
    return FitResult(None, "completed", summary, state.reports, state, split_idx, sink.rows)


def _run(run: RunDir, prep: Prepared, overrides, progress: ProgressSink, argv) -> FitResult:
    cfg = prep.cfg
    data = prep.table.path  # a CSV, or the label of in-memory arrays
    run.write_config(config_to_yaml(cfg))
    run.start(
        list(argv) if argv is not None else ["kandisc.fit_run", str(data)],
        cfg.seed,
        data.resolve() if data.is_file() else data,
        prep.table.sha256,
        _versions(),
        extra={"device": prep.device, "overrides": list(overrides)},
    )
    state = None
    best_so_far: list[RunState] = []  # what to keep on Ctrl-C (see _fit_state)
    try:
        split_idx = split(prep.table, cfg.data.test_fraction, cfg.seed)
        with run.metrics_writer() as writer:
            sink = MetricsSink(writer, progress)
            state, prep = _fit_state(prep, split_idx, sink, best_so_far, run)
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
