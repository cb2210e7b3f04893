"""Faults survived (issue 19): --overwrite never costs the previous run, ``fit --resume`` continues an
interrupted run to the uninterrupted run's result, and ``batch run-one`` resumes a row after SIGTERM.

Interrupts are real: a stage that raises KeyboardInterrupt (Ctrl-C) or sends this process SIGTERM,
which kandisc's own handler turns into the interrupt, all in-process through typer's runner.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kandisc.api import fit_run
from kandisc.cli import app
from kandisc.errors import RunDirError
from kandisc.pipeline import stages

runner = CliRunner()
# Minibatches in the stages before and after the interruption: a resumed run that did not restore
# the generator would draw other rows and end elsewhere. A [2, 1] network keeps the symbolic stage short.
CONFIG = """model: {width: [2, 1], grid: 4}
pipeline:
  - fit: {steps: 4, batch: 30, lamb: 0.01}
  - prune: {}
  - fit: {steps: 3}
  - refine: {grid: 6}
  - fit: {steps: 4, batch: 30}
  - symbolic: {library: [x, sin], retrain_steps: 2}
output: {figures: false, checkpoints: true}
"""
QUICK = "model: {width: [2, 1], grid: 3}\npipeline: [{fit: {steps: 2}}, refine: {grid: 4}, {fit: {steps: 2}}]\n"


def write_data(folder: Path) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, 60), rng.uniform(-1, 1, 60)
    pd.DataFrame({"x": x, "y": y, "f": 2 * x + np.sin(np.pi * y)}).to_csv(folder / "data.csv", index=False)
    (folder / "c.yaml").write_text(CONFIG)
    (folder / "quick.yaml").write_text(QUICK + "output: {figures: false}\n")


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> tuple:
    """The uninterrupted run of CONFIG: what every resumed run must reproduce."""
    folder = tmp_path_factory.mktemp("whole")
    write_data(folder)
    fit_run(folder / "data.csv", folder / "c.yaml", out=folder / "run")
    return result_of(folder / "run")


@pytest.fixture
def work(tmp_path, monkeypatch):
    write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def interrupt_stage(monkeypatch, name: str, how) -> None:
    """Stage ``name`` interrupts the run (``how()`` raises or signals) the first time it starts."""
    real = stages.STAGES[name]

    def stage(state, params):
        monkeypatch.setitem(stages.STAGES, name, real)
        how()
        return real(state, params)

    monkeypatch.setitem(stages.STAGES, name, stage)


def ctrl_c():
    raise KeyboardInterrupt


def sigterm():
    os.kill(os.getpid(), signal.SIGTERM)  # kandisc's handler raises the interrupt at once


def result_of(run: Path) -> tuple:
    summary = json.loads((run / "summary.json").read_text())
    keys = ("formulas", "train_rmse", "test_rmse", "test_r2", "shape_final", "pruned_inputs")
    return {k: summary[k] for k in keys}, (run / "metrics.csv").read_text()


# ------------------------------------------------------------------ --overwrite


@pytest.mark.parametrize("how", [ctrl_c, lambda: (_ for _ in ()).throw(RunDirError("disk full"))])
def test_a_failed_overwrite_leaves_the_previous_run_intact(work, monkeypatch, how):
    assert runner.invoke(app, ["fit", "data.csv", "-c", "quick.yaml", "-o", "run", "-q"]).exit_code == 0
    before = {p: p.read_bytes() for p in sorted((work / "run").rglob("*")) if p.is_file()}
    interrupt_stage(monkeypatch, "refine", how)
    result = runner.invoke(
        app, ["fit", "data.csv", "-c", "quick.yaml", "-o", "run", "-q", "--overwrite", "--seed", "3"]
    )
    assert result.exit_code in (2, 130), result.output
    after = {p: p.read_bytes() for p in sorted((work / "run").rglob("*")) if p.is_file()}
    assert after == before
    assert sorted(p.name for p in work.iterdir()) == [
        "c.yaml",
        "data.csv",
        "quick.yaml",
        "run",
    ]  # no staging left behind


# ------------------------------------------------------------------ fit --resume


def test_resume_after_ctrl_c_gives_the_uninterrupted_result(work, monkeypatch, whole):
    interrupt_stage(monkeypatch, "refine", ctrl_c)  # stage 4: checkpoints 01..03 exist
    assert runner.invoke(app, ["fit", "data.csv", "-c", "c.yaml", "-o", "cut", "-q"]).exit_code == 130
    info = json.loads((work / "cut" / "run.json").read_text())
    assert info["status"] == "interrupted" and not (work / "cut" / "summary.json").exists()
    assert sorted(p.name for p in (work / "cut" / "checkpoints").iterdir()) == ["01_fit.pt", "02_prune.pt", "03_fit.pt"]

    result = runner.invoke(app, ["fit", "--resume", "cut", "-q"])
    assert result.exit_code == 0, result.output
    info = json.loads((work / "cut" / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed_after_stage"] == 3 and info["resumes"] == 1
    assert result_of(work / "cut") == whole


def test_resume_refuses_what_it_cannot_continue(work):
    fit_run("data.csv", "quick.yaml", out=work / "done")
    cases = {
        ("fit", "--resume", "done"): "already completed",
        ("fit", "--resume", "nowhere"): "not a kandisc run directory",
        ("fit", "--resume", "done", "--seed", "2"): "drop --seed",
        ("fit",): "Missing argument 'data' (DATA.csv, or --resume RUN_DIR)",
    }
    for args, needle in cases.items():
        result = runner.invoke(app, list(args))
        assert result.exit_code == 2 and needle in result.stderr and len(result.stderr.splitlines()) == 1, args
    info = json.loads((work / "done" / "run.json").read_text())
    info["status"] = "interrupted"
    (work / "done" / "run.json").write_text(json.dumps(info))
    (work / "data.csv").write_text((work / "data.csv").read_text() + "0,0,0\n")
    result = runner.invoke(app, ["fit", "--resume", "done"])
    assert result.exit_code == 2 and "changed since run done started" in result.stderr


# ------------------------------------------------------------------ batch: a row preempted by SIGTERM


def test_batch_row_resumes_after_sigterm(work, monkeypatch, whole):
    spec = work / "sweep.yaml"
    spec.write_text("config: c.yaml\ndata: [data.csv]\nseeds: [0]\nout: b\n")
    assert runner.invoke(app, ["batch", "plan", str(spec)]).exit_code == 0
    interrupt_stage(monkeypatch, "refine", sigterm)  # Slurm's preemption, in stage 4
    result = runner.invoke(app, ["batch", "run-one", "b", "--index", "0"])
    assert result.exit_code == 143, result.output
    row_dir = next(p.parent for p in (work / "b").rglob("run.json"))
    assert json.loads((row_dir / "run.json").read_text())["status"] == "interrupted"

    result = runner.invoke(app, ["batch", "run-one", "b", "--index", "0"])
    assert result.exit_code == 0, result.output
    info = json.loads((row_dir / "run.json").read_text())
    assert info["status"] == "completed" and info["resumed_after_stage"] == 3
    assert result_of(row_dir) == whole  # the row's resolved config is c.yaml with seed 0
