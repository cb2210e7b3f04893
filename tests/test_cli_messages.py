"""Error lines name what the user typed (issue 19): the option, the section, the formula.

A dedicated flag (``--seed``, ``--device``, ``--jobs``) is reported as that flag, not as the
``--set`` it turns into; a misspelt section suggests the section; ``compile`` checks its formula
before its output path. All in-process through typer's runner, with refusals before any fitting.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from kandisc.cli import app

runner = CliRunner()


@pytest.fixture
def work(tmp_path, monkeypatch):
    (tmp_path / "data.csv").write_text("x,y,f\n" + "".join(f"{i / 10},{i % 3},{i}\n" for i in range(20)))
    (tmp_path / "c.yaml").write_text("pipeline:\n  - fit: {steps: 1}\noutput: {figures: false}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def one_error(*args: str) -> str:
    result = runner.invoke(app, list(args))
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "value", "shown"),
    [
        ("--device", "gpu", "--device gpu: device: invalid choice"),
        ("--seed", "-1", "--seed -1: seed: out of range"),
        ("--jobs", "0", "--jobs 0: search.jobs: out of range"),
        ("--time-budget", "-5", "--time-budget -5.0: search.time_budget"),
    ],
)
def test_a_flag_is_reported_as_the_flag(work, flag, value, shown):
    line = one_error("fit", "data.csv", "-c", "c.yaml", "--out", "r", "-q", flag, value)
    assert shown in line and "--set" not in line
    assert not (work / "r").exists()


def test_set_is_still_reported_as_set(work):
    assert "--set seed=-1: seed: out of range" in one_error("fit", "data.csv", "--out", "r", "--set", "seed=-1")


def test_misspelt_section_suggests_the_section(work):
    (work / "m.yaml").write_text("modle: {grid: 3}\n")
    assert "modle: unknown key (did you mean 'model'?)" in one_error("fit", "data.csv", "-c", "m.yaml", "-o", "r")
    (work / "m.yaml").write_text("auxilary: {z: x*y}\n")  # near no section: the nearest key
    assert "did you mean 'auxiliary'?" in one_error("fit", "data.csv", "-c", "m.yaml", "-o", "r")


def test_compile_reports_the_formula_before_the_existing_output(work):
    (work / "m.pt").write_bytes(b"keep me")
    line = one_error("compile", "x + ", "--out", "m.pt")
    assert "syntax error" in line and "exists" not in line
    assert "exists; pass --overwrite" in one_error("compile", "x + y", "--out", "m.pt")
    assert (work / "m.pt").read_bytes() == b"keep me"
