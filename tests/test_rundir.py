"""Tests for kandisc.io.rundir and kandisc.io.atomic: naming, overwrite rules, run.json, metrics."""

from __future__ import annotations

import csv
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from kandisc.errors import RunDirError
from kandisc.io.atomic import atomic_target, atomic_write_bytes, atomic_write_text
from kandisc.io.rundir import RunDir, default_run_dir, read_run_json

NOW = datetime(2026, 11, 28, 11, 5, 0, tzinfo=UTC)


class FakeTimer:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_default_run_dir_name(tmp_path: Path) -> None:
    path = default_run_dir("data/feynman.csv", "seed: 0\n", "ab" * 32, root=tmp_path, now=NOW)
    assert path.parent == tmp_path
    stamp, stem, digest = path.name.split("_")
    assert (stamp, stem, len(digest)) == ("20261128-110500", "feynman", 6)
    assert default_run_dir("feynman.csv", "seed: 0\n", "ab" * 32, tmp_path, NOW) == path
    assert default_run_dir("feynman.csv", "seed: 1\n", "ab" * 32, tmp_path, NOW) != path
    path.mkdir()
    assert default_run_dir("feynman.csv", "seed: 0\n", "ab" * 32, tmp_path, NOW).name == path.name + "-2"


def test_atomic_writes_leave_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert target.read_text() == "two" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]
    assert target.stat().st_mode & 0o644 == 0o644


def test_atomic_target_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_create_writes_nothing_until_first_write(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    assert not run.path.exists()
    run.write_config("seed: 0\n")
    assert (run.path / "config.yaml").read_text() == "seed: 0\n"


def test_existing_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    RunDir.create(tmp_path / "run")  # an empty directory is fine
    (tmp_path / "run" / "run.json").write_text("{}")
    with pytest.raises(RunDirError, match=r"run directory .*run exists; pass --overwrite or choose --out"):
        RunDir.create(tmp_path / "run")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirError, match="exists and is a file"):
        RunDir.create(tmp_path / "file")


def _old_run(tmp_path: Path) -> Path:
    old = tmp_path / "run"
    (old / "figures").mkdir(parents=True)
    for name in ("run.json", "model.pt", "summary.json", "figures/loss.png", "notes.txt"):
        (old / name).write_text("old")
    return old


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_overwrite_replaces_the_old_run_only_once_the_new_one_completed(tmp_path: Path) -> None:
    old = _old_run(tmp_path)
    run = RunDir.create(old, overwrite=True)
    run.write_config("seed: 1\n")
    run.start(["kandisc"], 1, "d.csv", "0" * 64, {})
    run.write_json("summary.json", {"new": True})
    assert _tree(old)["model.pt"] == "old" and "config.yaml" not in _tree(old)  # written beside it
    run.finish("completed")
    assert run.path == old
    tree = _tree(old)
    assert sorted(tree) == ["config.yaml", "notes.txt", "run.json", "summary.json"]  # others' notes stay
    assert tree["notes.txt"] == "old" and json.loads(tree["summary.json"]) == {"new": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging folder left


@pytest.mark.parametrize("status", ["failed", "interrupted"])
def test_an_overwrite_that_does_not_complete_leaves_the_old_run_intact(tmp_path: Path, status: str) -> None:
    old = _old_run(tmp_path)
    before = _tree(old)
    run = RunDir.create(old, overwrite=True)
    run.write_config("seed: 1\n")
    run.start(["kandisc"], 1, "d.csv", "0" * 64, {})
    (run.path / "model.pt").write_text("new")
    run.finish(status, "boom")
    assert _tree(old) == before and run.path == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_stale_staging_folder_of_a_killed_attempt_is_cleared(tmp_path: Path) -> None:
    old = _old_run(tmp_path)
    stale = tmp_path / ".run.kandisc-new" / "run"
    stale.mkdir(parents=True)
    (stale / "summary.json").write_text("stale")
    run = RunDir.create(old, overwrite=True)
    run.write_config("seed: 1\n")
    run.finish("completed")
    assert "summary.json" not in _tree(old) and not (tmp_path / ".run.kandisc-new").exists()


def test_a_failed_run_in_place_keeps_no_result_that_looks_complete(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    run.write_config("seed: 1\n")
    run.start(["kandisc"], 1, "d.csv", "0" * 64, {})
    for name in ("model.pt", "summary.json", "report.md", "formulas.csv"):
        run.write_text(name, "x")
    (run.figures_dir / "loss.png").write_text("x")
    run.finish("failed", "disk full")
    assert sorted(_tree(run.path)) == ["config.yaml", "model.pt", "run.json"]


def test_overwrite_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "paper.tex").write_text("precious")
    (tmp_path / "config.yaml").write_text("precious")
    with pytest.raises(RunDirError, match="is not a kandisc run directory"):
        RunDir.create(tmp_path, overwrite=True)


def test_run_json_life_cycle(tmp_path: Path) -> None:
    timer = FakeTimer()
    run = RunDir.create(tmp_path / "run", clock=lambda: NOW, timer=timer)
    run.start(["kandisc", "fit", "d.csv"], 3, "d.csv", "ff" * 32, {"kandisc": "0.1.0"}, {"device": "cpu"})
    info = read_run_json(run.path)
    assert info["status"] == "running" and info["start_time"] == "2026-11-28T11:05:00Z"
    assert info["argv"] == ["kandisc", "fit", "d.csv"] and info["seed"] == 3
    assert info["data"] == {"path": "d.csv", "sha256": "ff" * 32} and info["device"] == "cpu"
    timer.t += 12.5
    run.finish("failed", error="DataError: boom")
    info = read_run_json(run.path)
    assert info["status"] == "failed" and info["error"] == "DataError: boom"
    assert info["wall_seconds"] == 12.5 and info["end_time"] == "2026-11-28T11:05:00Z"
    with pytest.raises(ValueError, match="finish status"):
        run.finish("running")


def test_write_json_turns_nan_and_numpy_into_plain_json(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    obj = {"r2": [float("nan"), math.inf, 0.5], "n": np.int64(3), "a": np.array([1.0, np.nan])}
    path = run.write_json("summary.json", obj)
    assert json.loads(path.read_text()) == {"r2": [None, None, 0.5], "n": 3, "a": [1.0, None]}


def test_metrics_rows_are_flushed_while_open(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    with run.metrics_writer() as metrics:
        metrics.write(0, "fit", 1.5, 2.5, 0.1, 12)
        metrics.write(1, "fit", np.float64(0.25), None, float("nan"), np.int64(11))
        with open(run.path / "metrics.csv", newline="") as handle:
            rows = list(csv.reader(handle))
    assert rows == [
        ["step", "stage", "train_loss", "test_loss", "reg", "n_edges"],
        ["0", "fit", "1.5", "2.5", "0.1", "12"],
        ["1", "fit", "0.25", "", "nan", "11"],
    ]
    with pytest.raises(RunDirError, match="metrics writer is closed"):
        metrics.write(2, "fit", 0.1)


def test_path_helpers(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "run")
    assert run.model_path == run.path / "model.pt"
    assert run.figures_dir.is_dir() and run.formulas_dir.is_dir()
    assert run.checkpoint_path(3, "refine") == run.path / "checkpoints" / "03_refine.pt"
    assert run.formulas_csv == run.path / "formulas.csv"
