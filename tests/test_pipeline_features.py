"""Pipeline features end to end: modular structure masks, standardised data, auxiliary features."""

import json

import numpy as np
import torch
from typer.testing import CliRunner

from kandisc.cli import app
from kandisc.io.model_file import load_model
from tests.conftest import fit_with_config

runner = CliRunner()


def test_module_string_gives_a_block_diagonal_first_layer_that_survives(write_csv, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (400, 4))
    path = write_csv(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "d": x[:, 3], "f": np.sin(x[:, 0] + x[:, 1]) + (x[:, 2] * x[:, 3])}
    )
    out = fit_with_config(
        path,
        "model: {width: [4, 4, 1]}\nmodules: ['0: [0,1]->[0,1]']\npipeline:\n"
        "  - fit: {steps: 5}\n  - prune: {edge_threshold: 0.0, node_threshold: 0.0, input_threshold: 0.0}\n"
        "  - refine: {grid: 7}\n  - fit: {steps: 2}\noutput: {figures: false}\n",
        tmp_path / "run",
    )
    active = load_model(out / "model.pt").model.layers[0].active()
    assert active.shape == (4, 4)
    assert not active[:2, 2:].any() and not active[2:, :2].any()  # no edge crosses the blocks
    assert active[:2, :2].all() and active[2:, 2:].all()


def test_overlapping_modules_are_a_config_error(write_csv, tmp_path):
    path = write_csv({"a": np.arange(20.0), "b": np.arange(20.0) ** 2, "f": np.arange(20.0) ** 3})
    result = runner.invoke(
        app, ["fit", str(path), "--set", "modules=['0: [0]->[0]', '0: [0,1]->[1]']", "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2 and "both contain node 0" in result.stderr
    assert not (tmp_path / "run").exists()


def test_standardised_data_gives_formulas_in_raw_units(write_csv, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.uniform(10, 20, 300)
    y = rng.uniform(-5, 5, 300)
    path = write_csv({"x": x, "y": y, "f": 3 * x + 100 + y**2})
    out = fit_with_config(
        path,
        "data: {standardize: true}\nmodel: {width: [2, 1, 1]}\npipeline:\n  - fit: {steps: 30}\n"
        "  - symbolic: {}\noutput: {figures: false}\n",
        tmp_path / "run",
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["formula_checks"]["f"]["status"] == "ok"
    assert summary["formulas"]["f"].replace(" ", "") in ("3*x+y**2+100", "3*x+y**2+100.0")
    bundle = load_model(out / "model.pt")
    pred = bundle.predict(torch.tensor([[15.0, 2.0]], dtype=torch.float64))
    assert abs(float(pred) - 149.0) < 1e-3
