"""Preparing a fit: validate everything the run needs, then build the network and its data.

Order matters for "bad input loses nothing": config, data, auxiliary features, width and module
strings are all checked (``prepare``) before :mod:`kandisc.fitting` touches the run directory.
``build_bundle`` and ``model_space_data`` turn a prepared run into the untrained model and the
tensors it trains on; the single pipeline and every candidate of the search start from them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kandisc.errors import ConfigError
from kandisc.io.config import KandiscConfig, load_config, resolve_width
from kandisc.io.data import Table, load_table
from kandisc.io.model_file import ModelBundle, load_model
from kandisc.io.scaling import Scaling
from kandisc.io.sizes import check_size
from kandisc.model import ModelSpec, MultKAN
from kandisc.tasks import PhysicsTask, task_from_dict
from kandisc.train import Dataset

_DTYPES = {"float64": torch.float64, "float32": torch.float32}


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
    task: PhysicsTask | None = None  # a physics task (kandisc.tasks); None = regression on the targets
    task_y: np.ndarray | None = None  # (N, k) a task's derivative columns (some may be input columns too)

    @property
    def y(self) -> np.ndarray:
        """What the loss compares with, raw: the targets, or a physics task's derivative columns."""
        return self.table.Y if self.task_y is None else self.task_y


def resolve_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device; use --device cpu or auto")
    return name


def prepare(data: Path, config, overrides: list[str]) -> Prepared:
    """Validate a CSV run; ``config``: a YAML path, a mapping, a ``KandiscConfig`` or None."""
    cfg = load_config(config, overrides)
    _register_functions(cfg)
    if not cfg.task.physics:
        return _prepare(cfg, load_table(data, cfg.data.inputs, cfg.data.targets, cfg.data.dropna))
    inputs, derivatives = cfg.task.columns()
    # A velocity can be a state column and a derivative at once (x: [x, vx], xdot: [vx, ax]): the
    # table holds it once, as an input.
    targets = [c for c in derivatives if c not in inputs]
    if not targets:
        raise ConfigError(f"task.{cfg.task.kind}: the derivative columns are all state columns; list the measured ones")
    table = load_table(data, inputs, targets, cfg.data.dropna)
    columns = dict(zip(table.input_names, table.X.T, strict=True))
    columns |= dict(zip(table.target_names, table.Y.T, strict=True))
    return dataclasses.replace(_prepare(cfg, table), task_y=np.column_stack([columns[c] for c in derivatives]))


def prepare_table(table: Table, config=None, overrides: list[str] = ()) -> Prepared:
    """Validate a run on an in-memory table (``io.data.table_from_arrays``), as ``prepare`` does a CSV.

    The table has chosen its inputs and targets already: ``data.inputs`` / ``data.targets`` of the
    config are not used.
    """
    cfg = load_config(config, list(overrides))
    if cfg.task.physics:  # the task picks and orders its columns from a CSV's header
        raise ConfigError(
            f"task.{cfg.task.kind} runs from a CSV (kandisc fit, api.fit_run); the estimator fits regression"
        )
    _register_functions(cfg)
    return _prepare(cfg, table)


def _register_functions(cfg: KandiscConfig) -> None:
    """The config's ``functions:``; imported only when there are some (it pulls in sympy, which a
    fit otherwise first needs after training, in the symbolic stage)."""
    if cfg.functions:
        from kandisc.knowledge.user_functions import register_definitions

        register_definitions(cfg.functions)


def _prepare(cfg: KandiscConfig, table: Table) -> Prepared:
    x_all, model_inputs, aux_exprs = with_auxiliary(table, dict(cfg.auxiliary))
    task = task_from_dict(cfg.task.as_dict())
    width = resolve_width(cfg.model, model_inputs, [task.output] if task else table.target_names)
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
    return Prepared(cfg, table, model_inputs, x_all, width, masks, aux_exprs, resolve_device(cfg.device), task)


def with_auxiliary(table: Table, auxiliary: dict[str, str]) -> tuple[np.ndarray, list[str], dict]:
    """The model's raw inputs: the data columns, then the auxiliary features computed from them.

    Returns ``(x_all, model_inputs, aux_exprs)`` (``aux_exprs``: name -> sympy expression of the columns).
    """
    if not auxiliary:
        return table.X, list(table.input_names), {}
    from kandisc.knowledge.auxiliary import compute_auxiliary

    columns = {name: table.X[:, i] for i, name in enumerate(table.input_names)}
    clash = [n for n in auxiliary if n in table.input_names or n in table.target_names]
    if clash:
        raise ConfigError(f"auxiliary.{clash[0]} has the name of a column of {table.path}; rename the feature")
    names, values, aux_exprs = compute_auxiliary(columns, auxiliary)
    return np.concatenate([table.X, values], axis=1), list(table.input_names) + names, aux_exprs


def _check_symbolic_libraries(cfg: KandiscConfig) -> None:
    """Unknown function names in a symbolic stage fail now, not after the training stages."""
    from kandisc.model.functions import get_function

    for index, item in enumerate(cfg.pipeline or []):
        if item.stage == "symbolic":
            for name in [*(item.library or []), *item.complexities]:
                try:
                    get_function(name)
                except ConfigError as err:
                    raise ConfigError(f"pipeline[{index}].symbolic: {err}") from None


def prior_model(cfg: KandiscConfig, inputs: list[str], targets: list[str], normalization: Scaling | None) -> MultKAN:
    """The network compiled from ``prior.formula`` / ``prior.model_file`` with the requested capacity."""
    from kandisc.knowledge.prior import model_from_prior, prior_from_bundle

    p, m = cfg.prior, cfg.model
    if p.model_file is not None:
        source = f"prior model {p.model_file}"
        return prior_from_bundle(load_model(p.model_file), inputs, targets, p.spline_magnitude, normalization, source)
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


def build_bundle(prep: Prepared, train_idx: np.ndarray, y_log=None) -> ModelBundle:
    """The untrained network of the run (or its prior) with the map to model space fitted on
    the training rows; ``y_log`` (per target 0/±1) trains on log(±y)."""
    cfg, m = prep.cfg, prep.cfg.model
    normalization = None
    if cfg.data.standardize or (y_log is not None and any(y_log)):
        normalization = Scaling.fit(
            prep.x_all[train_idx], prep.table.Y[train_idx], standardize=cfg.data.standardize, y_log=y_log
        )
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
    if prep.task is not None and prep.task.known:
        _start_near_the_known_term(model)
    if prep.module_masks is not None:
        for kan, allowed in zip(model.layers, prep.module_masks, strict=True):
            kan.remove_edges(~torch.as_tensor(allowed, device=prep.device))
    return ModelBundle(
        model=model,
        input_names=list(prep.model_inputs),
        output_names=[prep.task.output] if prep.task else list(prep.table.target_names),
        data_columns=list(prep.table.input_names),
        auxiliary=dict(cfg.auxiliary),
        normalization=normalization,
        # predict and explain read the original columns; the report shows their names; a task is kept
        extras={
            **({"column_labels": dict(prep.table.labels)} if prep.table.labels else {}),
            **({"task": prep.task.to_dict()} if prep.task else {}),
        },
    )


# The output layer's starting weights, relative to a plain fit's, when a task adds a known term.
KNOWN_TERM_START_SCALE = 0.1


def _start_near_the_known_term(model) -> None:
    """Shrink the output layer's edges so that the learnt scalar starts as the task's known term
    plus a small correction. A Lagrangian's accelerations solve with the Hessian of L in q̇: started
    at the kinetic energy's (well conditioned) Hessian, training does not begin next to a singular
    one, where LBFGS and LM stall in a poor minimum (the pendulum at seed 1 did)."""
    with torch.no_grad():
        last = model.layers[-1]
        last.scale_base.mul_(KNOWN_TERM_START_SCALE)
        last.scale_sp.mul_(KNOWN_TERM_START_SCALE)


def model_space_data(bundle: ModelBundle, x_all: np.ndarray, y: np.ndarray, train_idx, test_idx) -> Dataset:
    model = bundle.model

    def tensors(idx):
        x = torch.as_tensor(x_all[idx], dtype=model.dtype, device=model.device)
        yy = torch.as_tensor(y[idx], dtype=model.dtype, device=model.device)
        if bundle.normalization:
            yy = bundle.normalization.y_to_model(yy)
        return bundle.to_model_space(x), yy

    x_train, y_train = tensors(train_idx)
    x_test, y_test = tensors(test_idx)
    return Dataset(x_train, y_train, x_test, y_test)
