"""Fuzz findings (issue 18): a full or read-only disk is a user error, not a traceback.

The real cases mount a small tmpfs (root can; elsewhere they are skipped), fill it to leave 0, 4096
or 12288 bytes, or mount it read-only, and run the fuzzer's commands against it: exit 2 and one
stderr line saying which file could not be written and why. One simulated case (fsync failing
with ENOSPC) runs everywhere.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kandisc.cli import app

runner = CliRunner()
TINY = "model: {width: [2, 2, 1], grid: 3}\npipeline:\n  - fit: {steps: 2}\noutput: {figures: false}\n"


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip() or 'not root'})")


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until ``leave`` bytes are free."""
    filler = folder / ".filler"
    chunk = b"\0" * 4096
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    size = filler.stat().st_size
    with open(filler, "rb+") as fh:
        fh.truncate(max(0, size - leave))
    assert abs(shutil.disk_usage(folder).free - leave) <= 4096


@pytest.fixture
def work(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 40), rng.uniform(-1, 1, 40)
    pd.DataFrame({"x": x, "y": y, "f": x * y}).to_csv(tmp_path / "data.csv", index=False)
    (tmp_path / "c.yaml").write_text(TINY)
    assert runner.invoke(app, ["compile", "x*y", "--out", str(tmp_path / "m.pt")]).exit_code == 0
    monkeypatch.chdir(tmp_path)
    mounts: list[Path] = []
    yield tmp_path, mounts
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _assert_write_refused(res, *needles: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in lines[0], lines[0]


FULL_CASES = {
    "fs.full_fit_0": (0, ["fit", "data.csv", "-c", "c.yaml", "--out", "full/run", "-q"]),
    "fs.full_fit_4096": (4096, ["fit", "data.csv", "-c", "c.yaml", "--out", "full/run", "-q"]),
    "fs.full_fit_12288": (12288, ["fit", "data.csv", "-c", "c.yaml", "--out", "full/run", "-q"]),
    "fs.full_fit_overwrite": (0, ["fit", "data.csv", "-c", "c.yaml", "--out", "full/guard", "--overwrite", "-q"]),
    "fs.full_predict": (0, ["predict", "m.pt", "data.csv", "-o", "full/p.csv"]),
    "fs.full_explain": (0, ["explain", "m.pt", "--data", "data.csv", "--out", "full/exp", "--no-figures"]),
    "fs.full_compile": (0, ["compile", "x*y", "--out", "full/m.pt"]),
}


@pytest.mark.parametrize("case", list(FULL_CASES))
def test_full_disk(work, case) -> None:
    folder, mounts = work
    leave, args = FULL_CASES[case]
    _mount(folder / "full", "size=256k")
    mounts.append(folder / "full")
    if case == "fs.full_fit_overwrite":
        assert runner.invoke(app, ["fit", "data.csv", "-c", "c.yaml", "--out", "full/guard", "-q"]).exit_code == 0
    _fill(folder / "full", leave)
    _assert_write_refused(runner.invoke(app, args), "full/", "No space left on device")


RO_CASES = {
    "fs.ro_predict": ["predict", "m.pt", "data.csv", "-o", "ro/p.csv"],
    "fs.ro_compile": ["compile", "x*y", "--out", "ro/m.pt"],
    "fs.ro_explain": ["explain", "m.pt", "--data", "data.csv", "--out", "ro/exp", "--no-figures"],
    "fs.ro_explain_default": ["explain", "ro/model.pt", "--data", "data.csv", "--no-figures"],
    "fs.ro_batch_plan": ["batch", "plan", "spec.yaml", "--out", "ro/b"],
}


@pytest.mark.parametrize("case", list(RO_CASES))
def test_read_only_file_system(work, case) -> None:
    folder, mounts = work
    _mount(folder / "ro", "size=1m")
    mounts.append(folder / "ro")
    shutil.copy(folder / "m.pt", folder / "ro" / "model.pt")  # the model of fs.ro_explain_default
    (folder / "spec.yaml").write_text("data: data.csv\nconfig: c.yaml\n")
    remount = subprocess.run(["mount", "-o", "remount,ro", str(folder / "ro")], capture_output=True)
    assert remount.returncode == 0, remount.stderr
    _assert_write_refused(runner.invoke(app, RO_CASES[case]), "ro/", "Read-only file system")


def test_full_disk_simulated(work, monkeypatch) -> None:
    """Where no tmpfs can be mounted: fsync reporting ENOSPC takes the same path."""
    import kandisc.io.atomic as atomic

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    res = runner.invoke(app, ["compile", "x*y", "--out", "new.pt"])
    _assert_write_refused(res, "new.pt", "the disk is full")
    assert not Path("new.pt").exists() and not list(Path().glob(".new.pt.*"))
