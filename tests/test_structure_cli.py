"""`kandisc explain` (its structure part and tree figure) and `kandisc test` through the CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from kandisc.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def product_model(tmp_path_factory):
    """x·y + z compiled to a model file, and a CSV of 400 rows of its inputs."""
    folder = tmp_path_factory.mktemp("structure")
    model = folder / "model.pt"
    assert runner.invoke(app, ["compile", "x*y + z", "-o", str(model)]).exit_code == 0
    rng = np.random.default_rng(0)
    x, y, z = rng.uniform(-2, 2, (3, 400))
    data = folder / "data.csv"
    data.write_text("x,y,z,f\n" + "\n".join(f"{a},{b},{c},{a * b + c}" for a, b, c in zip(x, y, z, strict=True)))
    return model, data


def test_explain_reports_the_structure_and_draws_the_tree(product_model, tmp_path):
    model, data = product_model
    result = runner.invoke(app, ["explain", str(model), "--data", str(data), "--out", str(tmp_path / "ex")])
    assert result.exit_code == 0, result.stderr
    report = json.loads((tmp_path / "ex" / "explain.json").read_text())
    structure = report["structure"]
    assert structure["target"] == "f"
    assert structure["additive"] == [["x", "y"], ["z"]] and structure["multiplicative"] == [["x", "y", "z"]]
    assert [s["group"] for s in structure["symmetries"]] == [["x", "y"]] and structure["symmetries"][0]["score"] < 1e-6
    assert structure["tree"] == [["x", "y"], "z"]
    assert structure["scores"]["multiplicative"] >= structure["threshold"] > structure["scores"]["additive"]
    assert "additive:       {x, y} | {z}" in result.stdout and "tree:           [[x, y], z]" in result.stdout
    assert "multiplicative: none" in result.stdout and "symmetric:      {x, y}" in result.stdout
    assert (tmp_path / "ex" / "figures" / "tree.png").read_bytes()[:4] == b"\x89PNG"


def test_explain_without_figures_still_reports_the_structure(product_model, tmp_path):
    model, data = product_model
    args = ["explain", str(model), "--data", str(data), "--out", str(tmp_path / "ex"), "--no-figures"]
    assert runner.invoke(app, args).exit_code == 0
    assert json.loads((tmp_path / "ex" / "explain.json").read_text())["structure"]["tree"] == [["x", "y"], "z"]
    assert not (tmp_path / "ex" / "figures").exists()


@pytest.mark.parametrize(
    "flags,statement,answer",
    [
        (["--separable", "x,y|z"], "f = g1(x, y) + g2(z)", "yes"),
        (["--separable", "x|y,z"], "f = g1(x) + g2(y, z)", "no"),
        (["--separable", "x, y", "--multiplicative"], "f = g1(x, y) · g2(z)", "no"),
        (["--separable", "x,y|z", "--general"], "f = h(p1(x, y) + p2(z))", "yes"),
        (["--symmetric", "x,y"], "f = g(h(x, y), ...)", "yes"),
        (["--symmetric", "y,z"], "f = g(h(y, z), ...)", "no"),
    ],
)
def test_one_hypothesis_answers_yes_or_no_and_exits_0(product_model, flags, statement, answer):
    model, data = product_model
    result = runner.invoke(app, ["test", str(model), "--data", str(data), *flags])
    assert result.exit_code == 0, result.stderr
    first, second, third = result.stdout.splitlines()
    assert first == f"{statement}: {answer}"
    score, threshold = float(second.split()[2]), float(second.split()[-1])
    assert (score < threshold) == (answer == "yes")
    assert third == f"rows: {data}"


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--separable", "x,q|z"], "unknown input(s) 'q'; the model's inputs are x, y, z"),
        (["--symmetric", "xx,y"], "'xx' (did you mean 'x'?)"),
        (["--separable", "x,y|x"], "'x' named more than once"),
        (["--separable", "x||z"], "empty group"),
        (["--separable", "x|y", "--symmetric", "x,y"], "state one hypothesis"),
        ([], "state one hypothesis"),
        (["--multiplicative"], "qualify --separable"),
        (["--separable", "x|y", "--multiplicative", "--general"], "choose one of"),
        (["--symmetric", "x|y"], "one group"),
        (["--separable", "x|y", "--target", "g"], "unknown target 'g'"),
    ],
)
def test_a_bad_hypothesis_is_one_line_and_exit_2(product_model, flags, message):
    model, data = product_model
    result = runner.invoke(app, ["test", str(model), "--data", str(data), *flags])
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_explain_skips_the_structure_of_a_wide_model(product_model, tmp_path, monkeypatch):
    import kandisc.pipeline.structure_summary

    monkeypatch.setattr(kandisc.pipeline.structure_summary, "MAX_INPUTS", 2)
    model, data = product_model
    result = runner.invoke(app, ["explain", str(model), "--data", str(data), "--out", str(tmp_path / "ex")])
    assert result.exit_code == 0, result.stderr
    assert "structure of f: skipped (3 inputs;" in result.stdout
    assert "skipped" in json.loads((tmp_path / "ex" / "explain.json").read_text())["structure"]
    assert not (tmp_path / "ex" / "figures" / "tree.png").exists()


def test_a_product_is_multiplicative_in_the_targets_units_not_once_standardised(tmp_path):
    """A fitted model predicts (y - mean)/std: for y = x·y' that is no product. The hypothesis is
    about y: with the model of (x·y - 5)/2 and that scaling, x|y is multiplicative."""
    from kandisc.io.model_file import load_model, save_model
    from kandisc.io.scaling import Scaling

    model = tmp_path / "model.pt"
    assert runner.invoke(app, ["compile", "(x*y - 5)/2", "-o", str(model)]).exit_code == 0
    bundle = load_model(model)
    bundle.normalization = Scaling(np.zeros(2), np.ones(2), np.array([5.0]), np.array([2.0]), np.zeros(1))
    save_model(bundle, model)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(1, 3, (2, 400))
    data = tmp_path / "data.csv"
    data.write_text("x,y,f\n" + "\n".join(f"{a},{b},{a * b}" for a, b in zip(x, y, strict=True)))
    result = runner.invoke(app, ["test", str(model), "--data", str(data), "--separable", "x|y", "--multiplicative"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "f = g1(x) · g2(y): yes"
