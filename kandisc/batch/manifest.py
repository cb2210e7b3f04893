"""Sweep specs, plan expansion and the manifest file (``BATCH_DIR/manifest.csv``).

A sweep spec (YAML) names a base config, ``--set``-style overrides, data files or globs, lists of
values for dotted config keys and seeds. :func:`plan_batch` expands it into one :class:`Row` per fit
(data x sweep product x seeds), checks every combination by resolving it with
:func:`kandisc.io.config.load_config`, and :func:`write_plan` writes ``configs/NNNN.yaml`` (the
resolved config of each row) and ``manifest.csv``. Hand-written manifests need only the columns
``index`` and ``data``; relative paths in them are relative to the manifest's folder.
"""

from __future__ import annotations

import csv
import difflib
import glob
import io
import itertools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kandisc.batch.plan_checks import check_against_data, check_plan_size
from kandisc.errors import ConfigError, RunDirError

MANIFEST_NAME = "manifest.csv"
COLUMNS = ("index", "data", "config", "overrides", "seed", "run_dir")
_LABEL_MAX = 60


@dataclass(frozen=True)
class Row:
    """One fit of a batch: what ``kandisc fit`` would be called with."""

    index: int
    data: Path
    config: Path | None
    overrides: tuple[str, ...]
    seed: int | None
    run_dir: Path


@dataclass(frozen=True)
class Plan:
    """An expanded sweep: the rows and the resolved config (YAML text) of each row."""

    batch_dir: Path
    rows: list[Row]
    configs: list[str]
    spec_text: str


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]  # the config's seed range


class SweepSpec(BaseModel):
    """The sweep spec file; paths in it are relative to the spec file's folder."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    config: str | None = None
    set_: list[str] = Field(default_factory=list, alias="set")
    data: Annotated[list[str], Field(min_length=1)]
    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    seeds: Annotated[list[Seed], Field(min_length=1)] = Field(default_factory=lambda: [0])
    out: str | None = None

    @field_validator("data", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, value: list[int]) -> list[int]:
        dupes = sorted({s for s in value if value.count(s) > 1})
        if dupes:
            raise ValueError(f"duplicate seed(s) {dupes}")
        return value


# --------------------------------------------------------------------------- helpers


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (temp file + rename), creating the folder first."""
    from kandisc.io.atomic import atomic_write_text as write
    from kandisc.io.atomic import write_error

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc) from None
    write(path, text)


def format_override(key: str, value: Any) -> str:
    """``key=value`` as ``--set`` takes it: plain strings stay plain, the rest is JSON (valid YAML)."""
    if isinstance(value, str) and _yaml_scalar(value) == value and "=" not in value:
        return f"{key}={value}"
    return f"{key}={json.dumps(value)}"


def _yaml_scalar(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def _value_label(value: Any) -> str:
    flat = json.dumps(value).replace(",", "-")
    return _slug(re.sub(r"[\[\]\"' ]", "", flat))


def run_label(combo: Sequence[tuple[str, Any]], seed: int | None) -> str:
    """Short human label of one sweep point, e.g. ``grid5_width2-5-1_s0``."""
    parts = [f"{key.rsplit('.', 1)[-1]}{_value_label(value)}" for key, value in combo]
    if seed is not None:
        parts.append(f"s{seed}")
    return "_".join(parts)[:_LABEL_MAX].strip("_-")


def run_dir_name(index: int, data: Path, label: str) -> str:
    name = f"{index:04d}_{_slug(data.stem)}"
    return f"{name}_{label}" if label else name


def _read_text(path: Path, what: str, expected: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: the {what} is not UTF-8 text (bad byte at offset {exc.start}); save it as {expected}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror}); check the path and permissions") from None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --------------------------------------------------------------------------- sweep spec


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a sweep spec; every problem becomes one ConfigError line."""
    if not path.is_file():
        raise ConfigError(f"sweep spec not found: {path}")
    text = _read_text(path, "sweep spec", "a UTF-8 YAML file")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ConfigError(f"{path}: YAML nested too deeply or a number too large to read; simplify the spec") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a sweep spec must be a mapping with at least a 'data:' key")
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        from kandisc.io.config import format_errors

        raise ConfigError(format_errors(exc, str(path), model=SweepSpec)) from None


def expand_data(patterns: Sequence[str], base: Path) -> list[Path]:
    """Data paths and globs (relative to ``base``) to absolute files, in order, without repeats."""
    found: list[Path] = []
    for i, pattern in enumerate(patterns):
        full = Path(os.path.expanduser(pattern))
        full = full if full.is_absolute() else base / full
        if glob.has_magic(str(full)):
            matches = sorted(Path(p) for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
            if not matches:
                raise ConfigError(f"data[{i}]: '{pattern}' matches no file (looked in {base})")
        elif full.is_file():
            matches = [full]
        else:
            raise ConfigError(f"data[{i}]: file not found: {full}")
        found.extend(m.resolve() for m in matches if m.resolve() not in found)
    return found


def _resolve_combo(base_config: Path | None, overrides: list[str], combo: dict) -> Any:
    from kandisc.io.config import load_config  # lazy: pydantic models of the whole config

    try:
        return load_config(base_config, overrides)
    except ConfigError as exc:
        where = f"sweep point {json.dumps(combo)}: " if combo else ""
        raise ConfigError(f"{where}{exc}") from None


def _config_yaml(cfg: Any, seed: int) -> str:
    from kandisc.io.config import config_to_yaml

    # the row's seed goes into its config too, so configs/NNNN.yaml is exactly what the fit used
    return config_to_yaml(cfg.model_copy(update={"seed": seed}))


def plan_batch(spec_path: Path, out: Path | None = None) -> Plan:
    """Expand a sweep spec into rows; validates every sweep point before anything is written."""
    spec_path = spec_path.resolve()
    spec = load_spec(spec_path)
    base = spec_path.parent
    base_config = None
    if spec.config is not None:
        base_config = (base / os.path.expanduser(spec.config)).resolve()
        if not base_config.is_file():
            raise ConfigError(f"{spec_path}: config: file not found: {base_config}")
    if out is not None:
        batch_dir = out.resolve()
    elif spec.out is not None:
        batch_dir = (base / spec.out).resolve()
    else:
        batch_dir = (Path("batches") / spec_path.stem).resolve()
    data_files = _spec_error(spec_path, expand_data, spec.data, base)

    keys = list(spec.sweep)
    check_plan_size(spec_path, len(data_files), [len(v) for v in spec.sweep.values()], len(spec.seeds))
    combos = [list(zip(keys, values, strict=True)) for values in itertools.product(*spec.sweep.values())]
    resolved = []
    for combo in combos:
        overrides = list(spec.set_) + [format_override(k, v) for k, v in combo]
        cfg = _spec_error(spec_path, _resolve_combo, base_config, overrides, dict(combo))
        resolved.append((overrides, cfg))

    check_against_data(spec_path, data_files, combos, resolved)
    rows, configs = [], []
    for data in data_files:
        for combo, (overrides, cfg) in zip(combos, resolved, strict=True):
            for seed in spec.seeds:
                index = len(rows)
                label = run_label(combo, seed)
                rows.append(
                    Row(
                        index=index,
                        data=data,
                        config=batch_dir / "configs" / f"{index:04d}.yaml",
                        overrides=tuple(overrides),
                        seed=seed,
                        run_dir=batch_dir / "runs" / run_dir_name(index, data, label),
                    )
                )
                configs.append(_config_yaml(cfg, seed))
    return Plan(batch_dir, rows, configs, spec_path.read_text(encoding="utf-8"))


def _spec_error(spec_path: Path, fn, *args):
    try:
        return fn(*args)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(spec_path)) else f"{spec_path}: {msg}") from None


def write_plan(plan: Plan, overwrite: bool = False) -> Path:
    """Write configs/NNNN.yaml, spec.yaml and manifest.csv; refuses to replace a different plan."""
    manifest = plan.batch_dir / MANIFEST_NAME
    text = manifest_text(plan.rows)
    if manifest.exists() and not overwrite and manifest.read_text(encoding="utf-8") != text:
        raise RunDirError(
            f"{manifest} exists with a different plan; pass --overwrite to replace it "
            "(run directories are kept) or choose another --out"
        )
    for row, cfg in zip(plan.rows, plan.configs, strict=True):
        assert row.config is not None
        atomic_write_text(row.config, cfg)
    atomic_write_text(plan.batch_dir / "spec.yaml", plan.spec_text)
    atomic_write_text(manifest, text)
    return manifest


# --------------------------------------------------------------------------- manifest file


def manifest_text(rows: Sequence[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        seed = "" if r.seed is None else r.seed
        writer.writerow([r.index, r.data, r.config or "", json.dumps(list(r.overrides)), seed, r.run_dir])
    return buf.getvalue()


def write_manifest(path: Path, rows: Sequence[Row]) -> None:
    atomic_write_text(path, manifest_text(rows))


def manifest_path(path: Path) -> Path:
    """Accept a manifest file or the batch folder holding ``manifest.csv``."""
    path = path.resolve()
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        raise ConfigError(f"manifest not found: {path} (create it with 'kandisc batch plan SPEC.yaml')")
    return path


def read_manifest(path: Path) -> list[Row]:
    """Read and check a manifest: indices 0..N-1 in order, known columns, parseable cells."""
    path = manifest_path(path)
    text = _read_text(path, "manifest", "UTF-8 CSV (kandisc batch plan writes one)")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [h.strip() for h in reader.fieldnames or []]
        _check_header(path, header)
        records = [{k.strip(): _cell(v) for k, v in rec.items() if k} for rec in reader]
    except csv.Error as exc:
        raise ConfigError(f"{path}: malformed CSV ({exc}); re-create it with kandisc batch plan") from None
    if not records:
        raise ConfigError(f"{path}: the manifest has no rows")
    return [_parse_row(path, line, rec) for line, rec in enumerate(records)]


def _cell(value: str | list | None) -> str:
    if isinstance(value, list):  # csv puts the extra cells of a long row into a list
        raise csv.Error("a row has more cells than the header")
    return (value or "").strip()


def _check_header(path: Path, header: list[str]) -> None:
    missing = [c for c in ("index", "data") if c not in header]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}; the header needs index,data")
    for col in header:
        if col not in COLUMNS:
            close = difflib.get_close_matches(col, COLUMNS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {', '.join(COLUMNS)}"
            raise ConfigError(f"{path}: unknown column '{col}'; {hint}")


def _parse_row(path: Path, position: int, rec: dict[str, str]) -> Row:
    where = f"{path}: row {position + 1}"
    base = path.parent
    for column, text in rec.items():
        if _CONTROL.search(text):
            raise ConfigError(f"{where}: column {column} holds a control character (NUL, newline, ...); remove it")
    try:
        index = int(rec["index"])
        seed = int(rec["seed"]) if rec.get("seed") else None
    except ValueError:
        raise ConfigError(f"{where}: index and seed must be integers") from None
    if index != position:
        raise ConfigError(f"{where}: index {index}, expected {position} (indices run 0..N-1 in order)")
    if not rec["data"]:
        raise ConfigError(f"{where}: empty data path")
    data = _abs(base, rec["data"])
    overrides = _parse_overrides(where, rec.get("overrides", ""))
    config = _abs(base, rec["config"]) if rec.get("config") else None
    if rec.get("run_dir"):
        run_dir = _abs(base, rec["run_dir"])
    else:
        run_dir = base / "runs" / run_dir_name(index, data, "" if seed is None else f"s{seed}")
    return Row(index, data, config, overrides, seed, run_dir)


def _abs(base: Path, text: str) -> Path:
    p = Path(os.path.expanduser(text))
    return p if p.is_absolute() else (base / p).resolve()


def _parse_overrides(where: str, text: str) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f'{where}: overrides must be a JSON list of strings, e.g. ["model.grid=5"]')
    return tuple(value)
