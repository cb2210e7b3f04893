"""KANRegressor: the worked example of docs/notebook.md, scikit-learn's conventions and checks,
results, files and errors.

One fit finds the quickstart law (the docs' example, run once for the module); every other test
fits a tiny pipeline in well under a second.
"""

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy as sp
import torch

from kandisc import KANRegressor
from kandisc.errors import ConfigError, DataError, KandiscError

ROOT = Path(__file__).resolve().parent.parent
TINY = [{"fit": {"steps": 5}}]
# r2_threshold 0: every edge becomes a formula, so even a barely trained net has one per target;
# with one hidden node (width [2, 1, n]) and unsnapped constants the formulas stay short to simplify.
SYMBOLIC = {"r2_threshold": 0, "retrain_steps": 0, "rounds": 1, "snap_constants": False}
TINY_SYMBOLIC = [{"fit": {"steps": 5}}, {"symbolic": SYMBOLIC}]


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """The docs' example run in an empty directory; its namespace and the files it left there."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "notebook.md").read_text(), re.S)
    assert len(blocks) == 2
    where, cwd = tmp_path_factory.mktemp("docs"), os.getcwd()
    (where / "sample_data").symlink_to(ROOT / "sample_data")
    namespace: dict = {}
    os.chdir(where)
    try:
        for block in blocks:
            exec(compile(block, "docs/notebook.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    namespace["left_files"] = sorted(p.name for p in where.iterdir() if p.name != "sample_data")
    return namespace


@pytest.fixture(scope="module")
def quick():
    data = pd.read_csv(ROOT / "sample_data" / "quickstart.csv").iloc[:200]
    return data[["x", "y"]], data["f"]


def test_docs_example_finds_the_law_and_writes_no_file(docs):
    x, y = sp.symbols("x y")
    assert sp.simplify(docs["expr"] - sp.exp(sp.sin(sp.pi * x) + y**2)) == 0
    assert docs["left_files"] == []
    est = docs["est"]
    assert est.run_dir_ is None and est.summary_["law_found"]
    assert r"\sin" in est.latex() and est.latex() == sp.latex(docs["expr"])


def test_formulas_frame_and_pareto_candidates(docs):
    est, frame = docs["est"], docs["est"].formulas_
    assert list(frame.columns[:8]) == [
        "target",
        "complexity",
        "test_rmse",
        "test_r2",
        "sympy",
        "latex",
        "origin",
        "is_best",
    ]
    assert frame["is_best"].sum() == 1 and set(frame["target"]) == {"f"}
    best = int(np.flatnonzero(frame["is_best"])[0])
    assert est.sympy(index=best) == est.sympy()
    last, x, y = est.sympy(index=-1), *sp.symbols("x y")
    text = sp.sympify(frame["sympy"].iloc[-1], locals={"x": x, "y": y})
    assert float(last.subs({x: 0.3, y: -0.7})) == pytest.approx(float(text.subs({x: 0.3, y: -0.7})), rel=1e-10)
    with pytest.raises(KandiscError, match="no formula 99 for f"):
        est.sympy(index=99)
    with pytest.raises(KandiscError, match="unknown target 'g'"):
        est.sympy("g")


def test_predict_score_and_the_formula(docs):
    est, X, y = docs["est"], docs["X"], docs["y"]
    pred = est.predict(X)
    assert pred.shape == (len(X),) and pred.dtype == np.float64
    assert est.score(X, y) > 0.999
    np.testing.assert_allclose(est.predict(X, formula=True), np.exp(np.sin(np.pi * X["x"]) + X["y"] ** 2), rtol=1e-9)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(X.rename(columns={"x": "a"}))


def test_importances_explain_and_figures(docs):
    from matplotlib.figure import Figure

    est = docs["est"]
    scores = {row["name"]: row["score"] for row in est.explain().inputs}
    assert est.feature_importances_.shape == (2,) and (est.feature_importances_ > 0).all()
    assert est.feature_importances_[0] > est.feature_importances_[1]  # sin(πx) varies more than y² on [-1, 1]
    assert scores["x"] > scores["y"] > 0
    assert all(isinstance(f, Figure) for f in docs["figures"].values())
    assert isinstance(docs["network"], Figure)
    X, y = docs["X"], docs["y"]
    assert est.plot("pred_vs_true", X.iloc[:50], y.iloc[:50]).axes[0].collections  # the given rows
    with pytest.raises(KandiscError, match="no figure 'nope'"):
        est.plot("nope")


def test_save_load_pickle_round_trips(docs, tmp_path):
    est, X = docs["est"], docs["X"]
    path = est.save(tmp_path / "est.pt")
    for again in (KANRegressor.load(path), pickle.loads(pickle.dumps(est))):
        np.testing.assert_array_equal(again.predict(X), est.predict(X))
        assert again.sympy() == est.sympy() and again.get_params() == est.get_params()
        pd.testing.assert_frame_equal(again.formulas_, est.formulas_)
        np.testing.assert_array_equal(again.feature_importances_, est.feature_importances_)
        assert sorted(again.plot()) == sorted(docs["figures"])
    from kandisc.api import predict

    csv = tmp_path / "rows.csv"
    X.iloc[:5].to_csv(csv, index=False)
    result = predict(path, csv)  # the CLI reads the estimator's file; without an output path nothing is written
    assert result.out_path is None and sorted(p.name for p in tmp_path.iterdir()) == ["est.pt", "rows.csv"]
    out = result.frame
    np.testing.assert_allclose(out["f_pred"], est.predict(X.iloc[:5]))


def test_clone_get_set_params_and_cross_validation(quick):
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    est = KANRegressor(width=[2, 3, 1], pipeline=TINY, verbosity=0)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, "bundle_")
    assert copy.set_params(grid=7).grid == 7 and est.grid is None
    scores = cross_val_score(est, *quick, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all() and (scores > 0.5).all()


def test_pipeline_with_a_scaler(quick):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), KANRegressor(pipeline=[{"fit": {"steps": 10}}], verbosity=0))
    est = pipe.fit(*quick)[-1]
    assert est.input_names_ == ["x0", "x1"] and est.target_names_ == ["f"]  # a scaler passes plain arrays
    assert pipe.score(*quick) > 0.9


def test_two_targets_named_by_a_data_frame(quick):
    X, f = quick
    Y = pd.DataFrame({"f": f, "g": X["x"] - 2 * X["y"]})
    est = KANRegressor(width=[2, 1, 2], pipeline=TINY_SYMBOLIC, verbosity=0).fit(X.to_numpy(), Y)
    assert est.target_names_ == ["f", "g"] and est.input_names_ == ["x0", "x1"]
    assert est.predict(X.to_numpy()).shape == (len(X), 2)
    assert set(est.formulas_["target"]) == {"f", "g"}
    assert est.sympy("g") != est.sympy("f")
    with pytest.raises(KandiscError, match=r"several targets \(f, g\); pass target="):
        est.sympy()
    named = KANRegressor(pipeline=TINY, variable_names=["u", "v"], target_names=["a", "b"], verbosity=0)
    assert named.fit(X.to_numpy(), Y.to_numpy()).target_names_ == ["a", "b"] and named.input_names_ == ["u", "v"]


def test_bad_keywords_fail_with_the_cli_messages(quick):
    from kandisc.io.config import load_config

    with pytest.raises(ConfigError) as cli:
        load_config(None, ["model.grid=0"])
    with pytest.raises(ConfigError) as est:
        KANRegressor(grid=0).fit(*quick)
    assert str(est.value) == str(cli.value).replace("--set model.grid=0", "KANRegressor")
    with pytest.raises(ValueError, match=r"config: modle: unknown key \(did you mean"):
        KANRegressor(config={"modle": {}}).fit(*quick)
    with pytest.raises(ConfigError, match="configs/nope.yaml: config file not found"):
        KANRegressor(config="configs/nope.yaml").fit(*quick)


def test_bad_data_fails_like_a_csv(quick):
    X, y = quick
    holey = X.copy()
    holey.iloc[3, 0] = np.nan
    with pytest.raises(
        DataError, match=r"1 missing or infinite values \(NaN/inf\) in columns 'x' \(1\), at data rows 4"
    ):
        KANRegressor(pipeline=TINY, verbosity=0).fit(holey, y)
    est = KANRegressor(pipeline=TINY, dropna=True, verbosity=0).fit(holey, y)
    assert est.summary_["status"] == "completed"
    with pytest.raises(DataError, match="only 5 usable rows"):
        KANRegressor(pipeline=TINY).fit(X.iloc[:5], y.iloc[:5])
    with pytest.raises(DataError, match="input name 'my x' .* is not a valid identifier"):
        KANRegressor(pipeline=TINY).fit(X.rename(columns={"x": "my x"}), y)
    with pytest.raises(DataError, match="duplicate column name 'x'"):
        KANRegressor(pipeline=TINY, target_names="x").fit(X, y)
    with pytest.raises(DataError, match="NaN/inf"):
        est.predict(holey)


def test_run_dir_is_the_cli_run_directory(quick, tmp_path):
    from kandisc.api import fit_run

    X, y = quick
    config = {"model": {"width": [2, 1, 1]}, "pipeline": TINY_SYMBOLIC}
    est = KANRegressor(config, run_dir=tmp_path / "est", verbosity=0).fit(X, y)
    csv = tmp_path / "quick.csv"
    pd.concat([X, y], axis=1).to_csv(csv, index=False)
    cli = fit_run(csv, config, tmp_path / "cli")
    files = {p.relative_to(tmp_path / "est") for p in (tmp_path / "est").rglob("*")}
    assert files == {p.relative_to(cli.run_dir) for p in cli.run_dir.rglob("*")}
    assert est.run_dir_ == tmp_path / "est" and est.summary_["formulas"] == cli.summary["formulas"]
    memory = KANRegressor(config, verbosity=0).fit(X, y)  # the same fit, nothing written
    assert memory.summary_["formulas"] == est.summary_["formulas"]
    np.testing.assert_array_equal(memory.predict(X), est.predict(X))
    again = KANRegressor.from_run(cli.run_dir)
    np.testing.assert_allclose(again.predict(X), est.predict(X))
    assert again.sympy() == est.sympy() and again.input_names_ == ["x", "y"]
    assert again.resolved_config().pipeline == est.resolved_config().pipeline
    with pytest.raises(KandiscError, match="exists; pass --overwrite"):
        est.fit(X, y)  # the run directory is taken now; overwrite=True replaces it
    assert est.set_params(config=None, pipeline=TINY, overwrite=True).fit(X, y).run_dir_ == tmp_path / "est"


def test_progress_output_and_global_torch_state(quick, capsys, tmp_path):
    from kandisc.api import compile_formula, explain, predict

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        est = KANRegressor(pipeline=TINY).fit(*quick)  # verbosity=1: log lines (stderr is no terminal)
        assert "stage fit 1 (5 steps)" in capsys.readouterr().err
        est.set_params(verbosity=0).fit(*quick)
        est.explain(), est.plot(), est.predict(quick[0])
        assert capsys.readouterr().err == ""
        csv = tmp_path / "rows.csv"
        quick[0].to_csv(csv, index=False)
        model = compile_formula("x*y", tmp_path / "xy.pt").model_path
        explain(model, csv, figures=False), predict(model, csv)
        assert torch.get_num_threads() == 2 and torch.is_grad_enabled()
        assert torch.get_default_dtype() == torch.float32
    finally:
        torch.set_num_threads(previous)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_scikit_learn_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    # Every check passes; check_array_api_input is skipped by scikit-learn itself unless
    # SCIPY_ARRAY_API is set (kandisc computes in torch, not through the array API).
    est = KANRegressor(pipeline=[{"fit": {"steps": 2}}], verbosity=0)  # two LBFGS steps fit their data
    results = check_estimator(est, on_fail=None)
    failed = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    assert failed == []
    assert {r["check_name"] for r in results if r["status"] == "skipped"} <= {"check_array_api_input"}
