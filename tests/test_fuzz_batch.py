"""Fuzz findings (issue 18) on sweep specs, manifests and batch commands.

Bad specs and manifests (not UTF-8, NUL bytes, configs that do not fit the data, folders in the
way) are one-line errors with exit 2; a manifest row whose data, config or override is bad is
refused before its run directory exists. The Slurm cases are in test_slurm_injection.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kandisc.batch.manifest import Row, write_manifest
from kandisc.cli import app

runner = CliRunner()
TINY = "model: {width: [2, 2, 1], grid: 3}\npipeline:\n  - fit: {steps: 2}\noutput: {figures: false}\n"


@pytest.fixture
def work(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 40), rng.uniform(-1, 1, 40)
    pd.DataFrame({"x": x, "y": y, "f": x * y}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "c.yaml").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kandisc(*args: str):
    return runner.invoke(app, list(args))


def assert_refused(res, *needles: str, code: int = 2) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == code, res.output
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("case", "spec", "needle"),
    [
        ("batch.plan.binary", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
        ("batch.plan.latin1", "data: daten_\u00fc.csv\n".encode("latin-1"), "not UTF-8"),
        ("batch.plan.config_bad", b"config: c.yaml\ndata: data.csv\nset: ['data.inputs=[x, nope]']\n", "'nope'"),
        ("batch.plan.aux_bad", b"config: c.yaml\ndata: data.csv\nset: ['auxiliary={r: x*q}']\n", "auxiliary.r"),
        ("batch.plan.deep", b"data: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested too deeply"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("batch.") else "",
)
def test_bad_sweep_specs(work, case, spec, needle) -> None:
    (work / "spec.yaml").write_bytes(spec)
    assert_refused(kandisc("batch", "plan", "spec.yaml", "--out", "b"), "spec.yaml", needle)
    assert not (work / "b").exists()


def test_plan_into_a_file(work) -> None:
    """batch.plan.out_is_file: the default batch folder is taken by a file."""
    (work / "spec.yaml").write_text("config: c.yaml\ndata: data.csv\n")
    (work / "batches").mkdir()
    (work / "batches" / "spec").write_text("keep me")
    assert_refused(kandisc("batch", "plan", "spec.yaml"), "batches/spec")
    assert (work / "batches" / "spec").read_text() == "keep me"


def _manifest(work, rows: list[Row]) -> None:
    write_manifest(work / "b" / "manifest.csv", rows)


def _row(work, index: int = 0, **changes) -> Row:
    fields = {"data": work / "data.csv", "config": work / "c.yaml", "overrides": (), "seed": 0}
    fields.update(changes)
    return Row(index, **fields, run_dir=work / "b" / "runs" / f"{index:04d}")


@pytest.mark.parametrize(
    ("case", "content", "needle"),
    [
        ("batch.run_one.binary", b"\xff\xfe\x00i\x00n\x00d\x00e\x00x", "not UTF-8"),
        ("batch.run_one.latin1", "index,data\n0,d\u00e4ten.csv\n".encode("latin-1"), "not UTF-8"),
        ("batch.run_one.nul", b"index,data\n0,data\x00.csv\n", "control character"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("batch.") else "",
)
def test_unreadable_manifests(work, case, content, needle) -> None:
    (work / "b").mkdir()
    (work / "b" / "manifest.csv").write_bytes(content)
    assert_refused(kandisc("batch", "run-one", "b", "--index", "0"), "manifest.csv", needle)
    assert not (work / "b" / "runs").exists()


@pytest.mark.parametrize(
    ("case", "changes", "needle"),
    [
        ("batch.run_one.row_data_missing", {"data": "missing.csv"}, "data file not found"),
        ("batch.run_one.row_config_bad", {"config": "bad.yaml"}, "unknown key"),
        ("batch.run_one.row_override_bad", {"overrides": ("model.grid=abc",)}, "model.grid"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("batch.") else "",
)
def test_bad_rows_leave_no_run_directory(work, case, changes, needle) -> None:
    (work / "bad.yaml").write_text("model: {gird: 3}\n")
    changes = {k: (work / v if isinstance(v, str) else v) for k, v in changes.items()}
    _manifest(work, [_row(work, **changes)])
    assert_refused(kandisc("batch", "run-one", "b", "--index", "0"), "row 0: ", needle)
    assert not (work / "b" / "runs").exists()


def test_run_dir_taken_by_a_file(work) -> None:
    """batch.run_one.row_run_dir_is_file."""
    _manifest(work, [_row(work)])
    (work / "b" / "runs").mkdir()
    (work / "b" / "runs" / "0000").write_text("keep me")
    assert_refused(kandisc("batch", "run-one", "b", "--index", "0"), "is a file")
    assert (work / "b" / "runs" / "0000").read_text() == "keep me"


def test_status_reads_a_garbage_run_json(work) -> None:
    """batch.run.status_garbage_runjson: bytes that are not UTF-8 JSON are `unreadable`, not a traceback."""
    _manifest(work, [_row(work)])
    run = work / "b" / "runs" / "0000"
    run.mkdir(parents=True)
    (run / "run.json").write_bytes(b"\xff\x00garbage")
    res = kandisc("batch", "status", "b")
    assert res.exit_code == 1 and "unreadable" in res.stdout, res.output
    assert res.stderr.strip().splitlines() == [f"summary: {work / 'b' / 'summary.csv'}"]
    assert (run / "run.json").read_bytes() == b"\xff\x00garbage"
    assert "unreadable" in (work / "b" / "summary.csv").read_text()


def test_status_of_a_pending_batch(work) -> None:
    """batch.run.status_pending: exit 3, a complete summary, run folders untouched (none created)."""
    _manifest(work, [_row(work), _row(work, 1)])
    res = kandisc("batch", "status", "b")
    assert res.exit_code == 3, res.output
    summary = (work / "b" / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and all(",pending," in line for line in summary[1:])
    assert not (work / "b" / "runs").exists()
    assert res.stderr.strip().splitlines() == [f"summary: {work / 'b' / 'summary.csv'}"]
