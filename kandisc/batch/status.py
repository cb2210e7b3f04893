"""Collecting a batch: every row's ``run.json`` + ``summary.json`` into ``BATCH_DIR/summary.csv``.

Status of a row: ``pending`` (no run.json yet), or what its run.json says (``running``,
``completed``, ``failed``, ``interrupted``; ``unreadable`` for a corrupt file).
:func:`exit_code` maps a batch to the exit status of ``kandisc batch status``:
0 all completed, 1 some failed/interrupted/unreadable (rerun to retry), 3 some still pending or running.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from kandisc.batch.local import read_run_json
from kandisc.batch.manifest import Row, atomic_write_text

SUMMARY_NAME = "summary.csv"
EXIT_COMPLETED, EXIT_FAILED, EXIT_UNFINISHED = 0, 1, 3
_BAD = ("failed", "interrupted", "unreadable")


@dataclass(frozen=True)
class RunRecord:
    """One row of summary.csv."""

    row: Row
    status: str
    test_r2: dict[str, float] = field(default_factory=dict)
    formula: str | None = None
    wall_seconds: float | None = None
    error: str | None = None

    @property
    def mean_r2(self) -> float | None:
        vals = [v for v in self.test_r2.values() if v is not None and math.isfinite(v)]
        return sum(vals) / len(vals) if vals else None


def _read_summary(run_dir: Path) -> dict:
    try:
        data = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def collect_row(row: Row) -> RunRecord:
    info = read_run_json(row.run_dir)
    if info is None:
        return RunRecord(row, "pending")
    summary = _read_summary(row.run_dir) if info.get("status") == "completed" else {}
    targets = list(summary.get("targets") or (summary.get("test_r2") or {}).keys())
    r2 = {t: _float((summary.get("test_r2") or {}).get(t)) for t in targets}
    formulas = summary.get("formulas") or {}
    formula = formulas.get(targets[0]) if targets else None
    wall = _float(summary.get("wall_seconds") or info.get("wall_seconds"))
    return RunRecord(row, str(info.get("status", "unreadable")), r2, formula, wall, info.get("error"))


def collect(rows: Sequence[Row]) -> list[RunRecord]:
    return [collect_row(row) for row in rows]


def _targets(records: Sequence[RunRecord]) -> list[str]:
    seen: dict[str, None] = {}
    for rec in records:
        seen.update(dict.fromkeys(rec.test_r2))
    return list(seen)


def summary_text(records: Sequence[RunRecord]) -> str:
    targets = _targets(records)
    cols = ["index", "data", "overrides", "seed", "status", *(f"test_r2_{t}" for t in targets)]
    cols += ["formula", "wall_seconds", "run_dir", "error"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for rec in records:
        r = rec.row
        writer.writerow(
            [
                r.index,
                r.data,
                json.dumps(list(r.overrides)),
                "" if r.seed is None else r.seed,
                rec.status,
                *(_cell(rec.test_r2.get(t)) for t in targets),
                rec.formula or "",
                _cell(rec.wall_seconds),
                r.run_dir,
                rec.error or "",
            ]
        )
    return buf.getvalue()


def _cell(value: float | None) -> str:
    return "" if value is None else repr(value)


def write_summary(batch_dir: Path, records: Sequence[RunRecord]) -> Path:
    path = batch_dir / SUMMARY_NAME
    atomic_write_text(path, summary_text(records))
    return path


def counts(records: Sequence[RunRecord]) -> Counter:
    return Counter(rec.status for rec in records)


def exit_code(records: Sequence[RunRecord]) -> int:
    c = counts(records)
    if any(c[s] for s in _BAD):
        return EXIT_FAILED
    if c["completed"] == len(records):
        return EXIT_COMPLETED
    return EXIT_UNFINISHED


def render(records: Sequence[RunRecord], console: Console, top: int = 5) -> None:
    """Counts by status, the best runs by mean test R², and the first failures."""
    c = counts(records)
    order = ["completed", "running", "pending", "failed", "interrupted", "unreadable"]
    tally = Table(title=f"{len(records)} runs", show_header=True)
    tally.add_column("status")
    tally.add_column("runs", justify="right")
    for status in sorted(c, key=lambda s: order.index(s) if s in order else len(order)):
        tally.add_row(status, str(c[status]))
    console.print(tally)

    # overrides shared by every row (the spec's `set:`) say nothing about which run is better
    common = set.intersection(*(set(r.row.overrides) for r in records)) if len(records) > 1 else set()
    ranked = sorted((r for r in records if r.mean_r2 is not None), key=lambda r: -(r.mean_r2 or 0.0))
    if ranked:
        best = Table(title=f"best {min(top, len(ranked))} by mean test R²")
        for col in ("index", "overrides", "seed", "test R²", "formula", "wall s"):
            best.add_column(col, overflow="fold")
        for rec in ranked[:top]:
            wall = "" if rec.wall_seconds is None else f"{rec.wall_seconds:.1f}"
            overrides = " ".join(o for o in rec.row.overrides if o not in common)
            seed = "" if rec.row.seed is None else str(rec.row.seed)
            best.add_row(str(rec.row.index), overrides, seed, f"{rec.mean_r2:.4f}", rec.formula or "", wall)
        console.print(best)

    failed = [r for r in records if r.status in _BAD]
    for rec in failed[:top]:
        console.print(f"[red]{rec.row.index:04d} {rec.status}[/red]: {rec.error or 'no error recorded'}")
    if len(failed) > top:
        console.print(f"... and {len(failed) - top} more; see the error column of {SUMMARY_NAME}")
