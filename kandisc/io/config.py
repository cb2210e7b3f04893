"""The run configuration: pydantic models of every YAML key, loading, overrides and error messages.

Owns the schema (``KandiscConfig`` and the stage models of ``pipeline``), the merge order
defaults < YAML file < ``--set`` overrides, the one-line ``ConfigError`` that lists every problem
of a file at once, the resolved YAML written into each run, and ``schema_rows`` for
``kandisc config schema``. Function names, formulas and module strings stay plain strings here;
the symbolic and knowledge layers validate them.
"""

from __future__ import annotations

import copy
import difflib
import keyword
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from kandisc.errors import ConfigError

DEFAULT_PIPELINE: list[Any] = [
    {"fit": {"steps": 50, "lamb": 0.01}},
    {"prune": {}},
    {"fit": {"steps": 50}},
    {"refine": {"grid": 10}},
    {"fit": {"steps": 50}},
    {"symbolic": {}},
]


def _no_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; in a config that is always a typo, never intended.
    if isinstance(value, bool):
        raise PydanticCustomError("bool_not_number", "expected a number, not true/false")
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# Lax numbers (PyYAML reads `1e-3` as a string; pydantic turns it into 0.001) but never booleans.
Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]
Bool = Annotated[bool, Field(strict=True)]


def _f(default: Any = ..., doc: str = "", **kw: Any) -> Any:
    return Field(default, description=doc, **kw)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
        if isinstance(value, str | int) and not isinstance(value, bool):
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
        out.append(ints if pair else entry)
    return out


def _check_arity(value: Any) -> Any:
    def is_arity(n: Any) -> bool:
        return isinstance(n, int) and not isinstance(n, bool) and n >= 2

    layers_ok = isinstance(value, list) and all(
        isinstance(layer, list) and all(is_arity(n) for n in layer) for layer in value
    )
    if not (is_arity(value) or layers_ok):
        raise ValueError(f"expected an int >= 2 or a list (per layer) of lists of ints >= 2 (got {_show(value)})")
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
    extra_width: Int = _f(0, "extra numeric sum nodes in every hidden layer of the prior network", ge=0)
    extra_depth: Int = _f(0, "extra identity layers after the prior's output, to learn an outer function", ge=0)
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
    grid: Int = _f(5, "number of B-spline grid intervals per edge", ge=1)
    k: Int = _f(3, "B-spline order", ge=1, le=5)
    mult_arity: Annotated[int | list[list[int]], BeforeValidator(_check_arity)] = _f(
        2,
        "inputs per multiplication node: one int, or per layer a list of ints",
        json_schema_extra={"type": "int >= 2 or list of lists of int >= 2"},
    )
    base_fun: Annotated[Literal["silu", "identity", "zero"], BeforeValidator(_lower)] = _f(
        "silu", "residual base function added to each spline"
    )
    grid_eps: Float = _f(0.02, "0 = grid from data quantiles, 1 = uniform grid", ge=0, le=1)
    grid_range: list[Float] = _f([-1.0, 1.0], "initial grid range [low, high]")
    noise_scale: Float = _f(0.3, "scale of the random initial spline coefficients", ge=0)
    dtype: Annotated[Literal["float64", "float32"], BeforeValidator(_lower)] = _f(
        "float64", "floating-point precision (float64 keeps formula constants exact)"
    )

    @field_validator("grid_range")
    @classmethod
    def _range(cls, value: list[float]) -> list[float]:
        if len(value) != 2 or not value[0] < value[1]:
            raise ValueError(f"expected two numbers [low, high] with low < high (got {_show(value)})")
        return value


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
    """Train the model (LBFGS or Adam) with optional sparsity regularisation."""

    stage: Literal["fit"] = "fit"
    steps: Int = _f(50, "optimiser steps", ge=0)
    opt: Annotated[Literal["lbfgs", "adam"], BeforeValidator(_lower)] = _f("lbfgs", "optimiser")
    lr: Float = _f(1.0, "learning rate", gt=0)
    lamb: Float = _f(0.0, "overall regularisation strength (0 = none)", ge=0)
    lamb_l1: Float = _f(1.0, "weight of the L1 norm of edge activations", ge=0)
    lamb_entropy: Float = _f(2.0, "weight of the entropy of edge activations", ge=0)
    lamb_coef: Float = _f(0.0, "weight of the L1 norm of spline coefficients", ge=0)
    lamb_coefdiff: Float = _f(0.0, "weight of the L1 norm of coefficient differences", ge=0)
    batch: Int = _f(-1, "rows per step; -1 = full batch", ge=-1)
    update_grid: Bool = _f(True, "re-fit spline grids to the data during training")
    grid_update_every: Int = _f(5, "steps between grid updates", ge=1)
    stop_grid_update_step: Int = _f(50, "no grid updates after this step", ge=0)

    @field_validator("batch")
    @classmethod
    def _batch(cls, value: int) -> int:
        if value == 0:
            raise ValueError("batch 0 is empty (got 0; allowed: -1 for full batch, or >= 1)")
        return value


class PruneStage(_Stage):
    """Remove nodes, edges and inputs whose attribution scores fall below thresholds."""

    stage: Literal["prune"] = "prune"
    node_threshold: Float = _f(1e-2, "prune hidden nodes scoring below this", ge=0)
    edge_threshold: Float = _f(3e-2, "prune edges scoring below this", ge=0)
    input_threshold: Float = _f(1e-2, "prune inputs scoring below this", ge=0)
    prune_inputs: Bool = _f(True, "also remove unimportant input variables")
    on: Annotated[Literal["train", "test"], BeforeValidator(_lower)] = _f(
        "train", "rows the attribution scores are computed on"
    )


class RefineStage(_Stage):
    """Move the splines onto a finer grid (then fit again)."""

    stage: Literal["refine"] = "refine"
    grid: Int = _f(..., "new number of grid intervals (required)", ge=1, examples=[10])


class SymbolicStage(_Stage):
    """Snap every edge to the best symbolic function and assemble formulas."""

    stage: Literal["symbolic"] = "symbolic"
    library: list[str] | None = _f(None, "function names to try; null = the default library")
    complexities: dict[str, Float] = _f({}, "complexity overrides, function name -> complexity")
    weight_simple: Float = _f(0.8, "0 = prefer accuracy, 1 = prefer simplicity", ge=0, le=1)
    r2_threshold: Float = _f(0.9, "edges fitting worse than this R^2 stay splines", ge=0, le=1)
    zero_threshold: Float = _f(1e-3, "edges with attribution below this become the zero function", ge=0)
    retrain_steps: Int = _f(20, "fit steps after snapping, to tune affine constants", ge=0)
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


class OutputConfig(_Model):
    """What the run writes besides the contract files."""

    figures: Bool = _f(True, "write figures")
    formats: list[Annotated[Literal["png", "pdf", "svg"], BeforeValidator(_lower)]] = _f(["png"], "figure file formats")
    log_every: Int = _f(10, "plain progress line every N steps when stderr is not a terminal", ge=1)
    checkpoints: Bool = _f(False, "keep a model file after every stage (checkpoints/NN_stage.pt)")


class KandiscConfig(_Model):
    """Everything a `kandisc fit` run needs besides the data file."""

    seed: Int = _f(0, "random seed for the split, the initial model and training", ge=0)
    device: Annotated[Literal["cpu", "cuda", "auto"], BeforeValidator(_lower)] = _f(
        "cpu", "torch device; auto = cuda when available"
    )
    threads: Int | None = _f(None, "torch CPU threads; null = 1 for small models, else torch's default", ge=1)
    data: DataConfig = _f(default_factory=DataConfig, doc="")
    auxiliary: dict[str, str] = _f({}, "extra input features, name -> formula of input columns")
    modules: list[Any] = _f([], "modular-structure hints (strings or mappings)", json_schema_extra={"type": "list"})
    prior: Annotated[PriorConfig, BeforeValidator(_prior_shorthand)] = _f(default_factory=PriorConfig, doc="")
    model: ModelConfig = _f(default_factory=ModelConfig, doc="")
    pipeline: list[StageItem] = _f(
        default_factory=lambda: copy.deepcopy(DEFAULT_PIPELINE),
        doc="ordered stages, each {name: {params}} or a bare name",
        validate_default=True,
        json_schema_extra={"type": "list of stages"},
    )
    output: OutputConfig = _f(default_factory=OutputConfig, doc="")

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


SECTIONS: dict[str, type[_Model]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "output": OutputConfig,
    "prior": PriorConfig,
}


# ---------------------------------------------------------------- error messages


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML, cut short so a message stays one readable line."""
    try:
        text = repr(value) if isinstance(value, str) else _flow(value)
    except yaml.YAMLError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.strip().removesuffix("...").strip()  # PyYAML ends a bare scalar with "..."


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":  # pydantic's marker for a bad dict key; the key itself is already there
            text += f".{part}" if text else str(part)
    return text


def _fields_at(parent: Sequence[Any]) -> dict[str, Any]:
    """The schema fields of the mapping at ``parent`` (for "did you mean" and examples)."""
    if not parent:
        return dict(KandiscConfig.model_fields)
    if len(parent) == 1 and parent[0] in SECTIONS:
        return dict(SECTIONS[parent[0]].model_fields)
    if len(parent) == 3 and parent[0] == "pipeline" and parent[2] in STAGE_MODELS:
        fields = dict(STAGE_MODELS[parent[2]].model_fields)
        fields.pop("stage")
        return fields
    return {}


_WHAT = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "finite_number": "expected a finite number",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _describe(err: dict[str, Any]) -> str:
    """One pydantic error as `path: what is wrong (got X; allowed: Y)`."""
    kind, loc, ctx = err["type"], tuple(err["loc"]), err.get("ctx") or {}
    path = _dotted(loc) + (f".{ctx['sub']}" if ctx.get("sub") else "")
    got = _show(err.get("input"))
    if kind == "unknown_stage":
        hint = f" (did you mean {ctx['close'][0]!r}?)" if ctx["close"] else ""
        return f"unknown stage {ctx['name']!r} at {path}{hint}; stages: {', '.join(STAGE_MODELS)}"
    siblings = _fields_at(loc[:-1])
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(siblings)
        what = f"unknown key ({hint})"
    elif kind == "missing":
        examples = getattr(siblings.get(loc[-1]), "examples", None)
        what = "required key missing" + (f" (e.g. {loc[-1]}: {examples[0]})" if examples else "")
    elif kind == "literal_error":
        what = f"invalid choice (got {got}; allowed: {ctx['expected'].replace(' or ', ', ')})"
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        what = f"out of range (got {got}; allowed: {_BOUNDS[kind]} {bound})"
    elif kind in _WHAT:
        what = f"{_WHAT[kind]} (got {got})"
    elif kind == "value_error":
        what = str(ctx.get("error", err["msg"]))
    else:
        what = err["msg"][:1].lower() + err["msg"][1:] + ("" if "got" in err["msg"] else f" (got {got})")
    return f"{path}: {what}" if path else what


def format_errors(exc: ValidationError, source: str, overrides: Sequence[tuple[tuple, str]] = ()) -> str:
    """All errors on one line, grouped by where the value came from (the file or a `--set`)."""
    groups: dict[str, list[str]] = {}
    for err in exc.errors():
        origin = source
        loc = tuple(err["loc"])
        for path, text in overrides:  # the last override touching this key wins, as it did in the merge
            if loc[: len(path)] == path or (loc and path[: len(loc)] == loc):
                origin = f"--set {text}"
        groups.setdefault(origin, []).append(_describe(err))
    return "; ".join(f"{origin}: " + "; ".join(msgs) for origin, msgs in groups.items())


def validate_config(
    raw: dict[str, Any], source: str = "config", overrides: Sequence[tuple[tuple, str]] = ()
) -> KandiscConfig:
    """Validate a merged raw mapping; every problem goes into one ConfigError."""
    try:
        return KandiscConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, source, overrides)) from None


# ---------------------------------------------------------------- loading and overrides


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            if isinstance(key, str | int | float | bool):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"{path}: config file not found; check the path given to --config")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else _one_line(exc)
        raise ConfigError(f"{path}: cannot read config file ({reason}); pass a readable UTF-8 YAML file") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: YAML syntax error{where}: {_one_line(exc.problem)}; fix it there") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: YAML syntax error: {_one_line(exc)}") from None
    if data is None:
        return {}  # an empty file means "all defaults"
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys (seed, data, model, pipeline, ...),"
            f" got {type(data).__name__} {_show(data)}"
        )
    return data


def _merge(base: dict[str, Any], new: dict[str, Any]) -> None:
    """Deep-merge ``new`` into ``base``: mappings merge, everything else (lists too) replaces."""
    for key, value in new.items():
        old = base.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            _merge(old, value)
        elif not (value is None and isinstance(old, dict)):  # `data:` left empty keeps the defaults
            base[key] = value


def _child(node: Any, part: str, path: list[Any], text: str, leaf: bool) -> tuple[Any, Any]:
    """Resolve one segment of an override path; returns (key, container-or-value at key)."""
    where = _dotted(path) or "the top level"
    if isinstance(node, list):
        if not part.isdigit() or int(part) >= len(node):
            raise ConfigError(
                f"--set {text}: {where} has {len(node)} items; {part!r} is not an index 0..{len(node) - 1}"
            )
        index = int(part)
        if isinstance(node[index], str) and path == ["pipeline"]:
            node[index] = {node[index]: {}}  # a bare stage name becomes its mapping so params can be set
        return index, node[index]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {text}: {where} holds {_show(node)}, which has no keys; set {where} itself")
    if len(path) == 2 and path[0] == "pipeline" and isinstance(path[1], int) and part not in node:
        stage = next(iter(node), "?")
        raise ConfigError(
            f"--set {text}: {where} is a {stage!r} stage, not {part!r};"
            f" replace the whole item instead, e.g. --set 'pipeline.{path[1]}={{{part}: {{}}}}'"
        )
    if not leaf and node.get(part) is None:
        node[part] = {}  # a new section; validation reports it if the key is unknown
    return part, node.get(part)


def _apply_override(raw: dict[str, Any], text: str) -> tuple[tuple, str]:
    """Apply one `dotted.path=value` to ``raw`` in place; returns the path for error attribution."""
    key, sep, value_text = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. --set model.grid=10")
    try:
        value = yaml.safe_load(value_text)
    except yaml.YAMLError as exc:
        problem = _one_line(getattr(exc, "problem", exc))
        raise ConfigError(f"--set {text}: the value is not valid YAML ({problem}); quote it or fix brackets") from None
    node: Any = raw
    path: list[Any] = []
    for i, part in enumerate(parts):
        container = node
        k, node = _child(container, part, path, text, leaf=i == len(parts) - 1)
        path.append(k)
    container[k] = value
    return tuple(path), text


def load_config(path: Path | str | None = None, overrides: Sequence[str] = ()) -> KandiscConfig:
    """Defaults < YAML file < `--set` overrides, validated; raises ConfigError (one line) on any problem."""
    raw = KandiscConfig().model_dump()
    source = "config"
    if path is not None:
        path = Path(path)
        _merge(raw, _read_yaml(path))
        source = str(path)
    applied = [_apply_override(raw, text) for text in overrides]
    return validate_config(raw, source, applied)


# ---------------------------------------------------------------- output and introspection


class _Dumper(yaml.SafeDumper):
    """Block mappings, but flow lists of scalars ([2, 5, 1]) so widths and ranges read as written."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    def flat(x: Any) -> bool:
        return not isinstance(x, dict | list) or (isinstance(x, list) and all(map(flat, x)))

    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=all(map(flat, data)))


_Dumper.add_representer(list, _represent_list)


def config_to_yaml(cfg: KandiscConfig) -> str:
    """The resolved config (every default filled in, schema key order) as YAML that re-loads equal."""
    return yaml.dump(cfg.model_dump(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def _type_text(info: Any) -> str:
    extra = info.json_schema_extra or {}
    if "type" in extra:
        return extra["type"]
    text = _annotation_text(info.annotation)
    bounds = [
        f"{op} {getattr(m, attr)}"
        for m in info.metadata
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if getattr(m, attr, None) is not None
    ]
    if not bounds:
        return text
    head, nullable, _ = text.partition(" or null")
    return f"{head} {', '.join(bounds)}" + (" or null" if nullable else "")


def _annotation_text(ann: Any) -> str:
    origin, args = get_origin(ann), get_args(ann)
    if origin is Annotated:
        return _annotation_text(args[0])
    if origin is Literal:
        return "|".join(map(str, args))
    if ann is type(None):
        return "null"
    if origin is not None and args and origin not in (list, dict):  # X | None and other unions
        return " or ".join(_annotation_text(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_annotation_text(a) for a in args)}]"
    return getattr(ann, "__name__", str(ann))


def _default_text(info: Any) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, str):
        return value
    return _flow(value)


def _schema_of(cls: type[BaseModel], prefix: str, rows: list[tuple[str, str, str, str]]) -> None:
    for name, info in cls.model_fields.items():
        ann = info.annotation
        if name == "stage":
            continue
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            _schema_of(ann, f"{prefix}{name}.", rows)
            continue
        rows.append((prefix + name, _type_text(info), _default_text(info), info.description or ""))
        if name == "pipeline":
            for stage, model in STAGE_MODELS.items():
                rows.append((f"pipeline[].{stage}", "stage", "", model.__doc__ or ""))
                _schema_of(model, f"pipeline[].{stage}.", rows)


def schema_rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) for every config key, stage parameters as `pipeline[].fit.steps`."""
    rows: list[tuple[str, str, str, str]] = []
    _schema_of(KandiscConfig, "", rows)
    return rows


def resolve_width(model: ModelConfig, inputs: Sequence[str], targets: Sequence[str]) -> list[int | list[int]]:
    """``model.width`` with its default filled in, checked against the data's columns."""
    if model.width is None:
        return [len(inputs), 5, len(targets)]
    first, last = model.width[0], model.width[-1]
    n_in = first if isinstance(first, int) else sum(first)
    n_out = last if isinstance(last, int) else sum(last)
    if n_in != len(inputs) or (isinstance(first, list) and first[1]):
        raise ConfigError(
            f"model.width[0] is {_show(first)} but the data has {len(inputs)} inputs ({', '.join(inputs)});"
            f" set model.width[0] to {len(inputs)} or model.width to null"
        )
    if n_out != len(targets):
        raise ConfigError(
            f"model.width[-1] is {_show(last)} but the data has {len(targets)} targets"
            f" ({', '.join(targets)});"
            f" set model.width[-1] to {len(targets)} or model.width to null"
        )
    return list(model.width)
