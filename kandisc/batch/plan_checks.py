"""Checks of a sweep plan before it is written: its size, and every sweep point against the data.

A plan that is too big to validate in reasonable time, or whose config names a column a data file
lacks, fails at ``kandisc batch plan`` with one line instead of row by row once the fits run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from kandisc.errors import ConfigError

MAX_ROWS = 20_000  # fits in one batch; validating more sweep points already takes minutes


def check_plan_size(spec_path: Path, n_data: int, sweep_lengths: list[int], n_seeds: int) -> None:
    n_rows = n_data * math.prod(sweep_lengths) * n_seeds
    if n_rows > MAX_ROWS:
        raise ConfigError(
            f"{spec_path}: the sweep expands to {n_rows} fits; a batch holds at most {MAX_ROWS},"
            " split it into several specs"
        )


def check_against_data(spec_path: Path, data_files: list[Path], combos: list, resolved: list) -> None:
    """Every sweep point against every data file's header: the columns a config names must be there.

    A config naming a column (or an auxiliary feature using one) that a data file lacks would
    otherwise plan fine and fail row by row later. The rows themselves are checked by each fit.
    """
    from kandisc.errors import KandiscError
    from kandisc.io.data import check_columns
    from kandisc.knowledge.formula import parse_formula

    seen: set = set()
    for data in data_files:
        for combo, (_, cfg) in zip(combos, resolved, strict=True):
            d = cfg.data
            key = (data, tuple(d.inputs or ()), tuple(d.targets or ()), tuple(cfg.auxiliary.items()))
            if key in seen:
                continue
            seen.add(key)
            try:
                known, _ = check_columns(data, d.inputs, d.targets)
                for name, text in cfg.auxiliary.items():
                    try:
                        parse_formula(text, known)
                    except KandiscError as exc:
                        raise ConfigError(f"auxiliary.{name}: {exc}") from None
                    known = [*known, name]
            except KandiscError as exc:
                where = f" with sweep point {json.dumps(dict(combo))}" if combo else ""
                raise ConfigError(f"{spec_path}: data {data}{where}: {exc}") from None
