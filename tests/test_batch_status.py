"""Collecting a batch into summary.csv and the exit codes of `kandisc batch status`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from kandisc.batch.cli import batch_app
from kandisc.batch.manifest import Row, write_manifest
from kandisc.batch.status import collect, exit_code


def _batch(tmp_path: Path, n: int) -> list[Row]:
    rows = [
        Row(i, tmp_path / "d.csv", None, (f"model.grid={i + 3}",), i, tmp_path / "runs" / f"{i:04d}") for i in range(n)
    ]
    write_manifest(tmp_path / "manifest.csv", rows)
    return rows


def _finish(row: Row, status: str, r2: dict | None = None, formulas: dict | None = None) -> None:
    row.run_dir.mkdir(parents=True, exist_ok=True)
    info = {"status": status, "wall_seconds": 1.5, "error": None if status == "completed" else "it broke"}
    (row.run_dir / "run.json").write_text(json.dumps(info))
    if r2 is not None:
        summary = {
            "status": status,
            "inputs": ["x0", "x1"],
            "targets": list(r2),
            "test_r2": r2,
            "formulas": formulas or dict.fromkeys(r2),
            "wall_seconds": 1.25,
        }
        (row.run_dir / "summary.json").write_text(json.dumps(summary))


def _read(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_summary_csv_lists_every_row(tmp_path: Path) -> None:
    rows = _batch(tmp_path, 4)
    _finish(rows[0], "completed", {"y": 0.9, "z": 0.5}, {"y": "x0**2 + x1", "z": None})
    _finish(rows[1], "completed", {"y": 0.99, "z": 0.97})
    _finish(rows[2], "failed")
    res = CliRunner().invoke(batch_app, ["status", str(tmp_path)])
    assert res.exit_code == 1, res.output  # a failed run
    table = _read(tmp_path / "summary.csv")
    assert list(table[0]) == [
        "index",
        "data",
        "overrides",
        "seed",
        "status",
        "test_r2_y",
        "test_r2_z",
        "formula",
        "wall_seconds",
        "run_dir",
        "error",
    ]
    assert [r["status"] for r in table] == ["completed", "completed", "failed", "pending"]
    assert table[0]["test_r2_y"] == "0.9" and table[0]["formula"] == "x0**2 + x1"
    assert table[0]["wall_seconds"] == "1.25" and table[2]["wall_seconds"] == "1.5"
    assert table[0]["overrides"] == '["model.grid=3"]' and table[3]["seed"] == "3"
    assert table[2]["error"] == "it broke" and table[2]["test_r2_y"] == ""
    assert table[3]["run_dir"] == str(rows[3].run_dir)
    # the table: counts, the best run first, the failure
    assert "completed" in res.stdout and "pending" in res.stdout
    best = res.stdout.index("best 2 by mean test R²")
    assert res.stdout.index("0.9800", best) < res.stdout.index("0.7000", best)
    assert "0002 failed: it broke" in res.stdout


def test_exit_codes(tmp_path: Path) -> None:
    rows = _batch(tmp_path, 2)
    assert exit_code(collect(rows)) == 3  # nothing ran yet
    _finish(rows[0], "completed", {"y": 1.0})
    _finish(rows[1], "running")
    assert exit_code(collect(rows)) == 3
    _finish(rows[1], "interrupted")
    assert exit_code(collect(rows)) == 1
    _finish(rows[1], "completed", {"y": 0.5})
    res = CliRunner().invoke(batch_app, ["status", str(tmp_path / "manifest.csv")])
    assert res.exit_code == 0, res.output
    (rows[1].run_dir / "run.json").write_text("{not json")
    assert collect(rows)[1].status == "unreadable" and exit_code(collect(rows)) == 1


def test_status_of_missing_batch(tmp_path: Path) -> None:
    res = CliRunner().invoke(batch_app, ["status", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "manifest not found" in res.stderr
