"""Sweep specs, plan expansion and manifest files (kandisc.batch.manifest, `kandisc batch plan`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kandisc.batch.cli import batch_app
from kandisc.batch.manifest import (
    Row,
    format_override,
    plan_batch,
    read_manifest,
    run_label,
    write_manifest,
    write_plan,
)
from kandisc.errors import ConfigError, RunDirError

pytest.importorskip("kandisc.io.config")


def _csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x0,x1,y\n0.1,0.2,0.3\n0.4,0.5,0.6\n")
    return path


def _spec(tmp_path: Path, text: str) -> Path:
    spec = tmp_path / "sweep.yaml"
    spec.write_text(text)
    return spec


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    _csv(tmp_path / "data" / "a.csv")
    _csv(tmp_path / "data" / "b.csv")
    (tmp_path / "base.yaml").write_text("pipeline:\n  - fit: {steps: 3}\noutput: {figures: false}\n")
    return tmp_path


SPEC = """
config: base.yaml
set: ["model.k=2"]
data: ["data/*.csv"]
sweep:
  model.grid: [3, 5, 7]
  model.width: [[2, 5, 1], [2, [3, 2], 1]]
seeds: [0, 1]
out: out/batch
"""


def test_plan_expands_data_times_sweep_product_times_seeds(sweep_dir: Path) -> None:
    plan = plan_batch(_spec(sweep_dir, SPEC))
    assert len(plan.rows) == 2 * 3 * 2 * 2
    assert [r.index for r in plan.rows] == list(range(24))
    assert plan.batch_dir == (sweep_dir / "out" / "batch").resolve()
    first, last = plan.rows[0], plan.rows[-1]
    assert first.data == (sweep_dir / "data" / "a.csv").resolve()
    assert last.data == (sweep_dir / "data" / "b.csv").resolve()
    assert first.overrides == ("model.k=2", "model.grid=3", "model.width=[2, 5, 1]")
    assert (first.seed, plan.rows[1].seed) == (0, 1)
    assert first.run_dir == plan.batch_dir / "runs" / "0000_a_grid3_width2-5-1_s0"
    assert len({r.run_dir for r in plan.rows}) == 24


def test_write_plan_writes_resolved_configs_that_reload(sweep_dir: Path) -> None:
    from kandisc.io.config import load_config

    plan = plan_batch(_spec(sweep_dir, SPEC))
    manifest = write_plan(plan)
    rows = read_manifest(manifest)
    assert rows == plan.rows
    row = rows[3]  # grid 3, width [2, [3, 2], 1], seed 1
    cfg = load_config(row.config)
    assert (cfg.model.grid, cfg.model.width, cfg.model.k, cfg.seed) == (3, [2, [3, 2], 1], 2, 1)
    assert cfg.output.figures is False and cfg.pipeline[0].steps == 3
    assert (plan.batch_dir / "spec.yaml").read_text() == SPEC
    # re-planning the same spec is a no-op; a different plan needs --overwrite
    write_plan(plan_batch(_spec(sweep_dir, SPEC)))
    changed = plan_batch(_spec(sweep_dir, SPEC.replace("[0, 1]", "[0]")))
    with pytest.raises(RunDirError, match="different plan"):
        write_plan(changed)
    write_plan(changed, overwrite=True)
    assert len(read_manifest(manifest)) == 12


def test_spec_defaults_single_data_file_and_batch_dir(sweep_dir: Path, monkeypatch) -> None:
    monkeypatch.chdir(sweep_dir)
    plan = plan_batch(_spec(sweep_dir, "data: data/a.csv\n"))
    assert len(plan.rows) == 1 and plan.rows[0].seed == 0
    assert plan.batch_dir == (sweep_dir / "batches" / "sweep").resolve()
    assert plan.rows[0].run_dir.name == "0000_a_s0"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: [data/a.csv]\nseedz: [1]\n", "seedz: unknown key (did you mean 'seeds'?)"),
        ("data: [data/a.csv]\nsweep: {model.grid: []}\n", "sweep.model.grid: empty list"),
        ("data: [data/a.csv]\nsweep: {model.grid: 3}\n", "sweep.model.grid: expected a list"),
        ("data: [data/a.csv]\nseeds: [1, 1]\n", "duplicate seed"),
        ("data: [data/a.csv, data/nope.csv]\n", "data[1]: file not found: "),
        ("data: ['other/*.csv']\n", "data[0]: 'other/*.csv' matches no file"),
        ("sweep: {model.grid: [3]}\n", "data: required key missing"),
        ("data: [data/a.csv]\nconfig: missing.yaml\n", "config: file not found"),
        ("data: [data/a.csv]\nsweep: {model.gird: [3]}\n", "model.gird: unknown key (did you mean 'grid'?)"),
        ("data: [data/a.csv]\nsweep: {model.grid: [3, 0]}\n", 'sweep point {"model.grid": 0}'),
        ("- just a list\n", "must be a mapping"),
        ("data: [unclosed\n", "not valid YAML"),
    ],
)
def test_spec_errors_are_one_config_error_line(sweep_dir: Path, text: str, message: str) -> None:
    spec = _spec(sweep_dir, text)
    with pytest.raises(ConfigError) as info:
        plan_batch(spec)
    assert message in str(info.value)
    assert str(info.value).startswith(str(spec)) and "\n" not in str(info.value)


def test_plan_cli_exit_codes(sweep_dir: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(batch_app, ["plan", str(_spec(sweep_dir, SPEC)), "--out", str(sweep_dir / "b")])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == str((sweep_dir / "b" / "manifest.csv").resolve())
    bad = runner.invoke(batch_app, ["plan", str(_spec(sweep_dir, "data: [nope.csv]\n"))])
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: ") and "nope.csv" in bad.stderr
    assert not (sweep_dir / "batches").exists()


def test_manifest_round_trip(tmp_path: Path) -> None:
    rows = [
        Row(0, tmp_path / "a.csv", tmp_path / "c.yaml", ("model.grid=3", "x.y=a,b"), 4, tmp_path / "r0"),
        Row(1, tmp_path / "b c.csv", None, (), None, tmp_path / "r1"),
    ]
    write_manifest(tmp_path / "manifest.csv", rows)
    assert read_manifest(tmp_path / "manifest.csv") == rows
    assert read_manifest(tmp_path) == rows  # the batch folder works too


def test_hand_written_manifest_minimal_columns(tmp_path: Path) -> None:
    (tmp_path / "manifest.csv").write_text(
        'index,data,seed,overrides\n0,d/a.csv,,\n1,/abs/b.csv,3,"[""model.grid=4""]"\n'
    )
    rows = read_manifest(tmp_path / "manifest.csv")
    assert rows[0].data == (tmp_path / "d" / "a.csv").resolve()
    assert rows[0].config is None and rows[0].seed is None and rows[0].overrides == ()
    assert rows[0].run_dir == tmp_path.resolve() / "runs" / "0000_a"
    assert rows[1].run_dir == tmp_path.resolve() / "runs" / "0001_b_s3"
    assert rows[1].overrides == ("model.grid=4",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data\na.csv\n", "missing column(s) index"),
        ("index,data,seeds\n0,a.csv,1\n", "unknown column 'seeds'; did you mean 'seed'?"),
        ("index,data\n1,a.csv\n", "row 1: index 1, expected 0"),
        ("index,data\nx,a.csv\n", "must be integers"),
        ("index,data,overrides\n0,a.csv,model.grid=3\n", "JSON list of strings"),
        ("index,data\n", "no rows"),
    ],
)
def test_bad_manifests(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "manifest.csv").write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        read_manifest(tmp_path / "manifest.csv")
    assert message in str(info.value)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="manifest not found"):
        read_manifest(tmp_path)


def test_override_formatting_reads_back_as_the_value() -> None:
    for value in [3, 0.5, True, None, "silu", "a=b", "1e-3", "yes", [2, [3, 2], 1], {"a": 1}]:
        text = format_override("k", value)
        assert yaml.safe_load(text.partition("=")[2]) == value, text
    assert format_override("model.base_fun", "silu") == "model.base_fun=silu"
    assert run_label([("model.width", [2, [3, 2], 1]), ("fit.opt", "adam")], 7) == "width2-3-2-1_optadam_s7"
    assert json.loads(json.dumps(run_label([], None))) == ""
