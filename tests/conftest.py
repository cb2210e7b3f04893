"""Shared fixtures: tiny synthetic datasets and one-thread torch so tests are fast and stable."""

import math

import pytest
import torch

torch.set_num_threads(1)


def make_dataset(fn, n_in, n=600, lo=-1.0, hi=1.0, seed=0):
    from kandisc.train import Dataset

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(2 * n, n_in, generator=g, dtype=torch.float64) * (hi - lo) + lo
    y = fn(x)
    return Dataset(x[:n], y[:n], x[n:], y[n:])


@pytest.fixture
def expsin_data():
    return make_dataset(lambda x: torch.exp(torch.sin(math.pi * x[:, [0]]) + x[:, [1]] ** 2), 2)


@pytest.fixture
def write_csv(tmp_path):
    """Write a CSV from a dict of columns and return its path."""
    import pandas as pd

    def _write(columns, name="data.csv"):
        path = tmp_path / name
        pd.DataFrame(columns).to_csv(path, index=False)
        return path

    return _write


@pytest.fixture(scope="session")
def example_run(tmp_path_factory):
    """``run(name)``: ``kandisc fit`` of the bundled example ``name`` (its full config, figures off),
    run once per session and shared by the tests that only read it; returns (run dir, summary, stdout)."""
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from kandisc.cli import app

    root = Path(__file__).resolve().parent.parent
    runs: dict[str, tuple] = {}

    def run(name: str):
        if name not in runs:
            out = tmp_path_factory.mktemp("examples") / name
            data, config = root / "sample_data" / f"{name}.csv", root / "configs" / f"{name}.yaml"
            args = ["fit", str(data), "--config", str(config), "--out", str(out), "--set", "output.figures=false"]
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, result.stderr
            runs[name] = (out, json.loads((out / "summary.json").read_text()), result.stdout)
        return runs[name]

    return run


def fit_with_config(data, config_text: str, out):
    """Run ``kandisc fit data`` with ``config_text`` (written next to ``out``); assert it succeeded."""
    from typer.testing import CliRunner

    from kandisc.cli import app

    config = out.parent / f"{out.name}.yaml"
    config.write_text(config_text)
    result = CliRunner().invoke(app, ["fit", str(data), "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    return out


def random_kan(width, seed=0, dtype=torch.float64, **spec):
    """A MultKAN with random spline coefficients, one removed edge per layer and node scales 1.5
    (not the identity a new network starts with), for comparing two ways of evaluating it."""
    from kandisc.model import ModelSpec, MultKAN

    model = MultKAN(ModelSpec.build(width, grid=5, seed=seed, **spec), dtype=dtype)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for kan in model.layers:
            kan.coef.copy_(torch.randn(kan.coef.shape, generator=g, dtype=torch.float64))
            kan.num_mask[0, 0] = 0.0  # a removed edge
        for scale in model.node_scale:
            scale.mul_(1.5)
    return model
