"""Every example in configs/ runs on its sample data (with a small step budget), so they never rot."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from kandisc.cli import app
from kandisc.io.config import config_to_yaml, load_config

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def shrink(config_path: Path, tmp_path: Path) -> Path:
    """The resolved config with at most 2 steps per stage and no figures."""
    resolved = yaml.safe_load(config_to_yaml(load_config(config_path)))
    for item in resolved["pipeline"]:
        (params,) = item.values()
        for key in ("steps", "retrain_steps"):
            if key in params:
                params[key] = min(params[key], 2)
        if "rounds" in params:
            params["rounds"] = 1
    resolved["output"]["figures"] = False
    small = tmp_path / config_path.name
    small.write_text(yaml.safe_dump(resolved, sort_keys=False))
    return small


def test_every_config_has_sample_data():
    assert CONFIGS, "configs/ is empty"
    for config in CONFIGS:
        assert (ROOT / "sample_data" / f"{config.stem}.csv").exists(), config.name


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_example_config_runs(config, tmp_path):
    out = tmp_path / "run"
    data = ROOT / "sample_data" / f"{config.stem}.csv"
    result = CliRunner().invoke(app, ["fit", str(data), "--config", str(shrink(config, tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("spec", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_example_sweep_plans(spec, tmp_path):
    result = CliRunner().invoke(app, ["batch", "plan", str(spec), "--out", str(tmp_path / "batch")])
    assert result.exit_code == 0, result.stderr
    rows = (tmp_path / "batch" / "manifest.csv").read_text().splitlines()
    assert len(rows) == 1 + 12
