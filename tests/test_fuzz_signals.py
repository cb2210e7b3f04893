"""Fuzz findings (issue 18), signals: every stop signal ends a fit or a batch like Ctrl-C.

The fuzzer saw fits and batches run on ("hang") after SIGINT, SIGHUP and SIGTERM, and a fit killed
by SIGTERM leave its run `running`. The fuzzer started kandisc the way scripts do, as a background
job (SIGINT ignored), which is how the SIGINT cases are started here. Each test runs the real CLI
in a subprocess on a fit that would take minutes, signals it once it trains, and checks the exit
code (128 + signal), the single stderr line, run.json `interrupted` and the kept model.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

LONG_FIT = """
model: {width: [2, 3, 1], grid: 3}
pipeline:
  - fit: {steps: 1000000, update_grid: false}
output: {figures: false}
"""
LONG_SYMBOLIC = """
model: {width: [2, 3, 1], grid: 3}
pipeline:
  - fit: {steps: 2}
  - symbolic: {retrain_steps: 1000000, rounds: 1}
output: {figures: false}
"""


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 100), rng.uniform(-1, 1, 100)
    path = tmp_path / "data.csv"
    pd.DataFrame({"x": x, "y": y, "f": x * y + np.sin(y)}).to_csv(path, index=False)
    return path


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a script's background job


def _kandisc(args: list[str], cwd: Path, ignore_sigint: bool) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kandisc", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if ignore_sigint else None,
    )


def _wait_until(condition, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"kandisc ended early (exit {proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the fit never reached the point to signal it")


def _end(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"still running {timeout} s after the signal (hang)")
    return proc.returncode, err


def _status(run: Path) -> str | None:
    try:
        return json.loads((run / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def _metrics_rows(run: Path, stage: str = "") -> int:
    try:
        return sum(1 for line in (run / "metrics.csv").read_text().splitlines()[1:] if stage in line)
    except OSError:
        return 0


def _fit(tmp_path: Path, data: Path, config: str, ignore_sigint: bool) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "c.yaml").write_text(config)
    proc = _kandisc(["fit", str(data), "-c", "c.yaml", "--out", "run", "-q"], tmp_path, ignore_sigint)
    return proc, tmp_path / "run"


def _assert_interrupted(rc: int, err: str, run: Path, signum: int) -> None:
    assert rc == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert _status(run) == "interrupted" and (run / "model.pt").is_file()


@pytest.mark.parametrize(
    ("signum", "ignore_sigint", "times"),
    [
        (signal.SIGINT, True, 1),  # signal.sigint_mid_fit
        (signal.SIGINT, True, 2),  # signal.sigint_twice
        (signal.SIGINT, True, 3),  # signal.sigint_thrice_fast
        (signal.SIGHUP, False, 1),  # signal.sighup_mid_fit
        (signal.SIGTERM, False, 1),  # signal.sigterm_mid_fit (Slurm's stop signal)
    ],
    ids=["sigint_mid_fit", "sigint_twice", "sigint_thrice_fast", "sighup_mid_fit", "sigterm_mid_fit"],
)
def test_stop_signal_mid_fit(tmp_path, data_csv, signum, ignore_sigint, times) -> None:
    proc, run = _fit(tmp_path, data_csv, LONG_FIT, ignore_sigint)
    _wait_until(lambda: _metrics_rows(run) >= 3, proc)
    for _ in range(times):
        proc.send_signal(signum)
        time.sleep(0.01)
    rc, err = _end(proc)
    _assert_interrupted(rc, err, run, signum)


def test_sigint_during_the_symbolic_stage(tmp_path, data_csv) -> None:
    proc, run = _fit(tmp_path, data_csv, LONG_SYMBOLIC, ignore_sigint=True)
    _wait_until(lambda: _metrics_rows(run, "symbolic") >= 2, proc)
    proc.send_signal(signal.SIGINT)
    rc, err = _end(proc)
    _assert_interrupted(rc, err, run, signal.SIGINT)


def test_sigint_at_startup_leaves_no_run(tmp_path, data_csv) -> None:
    proc, run = _fit(tmp_path, data_csv, LONG_FIT, ignore_sigint=True)
    time.sleep(0.5)  # importing the CLI and torch
    proc.send_signal(signal.SIGINT)
    rc, err = _end(proc)
    assert rc == 130 and err.strip() == "interrupted", err
    assert _status(run) in (None, "interrupted")  # nothing, or a run marked as such


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint_batch_run", "sigterm_batch_run"])
def test_stop_signal_to_batch_run_interrupts_workers_and_resumes(tmp_path, data_csv, signum) -> None:
    (tmp_path / "c.yaml").write_text(LONG_FIT)
    (tmp_path / "spec.yaml").write_text("config: c.yaml\ndata: data.csv\nseeds: [0, 1]\nout: b\n")
    plan = subprocess.run([sys.executable, "-m", "kandisc", "batch", "plan", "spec.yaml"], cwd=tmp_path)
    assert plan.returncode == 0
    runs = sorted((tmp_path / "b" / "runs").glob("*")) if (tmp_path / "b" / "runs").exists() else []
    proc = _kandisc(["batch", "run", "b", "-j", "2", "--oversubscribe"], tmp_path, ignore_sigint=True)

    def both_train() -> bool:
        nonlocal runs
        runs = sorted((tmp_path / "b" / "runs").glob("*"))
        return len(runs) == 2 and all(_metrics_rows(r) >= 2 for r in runs)

    _wait_until(both_train, proc)
    proc.send_signal(signum)
    rc, err = _end(proc)
    assert rc == 128 + signum, err
    assert err.strip().splitlines()[-1].startswith("interrupted"), err
    assert [_status(r) for r in runs] == ["interrupted", "interrupted"]
    # a rerun resumes: the interrupted rows are redone (and interrupted again here)
    again = _kandisc(["batch", "run", "b", "-j", "2", "--oversubscribe"], tmp_path, ignore_sigint=False)
    _wait_until(lambda: all(_status(r) == "running" for r in runs), again)
    again.send_signal(signal.SIGINT)
    rc, _ = _end(again)
    assert rc == 130 and [_status(r) for r in runs] == ["interrupted", "interrupted"]
