"""The config schema: pydantic models of every YAML key, with its type, default and one-line doc.

Owns ``KandiscConfig`` and its sections (``DataConfig``, ``PriorConfig``, ``ModelConfig``,
``OutputConfig``, ``SearchConfig``) and the validators that check single values; the stage models
of ``pipeline`` live in :mod:`kandisc.io.stage_schema` and the shared field types in
:mod:`kandisc.io.schema_types` (both re-exported here). Loading, ``--set`` overrides,
error messages and YAML output live in :mod:`kandisc.io.config`, which re-exports these names.
Function names, formulas and module strings stay plain strings here; the symbolic and knowledge
layers validate them (``functions:`` entries are checked here with the safe formula parser, which
is imported only when a config has some).
"""

from __future__ import annotations

import keyword
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    field_validator,
    model_validator,
)

from kandisc import defaults
from kandisc.io.schema_types import (  # noqa: F401 (re-exported for io.config and io.sizes)
    MAX_ARITY,
    MAX_DEPTH,
    MAX_EDGES,
    MAX_GRID,
    MAX_MAGNITUDE,
    MAX_NODES,
    MAX_SEED,
    MAX_THREADS,
    Bool,
    Float,
    Int,
    _f,
    _flow,
    _lower,
    _Model,
    _show,
)
from kandisc.io.stage_schema import (  # noqa: F401 (re-exported)
    DEFAULT_PIPELINE,
    STAGE_MODELS,
    FitStage,
    PruneStage,
    RefineStage,
    Stage,
    StageItem,
    SymbolicStage,
)
from kandisc.io.task_schema import TASK_PIPELINE, TaskConfig, _task_shorthand, check_with_config


class DataConfig(_Model):
    """Which CSV columns are inputs and targets, and how rows are split and scaled."""

    inputs: list[str] | None = _f(None, "input column names; null = every column except the targets")
    targets: list[str] | None = _f(None, "target column name(s); null = the last column")
    test_fraction: Float = _f(0.2, "fraction of rows held out for testing", gt=0, lt=1)
    standardize: Bool = _f(False, "z-score inputs and targets; stored with the model, undone in outputs")
    dropna: Bool = _f(False, "drop rows with NaN/inf instead of failing")

    @field_validator("inputs", "targets", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            shown = _show(value)
            raise ValueError(f"expected a list of column names (got {shown}); a column named {shown} is ['{shown}']")
        if isinstance(value, str):
            value = [value]  # a single column name is the common case for targets
        if isinstance(value, list):
            value = [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
            if not value:
                raise ValueError("empty list (got []; allowed: one or more column names, or null)")
            dups = sorted({v for v in value if isinstance(v, str) and value.count(v) > 1})
            if dups:
                raise ValueError(f"column {dups[0]!r} is listed twice; list each column once")
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> DataConfig:
        both = [c for c in self.inputs or [] if c in (self.targets or [])]
        if both:
            raise ValueError(f"column {both[0]!r} is in both data.inputs and data.targets; remove it from one of them")
        return self


def _check_width(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise ValueError(f"expected a list of at least 2 layer widths (got {_show(value)}; e.g. [2, 5, 1])")
    out = []
    for i, entry in enumerate(value):
        pair = isinstance(entry, list | tuple) and len(entry) == 2
        ints = list(entry) if pair else [entry]
        ok = all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in ints) and sum(ints) >= 1
        if not ok:
            raise ValueError(
                f"entry {i} must be an int >= 1 or [n_sum, n_mult] with both >= 0 and a sum >= 1 (got {_show(entry)})"
            )
        if sum(ints) > MAX_NODES:
            raise ValueError(
                f"entry {i} has {sum(ints)} nodes; at most {MAX_NODES} per layer (KANs for discovery are narrow:"
                " tens of nodes)"
            )
        out.append(ints if pair else entry)
    return out


def _check_arity(value: Any) -> Any:
    def is_arity(n: Any) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and 2 <= n <= MAX_ARITY

    layers_ok = isinstance(value, list) and all(
        isinstance(layer, list) and all(is_arity(n) for n in layer) for layer in value
    )
    if not (is_arity(value) or layers_ok):
        raise ValueError(
            f"expected an int >= 2 (at most {MAX_ARITY}) or a list (per layer) of lists of such ints"
            f" (got {_show(value)})"
        )
    return value


def _prior_shorthand(value: Any) -> Any:
    """``prior: "x*y"`` means ``prior: {formula: "x*y"}``; ``prior: null`` means no prior."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {"formula": value}
    return value


class PriorConfig(_Model):
    """Start from known physics: a formula (or saved model) compiled into the network, plus capacity."""

    formula: str | None = _f(None, "prior formula of the input columns, e.g. 2*mu*(F11-1); null = none")
    model_file: str | None = _f(None, "a model.pt (kandisc compile / fit in raw units) to start from")
    extra_width: Int = _f(0, "extra numeric sum nodes in every hidden layer of the prior network", ge=0, le=MAX_NODES)
    extra_depth: Int = _f(
        0, "extra identity layers after the prior's output, to learn an outer function", ge=0, le=MAX_DEPTH
    )
    spline_magnitude: Float = _f(0.01, "initial size of the splines added on top of the prior's edges", ge=0)

    @model_validator(mode="after")
    def _one_source(self) -> PriorConfig:
        if self.formula is not None and self.model_file is not None:
            raise ValueError("give either prior.formula or prior.model_file, not both")
        return self

    @property
    def active(self) -> bool:
        return self.formula is not None or self.model_file is not None


class ModelConfig(_Model):
    """The MultKAN architecture and its B-spline grids."""

    width: Annotated[list[int | list[int]] | None, BeforeValidator(_check_width)] = _f(
        None,
        "layer widths, e.g. [2, 5, 1] or [2, [3, 2], 1] ([n_sum, n_mult]); null = [n_inputs, 5, n_targets]",
        json_schema_extra={"type": "list of int or [n_sum, n_mult], or null"},
    )
    grid: Int = _f(defaults.GRID, "number of B-spline grid intervals per edge", ge=1, le=MAX_GRID)
    k: Int = _f(defaults.ORDER, "B-spline order", ge=1, le=5)
    mult_arity: Annotated[int | list[list[int]], BeforeValidator(_check_arity)] = _f(
        2,
        "inputs per multiplication node: one int, or per layer a list of ints",
        json_schema_extra={"type": "int >= 2 or list of lists of int >= 2"},
    )
    base_fun: Annotated[Literal[defaults.BASE_FUNCTIONS], BeforeValidator(_lower)] = _f(
        defaults.BASE_FUN, "residual base function added to each spline"
    )
    grid_eps: Float = _f(defaults.GRID_EPS, "0 = grid from data quantiles, 1 = uniform grid", ge=0, le=1)
    grid_range: list[Float] = _f(list(defaults.GRID_RANGE), "initial grid range [low, high]")
    noise_scale: Float = _f(defaults.NOISE_SCALE, "scale of the random initial spline coefficients", ge=0, le=1e6)
    dtype: Annotated[Literal["float64", "float32"], BeforeValidator(_lower)] = _f(
        "float64", "floating-point precision (float64 keeps formula constants exact)"
    )

    @field_validator("grid_range")
    @classmethod
    def _range(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or not value[0] < value[1]:
            raise ValueError(f"expected two numbers [low, high] with low < high (got {_show(value)})")
        if max(abs(value[0]), abs(value[1])) > MAX_MAGNITUDE:
            raise ValueError(f"expected numbers within ±{MAX_MAGNITUDE:g} (got {_show(value)}); rescale the data")
        return value


class OutputConfig(_Model):
    """What the run writes besides the contract files."""

    figures: Bool = _f(True, "write figures")
    formats: list[Annotated[Literal["png", "pdf", "svg"], BeforeValidator(_lower)]] = _f(["png"], "figure file formats")
    log_every: Int = _f(10, "plain progress line every N steps when stderr is not a terminal", ge=1)
    checkpoints: Bool = _f(
        False,
        "keep a model file after every stage of an explicit pipeline (checkpoints/NN_stage.pt); "
        "kandisc fit --resume continues from the last one",
    )

    @model_validator(mode="after")
    def _some_format(self) -> OutputConfig:
        if self.figures and not self.formats:
            raise ValueError("output.formats is empty; list png, pdf and/or svg, or set output.figures: false")
        return self


SEARCH_CANDIDATES = (
    "log-additive",
    "log-additive-accurate",
    "log-ratio",
    "log-ratio-sq",
    "log-sq",
    # After the log families: on a one-signed target it won no law of the 99 that one of them
    # missed, and it is the slowest one-layer family (30-40 s on 3 inputs against 8-15 s).
    "product",
    "sum",
    "mult",
    "log-deep",
    "divide",  # structure: auto's divide and conquer (kandisc/search/divide.py)
)


class SearchConfig(_Model):
    """The discovery search that runs when ``pipeline`` is null: a portfolio of candidate fits."""

    time_budget: Float = _f(120.0, "wall-clock seconds for all candidates together (like PySR's timeout)", gt=0)
    jobs: Int | None = _f(None, "candidate fits run in parallel processes; null = every CPU core", ge=1, le=256)
    accept_r2: Float = _f(0.999, "a formula is reported as a law when its test R^2 reaches this", gt=0, le=1)
    candidates: list[Annotated[Literal[SEARCH_CANDIDATES], BeforeValidator(_lower)]] | None = _f(
        None,
        f"candidate families ({', '.join(SEARCH_CANDIDATES)}); null = all",
        json_schema_extra={"type": "list of candidate names, or null"},
    )
    seeds: Int = _f(2, "seeds tried for each network family (seed, seed+1, ...)", ge=1, le=16)
    stop_when_exact: Bool = _f(
        True,
        "stop early once a formula matches the test rows to 1e-7 of their spread, or has only snapped "
        "constants and is as accurate as every network so far (noisy data)",
    )


class FunctionConfig(_Model):
    """A function added to the symbolic library, written as a formula of x."""

    formula: str = _f(..., "the function of x, e.g. sin(x)/x (any function formulas may call)", examples=["sin(x)/x"])
    complexity: Float = _f(3.0, "its complexity for the symbolic stage (built-ins: x 1, sin 2, tanh 3)", ge=0)


def _check_functions(value: dict[str, FunctionConfig]) -> dict[str, FunctionConfig]:
    if value:
        from kandisc.errors import KandiscError
        from kandisc.knowledge.user_functions import parse_definition

        for name, entry in value.items():
            try:
                parse_definition(name, entry.formula)
            except KandiscError as err:
                raise ValueError(str(err)) from None
    return value


def _unit_text(value: Any) -> Any:
    # YAML reads `theta: 1` as the int 1, which is the dimensionless unit.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_unit(value: str) -> str:
    from kandisc.errors import KandiscError
    from kandisc.knowledge.units import parse_units

    try:
        parse_units(value)
    except KandiscError as err:
        raise ValueError(str(err)) from None
    return value


def _structure_mode(value: Any) -> Any:
    # YAML reads a bare `off` as False.
    return "off" if value is False else _lower(value)


UnitText = Annotated[str, BeforeValidator(_unit_text), AfterValidator(_check_unit)]


class KandiscConfig(_Model):
    """Everything a `kandisc fit` run needs besides the data file."""

    seed: Int = _f(0, "random seed for the split, the initial model and training", ge=0, le=MAX_SEED)
    device: Annotated[Literal["cpu", "cuda", "auto"], BeforeValidator(_lower)] = _f(
        "cpu", "torch device; auto = cuda when available"
    )
    threads: Int | None = _f(
        None, "torch CPU threads; null = 1 for small models, else torch's default", ge=1, le=MAX_THREADS
    )
    data: DataConfig = _f(default_factory=DataConfig, doc="")
    functions: Annotated[dict[str, FunctionConfig], AfterValidator(_check_functions)] = _f(
        {},
        "functions added to the symbolic library, name -> {formula, complexity}",
        json_schema_extra={"type": "mapping of name -> function"},
    )
    auxiliary: dict[str, str] = _f({}, "extra input features, name -> formula of input columns")
    units: dict[str, UnitText] = _f(
        {},
        "SI units of every input and target column, e.g. v: m/s, F: kg*m/s**2, theta: 1; {} = none",
        json_schema_extra={"type": "mapping of column -> units"},
    )
    modules: list[Any] = _f([], "modular-structure hints (strings or mappings)", json_schema_extra={"type": "list"})
    structure: Annotated[Literal["off", "auto"] | None, BeforeValidator(_structure_mode)] = _f(
        None,
        "auto: the search also splits a separable law into parts fitted apart (divide and conquer); "
        "null = auto for the search, off with an explicit pipeline:",
    )
    prior: Annotated[PriorConfig, BeforeValidator(_prior_shorthand)] = _f(default_factory=PriorConfig, doc="")
    model: ModelConfig = _f(default_factory=ModelConfig, doc="")
    task: Annotated[TaskConfig, BeforeValidator(_task_shorthand)] = _f(
        default_factory=TaskConfig,
        doc="regression (fit the targets), {lagrangian: {q, qdot, qddot, kinetic}} or {conserved: {x, xdot}}",
        json_schema_extra={"type": "regression, or a one-key mapping"},
    )
    pipeline: list[StageItem] | None = _f(
        None,
        "ordered stages, each {name: {params}} or a bare name; null = the discovery search (section search)",
        json_schema_extra={"type": "list of stages, or null"},
    )
    search: SearchConfig = _f(default_factory=SearchConfig, doc="")
    output: OutputConfig = _f(default_factory=OutputConfig, doc="")

    @model_validator(mode="before")
    @classmethod
    def _task_pipeline(cls, value: Any) -> Any:
        # The search is for regression; a physics task without a pipeline runs TASK_PIPELINE.
        task = value.get("task") if isinstance(value, dict) else None
        if isinstance(task, dict) and task and value.get("pipeline") is None:
            value = {**value, "pipeline": TASK_PIPELINE}
        return value

    @model_validator(mode="after")
    def _task_fits(self) -> KandiscConfig:
        check_with_config(self)
        return self

    @field_validator("auxiliary")
    @classmethod
    def _aux_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name.isidentifier() or keyword.iskeyword(name):
                raise ValueError(f"name {name!r} is not a valid identifier; use letters, digits and _")
        return value

    @field_validator("modules")
    @classmethod
    def _modules(cls, value: list[Any]) -> list[Any]:
        for i, item in enumerate(value):
            if not isinstance(item, str | dict):
                raise ValueError(f"item {i} must be a string or a mapping (got {_show(item)})")
        return value

    @model_validator(mode="after")
    def _aux_clash(self) -> KandiscConfig:
        columns = (self.data.inputs or []) + (self.data.targets or [])
        for name in self.auxiliary:
            if name in columns:
                raise ValueError(f"auxiliary.{name} has the name of a data column; rename the feature")
        return self

    @property
    def splits_structure(self) -> bool:
        """Whether the search adds divide and conquer: ``structure: auto``, or unset (null) with
        no explicit ``pipeline:`` (which runs exactly that pipeline)."""
        return self.structure == "auto" or (self.structure is None and self.pipeline is None)

    @model_validator(mode="after")
    def _structure_needs_search(self) -> KandiscConfig:
        if self.structure == "auto" and self.pipeline is not None:
            raise ValueError(
                "structure: auto splits the law inside the discovery search; remove pipeline: or set it off"
            )
        return self

    @model_validator(mode="after")
    def _units_columns(self) -> KandiscConfig:
        if self.units and self.data.inputs is not None and self.data.targets is not None:
            from kandisc.errors import KandiscError
            from kandisc.knowledge.units import check_columns

            try:
                check_columns(self.units, [*self.data.inputs, *self.data.targets])
            except KandiscError as err:
                raise ValueError(str(err)) from None
        return self


SECTIONS: dict[str, type[_Model]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "output": OutputConfig,
    "prior": PriorConfig,
    "search": SearchConfig,
    "task": TaskConfig,
}
