"""``kandisc units``: the dimensional analysis of a config's ``units:``, one target at a time.

Owns which columns are analysed: the CSV's header when a data file is given (resolved with the
config's ``data.inputs`` / ``data.targets`` as ``kandisc fit`` would), otherwise the config's own
``data.targets`` and ``data.inputs`` (every other column with units when inputs are not listed).
Every column must have units and every ``units:`` key must be a column. The analysis itself is
:func:`kandisc.knowledge.buckingham.buckingham`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kandisc.errors import ConfigError
from kandisc.io.config import KandiscConfig, load_config
from kandisc.io.data import load_table
from kandisc.knowledge.buckingham import Analysis, buckingham
from kandisc.knowledge.units import check_columns


@dataclass(frozen=True)
class UnitsResult:
    """The analysed columns and, per target, its groups and prefactor."""

    inputs: list[str]
    targets: list[str]
    analyses: list[Analysis]
    columns_from: str  # "config" or the CSV's path

    def to_dict(self) -> dict:
        return {"inputs": self.inputs, "targets": self.targets, "columns_from": self.columns_from,
                "analyses": [a.to_dict() for a in self.analyses]}  # fmt: skip


def _columns(cfg: KandiscConfig, config: Path, data: Path | None) -> tuple[list[str], list[str]]:
    if data is not None:
        table = load_table(data, cfg.data.inputs, cfg.data.targets, cfg.data.dropna)
        return list(table.input_names), list(table.target_names)
    if cfg.data.targets is None:
        raise ConfigError(f"{config}: set data.targets, or pass --data CSV to take the columns from its header")
    targets = list(cfg.data.targets)
    inputs = list(cfg.data.inputs) if cfg.data.inputs is not None else [c for c in cfg.units if c not in targets]
    return inputs, targets


def units_report(config: Path | str, data: Path | str | None = None, overrides: Sequence[str] = ()) -> UnitsResult:
    """Groups and prefactor of every target of a config with ``units:``; KandiscError on bad input."""
    config = Path(config)
    data = None if data is None else Path(data)
    cfg = load_config(config, overrides)
    if not cfg.units:
        raise ConfigError(f"{config}: no units; add a units: section, e.g. units: {{v: m/s, c: m/s, m: kg}}")
    inputs, targets = _columns(cfg, config, data)
    check_columns(cfg.units, [*inputs, *targets])
    analyses = [buckingham(cfg.units, inputs, target) for target in targets]
    return UnitsResult(inputs, targets, analyses, "config" if data is None else str(data))
