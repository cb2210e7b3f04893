"""`kandisc explain` and `kandisc predict` on a small trained run."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kandisc.cli import app
from tests.conftest import fit_with_config

runner = CliRunner()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (400, 4))
    frame = pd.DataFrame(x, columns=["x0", "x1", "x2", "x3"])
    frame["f"] = x[:, 0] ** 2 + 0.3 * x[:, 1] + 0.1 * x[:, 2] ** 3
    data = folder / "data.csv"
    frame.to_csv(data, index=False)
    out = fit_with_config(
        data,
        "model: {width: [4, 5, 1]}\npipeline:\n  - fit: {steps: 20, lamb: 0.001}\n"
        "  - prune: {}\n  - fit: {steps: 10}\noutput: {figures: false}\n",
        folder / "out",
    )
    return out, data, frame


def test_explain_prints_the_ranking_and_writes_json(trained_run, tmp_path):
    out, _, _ = trained_run
    result = runner.invoke(app, ["explain", str(out / "model.pt"), "--out", str(tmp_path / "ex")])
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [line.split()[2] for line in lines[:3]] == ["x0", "x1", "x2"]
    assert "x3" in result.stdout and "pruned" in result.stdout
    assert "[4, 5, 1] ->" in result.stdout
    report = json.loads((tmp_path / "ex" / "explain.json").read_text())
    assert [row["name"] for row in report["inputs"]] == ["x0", "x1", "x2"]
    assert report["pruned_inputs"] == ["x3"] and report["edges"]
    assert (tmp_path / "ex" / "network.png").read_bytes()[:4] == b"\x89PNG"


def test_explain_with_data_uses_that_csv(trained_run, tmp_path):
    out, data, _ = trained_run
    result = runner.invoke(
        app, ["explain", str(out / "model.pt"), "--data", str(data), "--out", str(tmp_path / "ex"), "--no-figures"]
    )
    assert result.exit_code == 0, result.stderr
    assert str(data) in result.stdout


def test_predict_round_trip_matches_the_run(trained_run, tmp_path):
    out, data, frame = trained_run
    shuffled = tmp_path / "shuffled.csv"
    frame[["f", "x3", "x2", "x0", "x1"]].to_csv(shuffled, index=False)  # order must not matter
    target = tmp_path / "pred.csv"
    result = runner.invoke(app, ["predict", str(out / "model.pt"), str(shuffled), "-o", str(target)])
    assert result.exit_code == 0, result.stderr
    pred = pd.read_csv(target)
    assert list(pred.columns) == ["f", "x3", "x2", "x0", "x1", "f_pred"]  # every column kept, in order
    summary = json.loads((out / "summary.json").read_text())
    r2 = 1 - np.sum((pred["f_pred"] - frame["f"]) ** 2) / np.sum((frame["f"] - frame["f"].mean()) ** 2)
    assert abs(r2 - summary["test_r2"]["f"]) < 0.01
    assert "R²" in result.stdout


def test_predict_refuses_bad_columns(trained_run, tmp_path):
    out, _, frame = trained_run
    missing = tmp_path / "missing.csv"
    frame[["x0", "x2"]].to_csv(missing, index=False)
    result = runner.invoke(app, ["predict", str(out / "model.pt"), str(missing), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "'x1'" in result.stderr and result.stderr.count("\n") == 1
    text = tmp_path / "text.csv"
    frame[["x0", "x1", "x2"]].astype(str).replace({frame["x1"].astype(str).iloc[3]: "n/a?"}).to_csv(text, index=False)
    result = runner.invoke(app, ["predict", str(out / "model.pt"), str(text), "-o", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "'x1'" in result.stderr
    assert not (tmp_path / "p.csv").exists()


def test_corrupt_model_file_exits_2(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    result = runner.invoke(app, ["explain", str(bad)])
    assert result.exit_code == 2 and "not a kandisc model file (not a torch archive" in result.stderr


def test_attribution_json_lists_pruned_inputs_with_their_score(trained_run):
    out, _, _ = trained_run
    inputs = json.loads((out / "attribution.json").read_text())["inputs"]
    assert [row["name"] for row in inputs if not row["pruned"]] == ["x0", "x1", "x2"]
    (x3,) = [row for row in inputs if row["pruned"]]
    assert x3["name"] == "x3" and 0 <= x3["score"] <= 0.01 and x3["rank"] == 4  # below input_threshold
