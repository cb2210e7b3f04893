"""The stage models of ``pipeline:`` in the config: ``fit``, ``prune``, ``refine``, ``symbolic``.

Owns ``STAGE_MODELS``, the discriminated ``StageItem`` that reads ``{fit: {...}}`` or a bare stage
name, and ``DEFAULT_PIPELINE`` (the classic single pipeline, the search's ``sum`` candidate).
Defaults come from :mod:`kandisc.defaults`, the engine's own.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from kandisc import defaults
from kandisc.io.schema_types import MAX_GRID, Bool, Float, Int, _f, _lower, _Model, _show

_TRAIN, _PRUNE = defaults.TrainSettings(), defaults.PruneSettings()

# Two rounds of sparsify-and-prune make the pruned shape robust to the seed; then fit, refine, snap.
DEFAULT_PIPELINE: list[Any] = [
    {"fit": {"steps": 50, "lamb": 0.01}},
    {"prune": {}},
    {"fit": {"steps": 30, "lamb": 0.01}},
    {"prune": {}},
    {"fit": {"steps": 50}},
    {"refine": {"grid": 10}},
    {"fit": {"steps": 50}},
    {"symbolic": {}},
]


class _Stage(_Model):
    """Base of the pipeline stage models; dumps as the user-facing one-key form {name: {params}}."""

    @model_serializer(mode="wrap")
    def _one_key(self, handler: Any) -> dict[str, Any]:
        params = handler(self)
        return {params.pop("stage"): params}

    def params(self) -> dict[str, Any]:
        """The stage's parameters as a plain dict (without the stage name)."""
        return self.model_dump()[self.stage]


class FitStage(_Stage):
    """Train the model (LBFGS, Adam, or Levenberg–Marquardt for small exact fits) with optional
    sparsity regularisation."""

    stage: Literal["fit"] = "fit"
    steps: Int = _f(_TRAIN.steps, "optimiser steps", ge=0)
    opt: Annotated[Literal["lbfgs", "adam", "lm"], BeforeValidator(_lower)] = _f(
        _TRAIN.opt, "optimiser; lm (Levenberg–Marquardt, ignores lr): full batch, lamb 0, up to 3000 parameters"
    )
    lr: Float = _f(_TRAIN.lr, "learning rate", gt=0)
    lamb: Float = _f(_TRAIN.lamb, "overall regularisation strength (0 = none)", ge=0)
    lamb_l1: Float = _f(_TRAIN.lamb_l1, "weight of the L1 norm of edge activations", ge=0)
    lamb_entropy: Float = _f(_TRAIN.lamb_entropy, "weight of the entropy of edge activations", ge=0)
    lamb_coef: Float = _f(_TRAIN.lamb_coef, "weight of the L1 norm of spline coefficients", ge=0)
    lamb_coefdiff: Float = _f(_TRAIN.lamb_coefdiff, "weight of the L1 norm of coefficient differences", ge=0)
    batch: Int = _f(_TRAIN.batch, "rows per step; -1 = full batch", ge=-1)
    update_grid: Bool = _f(_TRAIN.update_grid, "re-fit spline grids to the data during training")
    grid_update_every: Int = _f(_TRAIN.grid_update_every, "steps between grid updates", ge=1)
    stop_grid_update_step: Int = _f(_TRAIN.stop_grid_update_step, "no grid updates after this step", ge=0)
    plateau_rtol: Float = _f(
        _TRAIN.plateau_rtol,
        "stop early when the objective falls by at most this fraction over plateau_window steps; 0 = never",
        ge=0,
    )
    plateau_window: Int = _f(_TRAIN.plateau_window, "steps (without a grid update) the plateau rule looks back", ge=1)

    @field_validator("batch")
    @classmethod
    def _batch(cls, value: int) -> int:
        if value == 0:
            raise ValueError("batch 0 is empty (got 0; allowed: -1 for full batch, or >= 1)")
        return value

    @model_validator(mode="after")
    def _lm_is_unregularised_full_batch(self) -> FitStage:
        conflict = defaults.lm_conflict(self.opt, self.lamb, self.batch == -1, self.batch)
        if conflict:
            raise ValueError(conflict)
        return self


class PruneStage(_Stage):
    """Remove nodes, edges and inputs whose attribution scores fall below thresholds."""

    stage: Literal["prune"] = "prune"
    node_threshold: Float = _f(_PRUNE.node_threshold, "prune hidden nodes scoring below this", ge=0)
    edge_threshold: Float = _f(_PRUNE.edge_threshold, "prune edges scoring below this", ge=0)
    input_threshold: Float = _f(_PRUNE.input_threshold, "prune inputs scoring below this", ge=0)
    prune_inputs: Bool = _f(_PRUNE.prune_inputs, "also remove unimportant input variables")
    on: Annotated[Literal["train", "test"], BeforeValidator(_lower)] = _f(
        "train", "rows the attribution scores are computed on"
    )


class RefineStage(_Stage):
    """Move the splines onto a finer grid (then fit again)."""

    stage: Literal["refine"] = "refine"
    grid: Int = _f(..., "new number of grid intervals (required)", ge=1, le=MAX_GRID, examples=[10])


class SymbolicStage(_Stage):
    """Snap every edge to the best symbolic function and assemble formulas."""

    stage: Literal["symbolic"] = "symbolic"
    library: list[str] | None = _f(None, "function names to try; null = the default library")
    complexities: dict[str, Float] = _f({}, "complexity overrides, function name -> complexity")
    weight_simple: Float = _f(0.8, "0 = prefer accuracy, 1 = prefer simplicity", ge=0, le=1)
    r2_threshold: Float = _f(0.9, "edges fitting worse than this R^2 stay splines", ge=0, le=1)
    power_first: Bool = _f(True, "a power x..x^5 fitting an edge to spline accuracy wins over other functions")
    zero_threshold: Float = _f(1e-3, "edges with attribution below this become the zero function", ge=0)
    retrain_steps: Int = _f(20, "fit steps after snapping, to tune affine constants", ge=0)
    retrain_opt: Annotated[Literal["auto", "lbfgs", "lm"], BeforeValidator(_lower)] = _f(
        "auto",
        "optimiser of those steps; lm (Levenberg–Marquardt): up to 3000 parameters, a few steps suffice; "
        f"auto: lm once every edge is a function (up to {defaults.LM_AUTO_PARAMETERS} parameters), else lbfgs",
    )
    rounds: Int = _f(3, "snap/retrain rounds", ge=1)
    snap_constants: Bool = _f(True, "round constants close to simple numbers")
    max_candidates: Int = _f(8, "formulas kept per target on the Pareto list", ge=1)


STAGE_MODELS: dict[str, type[_Stage]] = {
    "fit": FitStage,
    "prune": PruneStage,
    "refine": RefineStage,
    "symbolic": SymbolicStage,
}
Stage = Union[FitStage, PruneStage, RefineStage, SymbolicStage]  # noqa: UP007 (discriminated union)


def _stage_item(value: Any) -> Any:
    """Turn the user's {fit: {...}} or "prune" into the tagged form the discriminated union reads."""
    if isinstance(value, _Stage):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((name, params),) = value.items()
    elif isinstance(value, str):
        name, params = value, {}
    else:
        raise PydanticCustomError(
            "stage_shape",
            "expected a stage name or a one-key mapping like {example} (got {got})",
            {"got": _show(value), "example": "{fit: {steps: 50}}"},
        )
    if name not in STAGE_MODELS:
        close = difflib.get_close_matches(str(name), STAGE_MODELS, n=1)
        raise PydanticCustomError("unknown_stage", "unknown stage", {"name": name, "close": close})
    params = {} if params is None else params
    if isinstance(params, dict) and True in params and name == "prune":
        params = {("on" if k is True else k): v for k, v in params.items()}  # YAML 1.1 reads `on:` as true
    if not isinstance(params, dict) or "stage" in params:
        raise PydanticCustomError(
            "stage_shape",
            "parameters must be a mapping of known keys (got {got})",
            {"got": _show(params), "sub": name},
        )
    return {**params, "stage": name}


StageItem = Annotated[Annotated[Stage, Field(discriminator="stage")], BeforeValidator(_stage_item)]
