"""run-one idempotency and the local process pool (kandisc.batch.local, `batch run-one` / `batch run`)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from kandisc.batch import local
from kandisc.batch.cli import batch_app
from kandisc.batch.local import Outcome, check_resources, run_batch, run_one, run_status
from kandisc.batch.manifest import Row, read_manifest, write_manifest
from kandisc.errors import ConfigError, DataError

# ---------------------------------------------------------------- fake fits (module level: picklable)


def fake_fit(data, config=None, out=None, overrides=(), seed=None, overwrite=False, **_):
    """Stands in for kandisc.api.fit_run: 'bad*' data fails validation (before the run directory
    exists, as in the real fit), 'bug*' data crashes during the run."""
    out = Path(out)
    stem = Path(data).stem
    if stem.startswith("bad"):
        raise DataError(f"{data}: no numeric columns")
    out.mkdir(parents=True, exist_ok=True)
    with (out / "calls.txt").open("a") as fh:
        fh.write(f"{seed} {overwrite} {list(overrides)}\n")
    if stem.startswith("bug"):
        raise RuntimeError("boom")
    info = {"status": "completed", "seed": seed, "omp": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid()}
    (out / "run.json").write_text(json.dumps(info))
    (out / "summary.json").write_text(json.dumps({"status": "completed", "targets": ["y"], "test_r2": {"y": 1}}))
    return SimpleNamespace(run_dir=out, status="completed", summary={})


def slow_fit(data, out=None, **kw):
    """'slow*' data runs until interrupted and then marks its run, as the real fit does."""
    if not Path(data).stem.startswith("slow"):
        return fake_fit(data, out=out, **kw)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"status": "running"}))
    try:
        for _ in range(600):
            time.sleep(0.05)
    except KeyboardInterrupt:
        (out / "run.json").write_text(json.dumps({"status": "interrupted", "error": "Ctrl-C"}))
        raise
    raise AssertionError("never interrupted")


def _rows(tmp_path: Path, stems: list[str]) -> list[Row]:
    rows = []
    for i, stem in enumerate(stems):
        data = tmp_path / f"{stem}.csv"
        data.write_text("x,y\n1,2\n")
        rows.append(Row(i, data, None, ("model.grid=3",), i, tmp_path / "runs" / f"{i:04d}_{stem}"))
    return rows


def _calls(row: Row) -> int:
    path = row.run_dir / "calls.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


# ---------------------------------------------------------------- run-one


def test_run_one_skips_completed_and_redoes_failed(tmp_path: Path) -> None:
    (row,) = _rows(tmp_path, ["a"])
    assert run_one(row, fake_fit).status == "completed"
    assert run_one(row, fake_fit) == Outcome(0, "skipped", row.run_dir)
    assert _calls(row) == 1
    for status in ("failed", "interrupted", "running"):
        (row.run_dir / "run.json").write_text(json.dumps({"status": status}))
        assert run_one(row, fake_fit).status == "completed"
    assert _calls(row) == 4
    assert (row.run_dir / "calls.txt").read_text().splitlines()[0] == "0 True ['model.grid=3']"


def test_run_one_records_failures_in_run_json(tmp_path: Path, capsys) -> None:
    bad, bug = _rows(tmp_path, ["bad", "bug"])
    out = run_one(bad, fake_fit)
    assert (out.status, out.error, out.invalid) == ("failed", f"{bad.data}: no numeric columns", True)
    assert not bad.run_dir.exists()  # refused by validation: no half-made run directory
    out = run_one(bug, fake_fit)
    assert out.status == "failed" and out.error == "RuntimeError: boom"
    assert "Traceback" in capsys.readouterr().err  # a bug keeps its traceback in the job log
    assert run_status(bug.run_dir) == "failed"
    # a retry that fails differently replaces the stale record of the earlier attempt
    bug.data.rename(bug.data.with_name("bad_now.csv"))
    run_one(Row(1, bug.data.with_name("bad_now.csv"), None, (), 1, bug.run_dir), fake_fit)
    assert "no numeric columns" in json.loads((bug.run_dir / "run.json").read_text())["error"]


def test_run_one_marks_interrupted_and_reraises(tmp_path: Path) -> None:
    (row,) = _rows(tmp_path, ["a"])

    def interrupted_fit(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_one(row, interrupted_fit)
    assert run_status(row.run_dir) == "interrupted"


def test_run_one_cli_index_from_slurm_env(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local, "_default_fit", lambda: fake_fit)
    rows = _rows(tmp_path, ["a", "bad"])
    write_manifest(tmp_path / "manifest.csv", rows)
    runner = CliRunner()
    res = runner.invoke(batch_app, ["run-one", str(tmp_path)], env={"SLURM_ARRAY_TASK_ID": "0"})
    assert res.exit_code == 0, res.output
    assert res.stdout == f"0000 completed {rows[0].run_dir}\n"
    res = runner.invoke(batch_app, ["run-one", str(tmp_path / "manifest.csv"), "--index", "0"])
    assert res.stdout == f"0000 skipped (completed) {rows[0].run_dir}\n"
    res = runner.invoke(batch_app, ["run-one", str(tmp_path), "-i", "1"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "row 1: " in res.stderr
    assert "no numeric columns" in res.stderr and not rows[1].run_dir.exists()
    res = runner.invoke(batch_app, ["run-one", str(tmp_path), "-i", "2"])
    assert res.exit_code == 2 and "out of range" in res.stderr
    res = runner.invoke(batch_app, ["run-one", str(tmp_path)], env={"SLURM_ARRAY_TASK_ID": None})
    assert res.exit_code == 2 and "give --index" in res.stderr


def test_run_one_cli_count_runs_a_chunk_in_one_process(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local, "_default_fit", lambda: fake_fit)
    rows = _rows(tmp_path, ["a", "bug", "b", "bad"])
    write_manifest(tmp_path / "manifest.csv", rows)
    runner = CliRunner()
    res = runner.invoke(batch_app, ["run-one", str(tmp_path), "--index", "0", "--count", "3"])
    assert res.exit_code == 1  # row 1's fit failed; the chunk went on to row 2
    assert res.stdout.splitlines() == [
        f"0000 completed {rows[0].run_dir}",
        f"0001 failed {rows[1].run_dir}",
        f"0002 completed {rows[2].run_dir}",
    ]
    assert [_calls(r) for r in rows] == [1, 1, 1, 0]
    res = runner.invoke(batch_app, ["run-one", str(tmp_path), "-i", "2", "-n", "2"])
    assert res.exit_code == 2 and res.stdout == f"0002 skipped (completed) {rows[2].run_dir}\n"
    assert res.stderr.count("\n") == 1 and "row 3: " in res.stderr and "no numeric columns" in res.stderr
    res = runner.invoke(batch_app, ["run-one", str(tmp_path), "-i", "2", "-n", "3"])
    assert res.exit_code == 2 and "--count 3" in res.stderr and "1 to 2" in res.stderr


def sigterm_fit(data, out=None, **kw):
    """Slurm's scancel / time limit: SIGTERM while the fit runs."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps({"status": "running"}))
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    raise AssertionError("SIGTERM did not interrupt the fit")


def test_run_one_cli_sigterm_marks_interrupted(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local, "_default_fit", lambda: sigterm_fit)
    rows = _rows(tmp_path, ["a"])
    write_manifest(tmp_path / "manifest.csv", rows)
    before = signal.getsignal(signal.SIGTERM)
    res = CliRunner().invoke(batch_app, ["run-one", str(tmp_path), "--index", "0"])
    assert res.exit_code == 143, res.output  # 128 + SIGTERM, as a shell reports it
    assert run_status(rows[0].run_dir) == "interrupted"
    assert signal.getsignal(signal.SIGTERM) == before


# ---------------------------------------------------------------- local pool


def test_pool_isolates_failures_and_sets_threads(tmp_path: Path) -> None:
    rows = _rows(tmp_path, ["a", "bad", "bug", "b", "c"])
    seen: list[Outcome] = []
    outcomes = run_batch(rows, jobs=2, threads=1, fit=fake_fit, on_done=seen.append)
    assert seen == outcomes
    status = {o.index: o.status for o in outcomes}
    assert status == {0: "completed", 1: "failed", 2: "failed", 3: "completed", 4: "completed"}
    assert json.loads((rows[0].run_dir / "run.json").read_text())["omp"] == "1"
    assert run_status(rows[1].run_dir) is None and run_status(rows[2].run_dir) == "failed"
    # resubmission: completed rows are skipped without a worker, failed ones are retried
    again = run_batch(rows, jobs=2, threads=1, fit=fake_fit)
    assert sorted((o.index, o.status) for o in again) == [
        (0, "skipped"),
        (1, "failed"),
        (2, "failed"),
        (3, "skipped"),
        (4, "skipped"),
    ]
    assert [_calls(r) for r in rows] == [1, 0, 2, 1, 1]


def test_pool_reuses_its_workers_across_rows(tmp_path: Path) -> None:
    rows = _rows(tmp_path, [f"r{i}" for i in range(6)])
    run_batch(rows, jobs=2, threads=1, fit=fake_fit)
    pids = [json.loads((r.run_dir / "run.json").read_text())["pid"] for r in rows]
    assert len(set(pids)) <= 2  # 6 rows, 2 worker processes: each imported kandisc (and torch) once


def test_pool_ctrl_c_interrupts_running_cancels_pending(tmp_path: Path) -> None:
    rows = _rows(tmp_path, ["a", "slow1", "slow2", "slow3", "slow4"])

    def interrupt_when_both_slow_fits_run() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(run_status(r.run_dir) == "running" for r in rows[1:3]):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    # A shell starts background jobs with SIGINT ignored (nohup, `cmd &`): Ctrl-C must still mean Ctrl-C here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_when_both_slow_fits_run, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            run_batch(rows, jobs=2, threads=1, fit=slow_fit)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert run_status(rows[0].run_dir) == "completed"
    assert run_status(rows[1].run_dir) == run_status(rows[2].run_dir) == "interrupted"
    assert run_status(rows[3].run_dir) is None and run_status(rows[4].run_dir) is None


def test_resource_check() -> None:
    cores = local.available_cores()
    check_resources(1, 1)
    check_resources(cores + 1, 2, oversubscribe=True)
    with pytest.raises(ConfigError, match="exceeds the .* cores available; lower them or pass --oversubscribe"):
        check_resources(cores + 1, 1)
    with pytest.raises(ConfigError, match="at least 1"):
        check_resources(0, 1)


def test_run_cli_rejects_oversubscription(tmp_path: Path) -> None:
    write_manifest(tmp_path / "manifest.csv", _rows(tmp_path, ["a"]))
    res = CliRunner().invoke(batch_app, ["run", str(tmp_path), "-j", "1", "--threads-per-job", "999"])
    assert res.exit_code == 2 and "--oversubscribe" in res.stderr


# ---------------------------------------------------------------- with the real fit

TINY_CONFIG = """
model: {width: [2, 2, 1], grid: 3}
pipeline:
  - fit: {steps: 3}
output: {figures: false}
"""


def _tiny_batch(tmp_path: Path, n_rows: int) -> Path:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 2))
    data = tmp_path / "tiny.csv"
    np.savetxt(data, np.c_[x, x[:, 0] ** 2 + x[:, 1]], delimiter=",", header="x0,x1,y", comments="")
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_CONFIG)
    rows = [Row(i, data, config, (), i, tmp_path / "runs" / f"{i:04d}") for i in range(n_rows)]
    write_manifest(tmp_path / "manifest.csv", rows)
    return tmp_path / "manifest.csv"


def test_real_run_one_is_idempotent(tmp_path: Path) -> None:
    pytest.importorskip("kandisc.api")
    manifest = _tiny_batch(tmp_path, 1)
    (row,) = read_manifest(manifest)
    runner = CliRunner()
    res = runner.invoke(batch_app, ["run-one", str(manifest), "--index", "0"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("0000 completed")
    assert (row.run_dir / "model.pt").is_file() and run_status(row.run_dir) == "completed"
    stamp = (row.run_dir / "model.pt").stat().st_mtime_ns
    res = runner.invoke(batch_app, ["run-one", str(manifest), "--index", "0"])
    assert res.stdout.startswith("0000 skipped (completed)")
    assert (row.run_dir / "model.pt").stat().st_mtime_ns == stamp
    info = json.loads((row.run_dir / "run.json").read_text())
    (row.run_dir / "run.json").write_text(json.dumps({**info, "status": "failed"}))
    res = runner.invoke(batch_app, ["run-one", str(manifest), "--index", "0"])
    assert res.stdout.startswith("0000 completed") and run_status(row.run_dir) == "completed"


def test_real_local_run_two_jobs(tmp_path: Path) -> None:
    pytest.importorskip("kandisc.api")
    manifest = _tiny_batch(tmp_path, 3)
    res = CliRunner().invoke(batch_app, ["run", str(manifest), "--jobs", "2", "--oversubscribe"])
    assert res.exit_code == 0, res.output
    summary = (tmp_path / "summary.csv").read_text().splitlines()
    assert len(summary) == 4 and all(",completed," in line for line in summary[1:])
    for row in read_manifest(manifest):
        r2 = json.loads((row.run_dir / "summary.json").read_text())["test_r2"]["y"]
        assert np.isfinite(r2)
