"""One ``kandisc fit`` run end to end: validate everything, then train and write the run directory.

Order matters for "bad input loses nothing": config, data, auxiliary features, width and module
strings are all checked before the run directory is touched. Afterwards every file is written
atomically, run.json tracks the status, and Ctrl-C / errors leave a marked, usable run.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kandisc import __version__
from kandisc.errors import ConfigError
from kandisc.io.config import KandiscConfig, config_to_yaml, load_config, resolve_width
from kandisc.io.data import Standardizer, Table, load_table, split
from kandisc.io.model_file import ModelBundle, save_model
from kandisc.io.rundir import RunDir, default_run_dir
from kandisc.io.sizes import check_size
from kandisc.model import ModelSpec, MultKAN
from kandisc.pipeline.finalize import finalize_run
from kandisc.pipeline.state import NullSink, ProgressSink, RunState, StageReport
from kandisc.train import Dataset, StepRecord

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class FitResult:
    run_dir: Path
    status: str
    summary: dict = field(default_factory=dict)
    reports: list[StageReport] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything validated before the run directory is created."""

    cfg: KandiscConfig
    table: Table
    model_inputs: list[str]
    x_all: np.ndarray  # (N, model inputs) raw units, data columns then auxiliary features
    width: list
    module_masks: list | None
    aux_exprs: dict
    device: str


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device; use --device cpu or auto")
    return name


def prepare(data: Path, config: Path | None, overrides: list[str]) -> Prepared:
    cfg = load_config(config, overrides)
    table = load_table(data, cfg.data.inputs, cfg.data.targets, cfg.data.dropna)
    x_all, model_inputs, aux_exprs = table.X, list(table.input_names), {}
    if cfg.auxiliary:
        from kandisc.knowledge.auxiliary import compute_auxiliary

        columns = {name: table.X[:, i] for i, name in enumerate(table.input_names)}
        clash = [n for n in cfg.auxiliary if n in table.input_names or n in table.target_names]
        if clash:
            raise ConfigError(f"auxiliary.{clash[0]} has the name of a column of {table.path}; rename the feature")
        names, values, aux_exprs = compute_auxiliary(columns, dict(cfg.auxiliary))
        x_all = np.concatenate([table.X, values], axis=1)
        model_inputs += names
    width = resolve_width(cfg.model, model_inputs, table.target_names)
    if cfg.prior.active:
        if cfg.model.width is not None or cfg.modules:
            raise ConfigError(
                "prior: the network's shape comes from the prior formula; remove model.width "
                "and modules (use prior.extra_width / prior.extra_depth for more capacity)"
            )
        width = prior_model(cfg, model_inputs, table.target_names, None).spec.display_width()
        if cfg.prior.formula is not None:
            from kandisc.knowledge.prior import check_prior_on_rows

            check_prior_on_rows(cfg.prior.formula, model_inputs, x_all)
    check_size(cfg, width, table.n_rows)
    _check_symbolic_libraries(cfg)
    masks = None
    if cfg.modules:
        from kandisc.knowledge.modules import masks_from_config

        masks = masks_from_config(cfg.modules, width, cfg.model.mult_arity)
    return Prepared(cfg, table, model_inputs, x_all, width, masks, aux_exprs, resolve_device(cfg.device))


def _check_symbolic_libraries(cfg: KandiscConfig) -> None:
    """Unknown function names in a symbolic stage fail now, not after the training stages."""
    from kandisc.model.functions import get_function

    for index, item in enumerate(cfg.pipeline):
        if item.stage == "symbolic":
            for name in [*(item.library or []), *item.complexities]:
                try:
                    get_function(name)
                except ConfigError as err:
                    raise ConfigError(f"pipeline[{index}].symbolic: {err}") from None


def prior_model(cfg: KandiscConfig, inputs: list[str], targets: list[str], normalization: dict | None) -> MultKAN:
    """The network compiled from ``prior.formula`` / ``prior.model_file`` with the requested capacity."""
    from kandisc.knowledge.prior import model_from_prior, prior_from_model_file

    p, m = cfg.prior, cfg.model
    if p.model_file is not None:
        return prior_from_model_file(p.model_file, inputs, targets, p.spline_magnitude, normalization)
    return model_from_prior(
        p.formula,
        inputs,
        targets,
        extra_width=p.extra_width,
        extra_depth=p.extra_depth,
        spline_magnitude=p.spline_magnitude,
        grid=m.grid,
        k=m.k,
        base_fun=m.base_fun,
        seed=cfg.seed,
        dtype=_DTYPES[m.dtype],
        normalization=normalization,
    )


def build_bundle(prep: Prepared, train_idx: np.ndarray) -> ModelBundle:
    cfg, m = prep.cfg, prep.cfg.model
    normalization = None
    if cfg.data.standardize:
        normalization = Standardizer.fit(prep.x_all[train_idx], prep.table.Y[train_idx]).to_dict()
    if cfg.prior.active:
        model = prior_model(cfg, prep.model_inputs, prep.table.target_names, normalization).to(prep.device)
    else:
        spec = ModelSpec.build(
            prep.width,
            mult_arity=m.mult_arity,
            grid=m.grid,
            k=m.k,
            base_fun=m.base_fun,
            grid_eps=m.grid_eps,
            grid_range=tuple(m.grid_range),
            noise_scale=m.noise_scale,
            seed=cfg.seed,
        )
        model = MultKAN(spec, dtype=_DTYPES[m.dtype], device=prep.device)
    if prep.module_masks is not None:
        for kan, allowed in zip(model.layers, prep.module_masks, strict=True):
            kan.remove_edges(~torch.as_tensor(allowed, device=prep.device))
    return ModelBundle(
        model=model,
        input_names=list(prep.model_inputs),
        output_names=list(prep.table.target_names),
        data_columns=list(prep.table.input_names),
        auxiliary=dict(cfg.auxiliary),
        normalization=normalization,
    )


def model_space_data(bundle: ModelBundle, x_all: np.ndarray, y: np.ndarray, train_idx, test_idx) -> Dataset:
    model = bundle.model

    def tensors(idx):
        x = torch.as_tensor(x_all[idx], dtype=model.dtype, device=model.device)
        yy = torch.as_tensor(y[idx], dtype=model.dtype, device=model.device)
        if bundle.normalization:
            n = bundle.normalization
            yy = (yy - torch.tensor(n["y_mean"], dtype=yy.dtype, device=yy.device)) / torch.tensor(
                n["y_std"], dtype=yy.dtype, device=yy.device
            )
        return bundle.to_model_space(x), yy

    x_train, y_train = tensors(train_idx)
    x_test, y_test = tensors(test_idx)
    return Dataset(x_train, y_train, x_test, y_test)


class _MetricsSink:
    """Forwards progress to the caller's sink and appends every step to metrics.csv."""

    def __init__(self, writer, inner: ProgressSink):
        self.writer, self.inner = writer, inner

    def stage_started(self, label: str, total_steps: int) -> None:
        self.inner.stage_started(label, total_steps)

    def step(self, label: str, record: StepRecord, global_step: int, n_edges: int) -> None:
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
    config: Path | None = None,
    out: Path | None = None,
    overrides=(),
    seed: int | None = None,
    device: str | None = None,
    overwrite: bool = False,
    progress: ProgressSink | None = None,
    argv: list[str] | None = None,
) -> FitResult:
    """Validate, train, write the run directory; see the module docstring for the guarantees."""
    sets = (
        list(overrides)
        + ([f"seed={seed}"] if seed is not None else [])
        + ([f"device={device}"] if device is not None else [])
    )
    prep = prepare(Path(data), Path(config) if config else None, sets)
    cfg = prep.cfg
    config_yaml = config_to_yaml(cfg)
    run_path = Path(out) if out else default_run_dir(data, config_yaml, prep.table.sha256)
    run = RunDir.create(run_path, overwrite=overwrite)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or _default_threads(prep))
    try:
        return _run(run, prep, data, overrides, progress, argv)
    finally:
        torch.set_num_threads(previous_threads)


def _default_threads(prep: Prepared) -> int:
    """Small KANs run faster on one thread (per-op overhead dominates); big ones use torch's default."""
    widths = [w if isinstance(w, int) else sum(w) for w in prep.width]
    edges = sum(a * b for a, b in zip(widths, widths[1:], strict=False))
    rows = prep.table.n_rows
    return 1 if edges * rows * (prep.cfg.model.grid + prep.cfg.model.k) < 5e7 else torch.get_num_threads()


def _run(run: RunDir, prep: Prepared, data: Path, overrides, progress, argv) -> FitResult:
    cfg = prep.cfg
    run.write_config(config_to_yaml(cfg))
    run.start(
        argv if argv is not None else sys.argv,
        cfg.seed,
        Path(data).resolve(),
        prep.table.sha256,
        _versions(),
        extra={"device": prep.device, "overrides": list(overrides)},
    )
    state = None
    try:
        train_idx, test_idx = split(prep.table, cfg.data.test_fraction, cfg.seed)
        bundle = build_bundle(prep, train_idx)
        dataset = model_space_data(bundle, prep.x_all, prep.table.Y, train_idx, test_idx)
        with run.metrics_writer() as writer:
            state = RunState(
                bundle,
                dataset,
                torch.Generator().manual_seed(cfg.seed),
                _MetricsSink(writer, progress or NullSink()),
                aux_exprs=prep.aux_exprs,
            )
            state.shape_history.append(bundle.model.spec.display_width())
            from kandisc.pipeline.stages import run_pipeline

            run_pipeline(state, cfg.pipeline)
        summary = finalize_run(run, prep, state, test_idx, train_idx)
        run.finish("completed")
        return FitResult(run.path, "completed", summary, state.reports)
    except KeyboardInterrupt:
        if state is not None:
            save_model(state.bundle, run.model_path)
        run.finish("interrupted", "interrupted by the user (Ctrl-C)")
        raise
    except BaseException as err:
        run.finish("failed", f"{type(err).__name__}: {err}")
        raise
