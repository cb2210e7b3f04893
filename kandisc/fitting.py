"""One ``kandisc fit`` run end to end: validate, create the run directory, fit, write the results.

``fit_run`` prepares everything first (bad input loses nothing), then either runs the config's
``pipeline`` once or, when the config names none, the discovery search (:mod:`kandisc.search`),
and hands the resulting state to :func:`kandisc.pipeline.finalize.finalize_run`. Every file is
written atomically, run.json tracks the status, and Ctrl-C / errors leave a marked, usable run.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kandisc import __version__
from kandisc.io.config import config_to_yaml
from kandisc.io.data import split
from kandisc.io.model_file import save_model
from kandisc.io.rundir import RunDir, default_run_dir
from kandisc.pipeline.finalize import finalize_run
from kandisc.pipeline.runner import Prepared, build_bundle, model_space_data, prepare
from kandisc.pipeline.stages import run_pipeline
from kandisc.pipeline.state import NullSink, ProgressSink, RunState, StageReport
from kandisc.train import StepRecord


@dataclass
class FitResult:
    run_dir: Path
    status: str
    summary: dict = field(default_factory=dict)
    reports: list[StageReport] = field(default_factory=list)


class MetricsSink:
    """Forwards progress to the caller's sink and appends every step to metrics.csv."""

    def __init__(self, writer, inner: ProgressSink):
        self.writer, self.inner = writer, inner
        self.global_step = 0

    def stage_started(self, label: str, total_steps: int) -> None:
        self.inner.stage_started(label, total_steps)

    def step(self, label: str, record: StepRecord, global_step: int, n_edges: int) -> None:
        self.global_step = global_step
        self.writer.write(global_step, label, record.train_loss, record.test_loss, record.reg, n_edges)
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
    data: Path,
    config=None,
    out: Path | None = None,
    overrides=(),
    seed: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: ProgressSink | None = None,
    argv: list[str] | None = None,
) -> FitResult:
    """Validate, fit (one pipeline or the search), write the run directory; see the module docstring."""
    sets = (
        list(overrides)
        + ([f"seed={seed}"] if seed is not None else [])
        + ([f"device={device}"] if device is not None else [])
    )
    prep = prepare(Path(data), Path(config) if config else None, sets)
    config_yaml = config_to_yaml(prep.cfg)
    run_path = Path(out) if out else default_run_dir(data, config_yaml, prep.table.sha256)
    run = RunDir.create(run_path, overwrite=overwrite)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(prep.cfg.threads or _default_threads(prep))
    try:
        return _run(run, prep, data, overrides, progress or NullSink(), argv)
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
    dataset = model_space_data(bundle, prep.x_all, prep.table.Y, train_idx, test_idx)
    state = RunState(bundle, dataset, torch.Generator().manual_seed(prep.cfg.seed), sink, aux_exprs=prep.aux_exprs)
    state.shape_history.append(bundle.model.spec.display_width())
    return state


def _run(run: RunDir, prep: Prepared, data: Path, overrides, progress: ProgressSink, argv) -> FitResult:
    cfg = prep.cfg
    run.write_config(config_to_yaml(cfg))
    run.start(
        list(argv) if argv is not None else ["kandisc.fit_run", str(data)],
        cfg.seed,
        Path(data).resolve(),
        prep.table.sha256,
        _versions(),
        extra={"device": prep.device, "overrides": list(overrides)},
    )
    state = None
    best_so_far: list[RunState] = []  # the search's best finished candidate, kept on Ctrl-C
    try:
        split_idx = split(prep.table, cfg.data.test_fraction, cfg.seed)
        with run.metrics_writer() as writer:
            sink = MetricsSink(writer, progress)
            if cfg.pipeline is None:
                from kandisc.search.driver import search

                state, prep = search(prep, split_idx, sink, best_so_far)
            else:
                state = _initial_state(prep, split_idx, sink)
                run_pipeline(state, cfg.pipeline)
        summary = finalize_run(run, prep, state, split_idx[1], split_idx[0])
        run.finish("completed")
        return FitResult(run.path, "completed", summary, state.reports)
    except KeyboardInterrupt:
        kept = state if state is not None else (best_so_far[-1] if best_so_far else None)
        if kept is not None:
            save_model(kept.bundle, run.model_path)
        run.finish("interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except BaseException as err:
        run.finish("failed", f"{type(err).__name__}: {err}")
        raise
