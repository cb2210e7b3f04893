"""Fuzz findings (issue 18), signals: every stop signal ends a fit or a batch like Ctrl-C.

The fuzzer saw fits and batches run on ("hang") after SIGINT, SIGHUP and SIGTERM, and a fit killed
by SIGTERM leave its run `running`. The fuzzer started kandisc the way scripts do, as a background
job (SIGINT ignored), which is how the SIGINT cases are started here. Each test runs the real CLI
in a subprocess on a fit that would take minutes, signals it once it trains, and checks the exit
code (128 + signal), the single stderr line, run.json `interrupted` and the kept model.
"""

from __future__ import annotations

import contextlib
import json
import os
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
  - fit: {steps: 1000000, update_grid: false, plateau_rtol: 0}  # no plateau stop: it runs until signalled
output: {figures: false}
"""
LONG_SYMBOLIC = """
model: {width: [2, 3, 1], grid: 3}
pipeline:
  - fit: {steps: 2}
  - symbolic: {retrain_steps: 1000000, rounds: 1}
output: {figures: false}
"""


def _ignore_sigint() -> None:
    _hangup_as_in_a_terminal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a script's background job


def _hangup_as_in_a_terminal() -> None:
    # Under nohup the suite inherits SIGHUP ignored, and kandisc rightly keeps it so: reset it.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


_STARTED: list[subprocess.Popen] = []


def _kandisc(args: list[str], cwd: Path, ignore_sigint: bool) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kandisc", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if ignore_sigint else _hangup_as_in_a_terminal,
        start_new_session=True,  # its own process group: the clean-up below reaches batch workers too
    )
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True, scope="module")
def _no_leftovers():
    """Whatever a failing test left running (a hung fit, orphaned batch workers) is killed."""
    yield
    for proc in _STARTED:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=10)


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


def _assert_interrupted(rc: int, err: str, run: Path, signum: int) -> None:
    assert rc == 128 + signum, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err
    assert _status(run) == "interrupted" and (run / "model.pt").is_file()


# name: (config, signal, SIGINT ignored by the parent, how many signals, metrics rows to wait for)
SCENARIOS = {
    "sigint_mid_fit": (LONG_FIT, signal.SIGINT, True, 1, ("", 3)),
    "sigint_twice": (LONG_FIT, signal.SIGINT, True, 2, ("", 3)),
    "sigint_thrice_fast": (LONG_FIT, signal.SIGINT, True, 3, ("", 3)),
    "sighup_mid_fit": (LONG_FIT, signal.SIGHUP, False, 1, ("", 3)),
    "sigterm_mid_fit": (LONG_FIT, signal.SIGTERM, False, 1, ("", 3)),  # Slurm's stop signal
    "sigint_symbolic": (LONG_SYMBOLIC, signal.SIGINT, True, 1, ("symbolic", 2)),
}


@pytest.fixture(scope="module")
def signalled(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    """Every scenario in its own process, all at once (each needs seconds to import and start)."""
    procs = {}
    for name, (config, _, ignore, _, _) in SCENARIOS.items():
        folder = tmp_path_factory.mktemp(name)
        data = _write_data(folder)
        (folder / "c.yaml").write_text(config)
        args = ["fit", str(data), "-c", "c.yaml", "--out", "run", "-q"]
        procs[name] = (_kandisc(args, folder, ignore), folder / "run")
    pending = dict(procs)
    deadline = time.monotonic() + 180
    while pending and time.monotonic() < deadline:
        for name, (proc, run) in list(pending.items()):
            _, signum, _, times, (stage, rows) = SCENARIOS[name]
            if proc.poll() is None and _metrics_rows(run, stage) < rows:
                continue
            for _ in range(times):
                proc.send_signal(signum)
                time.sleep(0.01)
            del pending[name]
        time.sleep(0.05)
    results = {}
    deadline = time.monotonic() + 60  # for all of them together
    for name, (proc, run) in procs.items():
        try:
            _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results[name] = (proc.returncode, err, run)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            results[name] = (None, "still running 60 s after the signal (hang)", run)
    return results


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_stop_signal_interrupts_the_fit(signalled, name) -> None:
    rc, err, run = signalled[name]
    _assert_interrupted(rc, err, run, SCENARIOS[name][1])


def _catches_sigint(pid: int) -> bool:
    """Whether the process has a SIGINT handler installed (Linux: SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True  # not Linux (or gone): fall back to signalling now
    caught = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(caught >> (signal.SIGINT - 1) & 1)


def _write_data(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 100), rng.uniform(-1, 1, 100)
    path = folder / "data.csv"
    pd.DataFrame({"x": x, "y": y, "f": x * y + np.sin(y)}).to_csv(path, index=False)
    return path


def test_sigint_at_startup_leaves_no_run(tmp_path) -> None:
    data = _write_data(tmp_path)
    (tmp_path / "c.yaml").write_text(LONG_FIT)
    proc = _kandisc(["fit", str(data), "-c", "c.yaml", "--out", "run", "-q"], tmp_path, ignore_sigint=True)
    _wait_until(lambda: _catches_sigint(proc.pid), proc, timeout=30)  # the first thing kandisc does
    proc.send_signal(signal.SIGINT)  # while it imports the CLI, torch and the rest
    rc, err = _end(proc)
    assert rc == 130 and err.strip() == "interrupted", err
    assert _status(tmp_path / "run") in (None, "interrupted")  # nothing, or a run marked as such


def test_sigterm_then_sigint_to_batch_run_interrupt_workers_and_a_rerun_resumes(tmp_path) -> None:
    """signal.sigterm_batch_run and signal.sigint_batch_run: the second run is the resumed first."""
    _write_data(tmp_path)
    (tmp_path / "c.yaml").write_text(LONG_FIT)
    (tmp_path / "spec.yaml").write_text("config: c.yaml\ndata: data.csv\nseeds: [0, 1]\nout: b\n")
    plan = subprocess.run([sys.executable, "-m", "kandisc", "batch", "plan", "spec.yaml"], cwd=tmp_path)
    assert plan.returncode == 0
    runs: list[Path] = []

    def both_train() -> bool:
        runs[:] = sorted((tmp_path / "b" / "runs").glob("*"))
        return len(runs) == 2 and all(_metrics_rows(r) >= 2 for r in runs)

    for signum, ignore in ((signal.SIGTERM, False), (signal.SIGINT, True)):
        proc = _kandisc(["batch", "run", "b", "-j", "2", "--oversubscribe"], tmp_path, ignore_sigint=ignore)
        _wait_until(both_train, proc)
        proc.send_signal(signum)
        rc, err = _end(proc)
        assert rc == 128 + signum, err
        assert err.strip().splitlines()[-1].startswith("interrupted"), err
        assert [_status(r) for r in runs] == ["interrupted", "interrupted"]
        for r in runs:  # the rerun must start these rows afresh
            (r / "metrics.csv").unlink()
