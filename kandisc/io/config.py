"""The run configuration: loading, overrides, error messages and the resolved YAML.

Owns the merge order defaults < YAML file < ``--set`` overrides, the one-line ``ConfigError`` that
lists every problem of a file at once, the resolved YAML written into each run, and
``schema_rows`` for ``kandisc config schema``. The models themselves (every key, type, default
and doc) live in :mod:`kandisc.io.config_schema`; they are re-exported here, so
``from kandisc.io.config import KandiscConfig`` keeps working.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from kandisc.errors import ConfigError
from kandisc.io.config_schema import (
    DEFAULT_PIPELINE,
    SECTIONS,
    STAGE_MODELS,
    DataConfig,
    FitStage,
    FunctionConfig,
    KandiscConfig,
    ModelConfig,
    OutputConfig,
    PriorConfig,
    PruneStage,
    RefineStage,
    Stage,
    StageItem,
    SymbolicStage,
    _flow,
    _show,
)

__all__ = [
    "DEFAULT_PIPELINE",
    "SECTIONS",
    "STAGE_MODELS",
    "DataConfig",
    "FitStage",
    "FunctionConfig",
    "KandiscConfig",
    "ModelConfig",
    "OutputConfig",
    "PriorConfig",
    "PruneStage",
    "RefineStage",
    "Stage",
    "StageItem",
    "SymbolicStage",
    "OptionOverride",
    "config_to_yaml",
    "format_errors",
    "load_config",
    "resolve_width",
    "schema_rows",
    "validate_config",
]


# ---------------------------------------------------------------- error messages


class OptionOverride(str):
    """A ``key=value`` override that came from a dedicated flag (``--seed -1``): it merges like a
    ``--set`` but errors name the option the user typed. Still a ``str``, so it is recorded as one."""

    option: str

    def __new__(cls, key: str, value: Any, option: str) -> OptionOverride:
        made = super().__new__(cls, f"{key}={value}")
        made.option = f"{option} {value}"
        return made


def _origin(text: str) -> str:
    """Where an override came from, as the user typed it: ``--seed -1`` or ``--set seed=-1``."""
    return getattr(text, "option", None) or f"--set {text}"


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "[key]":  # pydantic's marker for a bad dict key; the key itself is already there
            text += f".{part}" if text else str(part)
    return text


def _fields_at(parent: Sequence[Any], model: type[BaseModel] = KandiscConfig) -> dict[str, Any]:
    """The schema fields of the mapping at ``parent`` (for "did you mean" and examples)."""
    if not parent:
        return {info.alias or name: info for name, info in model.model_fields.items()}
    if model is not KandiscConfig:
        return {}
    if len(parent) == 1 and parent[0] in SECTIONS:
        return dict(SECTIONS[parent[0]].model_fields)
    if len(parent) == 2 and parent[0] == "functions":
        return dict(FunctionConfig.model_fields)
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
    "too_short": "empty list; give at least one value",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}


def _describe(err: dict[str, Any], model: type[BaseModel] = KandiscConfig) -> str:
    """One pydantic error as `path: what is wrong (got X; allowed: Y)`."""
    kind, loc, ctx = err["type"], tuple(err["loc"]), err.get("ctx") or {}
    path = _dotted(loc) + (f".{ctx['sub']}" if ctx.get("sub") else "")
    got = _show(err.get("input"))
    if kind == "unknown_stage":
        hint = f" (did you mean {ctx['close'][0]!r}?)" if ctx["close"] else ""
        return f"unknown stage {ctx['name']!r} at {path}{hint}; stages: {', '.join(STAGE_MODELS)}"
    siblings = _fields_at(loc[:-1], model)
    if kind == "extra_forbidden":
        # At the top level a misspelt section (modle:) means the section, not a near key (modules:).
        sections = [name for name in siblings if name in SECTIONS] if len(loc) == 1 else []
        close = difflib.get_close_matches(str(loc[-1]), sections, n=1) or difflib.get_close_matches(
            str(loc[-1]), siblings, n=1
        )
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


def format_errors(
    exc: ValidationError,
    source: str,
    overrides: Sequence[tuple[tuple, str]] = (),
    model: type[BaseModel] = KandiscConfig,
) -> str:
    """All errors on one line, grouped by where the value came from (the file or a `--set`).

    The one formatter of pydantic errors: run configs, and (``model``) any other file kandisc
    validates with pydantic, such as sweep specs.
    """
    groups: dict[str, list[str]] = {}
    for err in exc.errors():
        origin = source
        loc = tuple(err["loc"])
        for path, text in overrides:  # the last override touching this key wins, as it did in the merge
            if loc[: len(path)] == path or (loc and path[: len(loc)] == loc):
                origin = _origin(text)
        groups.setdefault(origin, []).append(_describe(err, model))
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


def _unreadable_yaml(exc: BaseException) -> str:
    """What PyYAML could parse but Python cannot hold: thousands of nested levels, giant integers."""
    if isinstance(exc, RecursionError | MemoryError):
        return "YAML nested too deeply to read; a config is a few levels of mappings and lists"
    return f"YAML value cannot be read ({_one_line(exc)[:120]}); numbers must fit in a float64"


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
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ConfigError(f"{path}: {_unreadable_yaml(exc)}") from None
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
                f"{_origin(text)}: {where} has {len(node)} items; {part!r} is not an index 0..{len(node) - 1}"
            )
        index = int(part)
        if isinstance(node[index], str) and path == ["pipeline"]:
            node[index] = {node[index]: {}}  # a bare stage name becomes its mapping so params can be set
        return index, node[index]
    if not isinstance(node, dict):
        raise ConfigError(f"{_origin(text)}: {where} holds {_show(node)}, which has no keys; set {where} itself")
    if len(path) == 2 and path[0] == "pipeline" and isinstance(path[1], int) and part not in node:
        stage = next(iter(node), "?")
        raise ConfigError(
            f"{_origin(text)}: {where} is a {stage!r} stage, not {part!r};"
            f" replace the whole item instead, e.g. --set 'pipeline.{path[1]}={{{part}: {{}}}}'"
        )
    if not leaf and path == [] and part == "pipeline" and node.get(part) is None:
        raise ConfigError(
            f"{_origin(text)}: pipeline is null (the discovery search runs); give the whole list first, "
            "e.g. --set 'pipeline=[{fit: {steps: 50}}, symbolic]', or set one in the config file"
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
        fix = "quote it or fix brackets"
        raise ConfigError(f"{_origin(text)}: the value is not valid YAML ({problem}); {fix}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        origin = getattr(text, "option", None) or f"--set {_show(text)}"
        raise ConfigError(f"{origin}: {_unreadable_yaml(exc)}") from None
    node: Any = raw
    path: list[Any] = []
    for i, part in enumerate(parts):
        container = node
        k, node = _child(container, part, path, text, leaf=i == len(parts) - 1)
        path.append(k)
    container[k] = value
    return tuple(path), text


def load_config(
    path: Path | str | Mapping[str, Any] | KandiscConfig | None = None, overrides: Sequence[str] = ()
) -> KandiscConfig:
    """Defaults < YAML file < `--set` overrides, validated; raises ConfigError (one line) on any problem.

    ``path`` may also be a mapping (the YAML file's content, from Python) or a ``KandiscConfig``.
    """
    raw = KandiscConfig().model_dump()
    source = "config"
    if isinstance(path, KandiscConfig):
        raw = path.model_dump()
    elif isinstance(path, Mapping):
        _merge(raw, copy.deepcopy(dict(path)))  # deep: the caller's nested dicts stay as they were
    elif path is not None:
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
        if name == "functions":
            _schema_of(FunctionConfig, f"{prefix}{name}.<name>.", rows)
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
    from kandisc.io.sizes import layer_sizes

    layer_sizes(model.width, model.mult_arity)
    return list(model.width)
