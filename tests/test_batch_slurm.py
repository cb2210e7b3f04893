"""A real Slurm round trip: plan 4 fits, `batch slurm --submit`, wait, check the run directories.

Needs a running cluster (`scripts/ci-slurm.sh start`, root + Debian packages). In CI (CI=1 or
KANDISC_REQUIRE_SLURM=1) a missing cluster fails this test; elsewhere it is skipped with the reason.
The checks read the output files, not only exit codes: a misconfigured Slurm can report success for
jobs that did nothing.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
WAIT_S = 180

CONFIG = """
model: {width: [2, 2, 1]}
pipeline:
  - fit: {steps: 5}
output: {figures: false}
"""

SPEC = """
config: tiny.yaml
data: [tiny.csv]
sweep:
  model.grid: [3, 5]
seeds: [0, 1]
"""


def _cluster_problem() -> str | None:
    """Why a job cannot be submitted here, or None when the cluster answers with a usable node."""
    for tool in ("sinfo", "sbatch", "squeue"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not on PATH (start the cluster with scripts/ci-slurm.sh start, as root)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%a %T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s (slurmctld down?)"
    states = proc.stdout.split()
    if proc.returncode != 0 or not states:
        return f"sinfo failed (exit {proc.returncode}): {proc.stderr.strip() or 'no partitions'}"
    if "up" not in states[0::2] or not any(s.rstrip("*") in ("idle", "mixed", "allocated") for s in states[1::2]):
        return f"no partition up with a usable node (sinfo: {proc.stdout.strip()})"
    return None


@pytest.fixture
def slurm_cluster() -> None:
    problem = _cluster_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "1" or os.environ.get("KANDISC_REQUIRE_SLURM") == "1":
        pytest.fail(f"Slurm is required here (CI) but not usable: {problem}", pytrace=False)
    pytest.skip(f"no Slurm cluster: {problem}")


@pytest.fixture
def batch_root():
    # slurmd runs the job from the submit dir; keep everything under /tmp and world-readable
    root = Path(tempfile.mkdtemp(prefix="kandisc-slurm-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _kandisc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    cmd = [sys.executable, "-m", "kandisc", "batch", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _wait(job_id: str) -> str:
    """Poll squeue until the array has left the queue; returns the last squeue output seen."""
    deadline = time.monotonic() + WAIT_S
    seen = ""
    while time.monotonic() < deadline:
        proc = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i %T %R"], capture_output=True, text=True)
        if proc.returncode != 0 and "Invalid job id" in proc.stderr:
            return seen  # already purged from slurmctld's memory: finished
        if proc.returncode == 0 and not proc.stdout.strip():
            return seen
        seen = proc.stdout.strip()
        time.sleep(1)
    subprocess.run(["scancel", job_id], capture_output=True)
    pytest.fail(f"array job {job_id} still queued/running after {WAIT_S} s: {seen}", pytrace=False)


def _logs(batch: Path, job_id: str) -> str:
    parts = [subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout]
    for log in sorted((batch / "slurm").glob("*.*")):
        parts.append(f"----- {log.name} -----\n{log.read_text(errors='replace')[-3000:]}")
    return "\n".join(parts)


def _write_inputs(root: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(200, 2))
    table = np.c_[x, x[:, 0] ** 2 + x[:, 1]]
    np.savetxt(root / "tiny.csv", table, delimiter=",", header="x0,x1,y", comments="")
    (root / "tiny.yaml").write_text(CONFIG)
    (root / "sweep.yaml").write_text(SPEC)
    return root / "sweep.yaml"


def _check_runs(batch: Path) -> None:
    with (batch / "manifest.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    for row in rows:
        run_dir = Path(row["run_dir"])
        info = json.loads((run_dir / "run.json").read_text())
        assert info["status"] == "completed", f"{run_dir}: {info}"
        assert (run_dir / "model.pt").stat().st_size > 0
        summary = json.loads((run_dir / "summary.json").read_text())
        assert math.isfinite(summary["test_r2"]["y"]), summary
        assert info.get("seed") in (None, int(row["seed"]))


@pytest.mark.slurm
def test_real_slurm_array_completes_four_fits(slurm_cluster, batch_root: Path) -> None:
    spec = _write_inputs(batch_root)
    batch = batch_root / "batch"
    plan = _kandisc("plan", str(spec), "--out", str(batch), cwd=batch_root)
    assert plan.returncode == 0, plan.stderr
    sub = _kandisc(
        *("slurm", str(batch), "--submit", "--chunk", "1", "--time-min", "5"),
        *("--cpus-per-task", "1", "--mem-gb", "1"),
        cwd=batch_root,
    )
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().splitlines()[-1]
    assert job_id.isdigit(), sub.stdout
    assert "#SBATCH --array=0-3" in (batch / "submit.sbatch").read_text()
    _wait(job_id)
    try:
        _check_runs(batch)
        status = _kandisc("status", str(batch), cwd=batch_root)
        assert status.returncode == 0, status.stdout + status.stderr
        with (batch / "summary.csv").open(newline="") as fh:
            table = list(csv.DictReader(fh))
        assert [r["status"] for r in table] == ["completed"] * 4
        assert all(math.isfinite(float(r["test_r2_y"])) for r in table)
    except (AssertionError, OSError, KeyError, ValueError) as exc:
        pytest.fail(f"{type(exc).__name__}: {exc}\n{_logs(batch, job_id)}", pytrace=False)
