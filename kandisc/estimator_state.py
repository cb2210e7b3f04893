"""The fitted state of a ``KANRegressor``: set from a fit, a model file or a run directory; saved,
loaded and pickled; and its progress output.

A fitted estimator is a :class:`Fitted` record set as scikit-learn's trailing-underscore attributes.
Every copy of its model is a kandisc model file (``model.pt``): ``save`` writes one with the
estimator's own record in ``extras["estimator"]``, and a pickle holds the bytes of one, so the rule
"never pickle a module" holds for pickled estimators too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kandisc.errors import DataError, RunDirError
from kandisc.io.model_file import ModelBundle, load_model, save_model
from kandisc.io.rundir import METRICS_COLUMNS, to_jsonable
from kandisc.knowledge.user_functions import restore_functions

FORMULA_COLUMNS = ["target", "complexity", "test_rmse", "test_r2", "sympy", "latex", "origin", "is_best"]


@dataclass
class Fitted:
    bundle: ModelBundle
    summary: dict
    formulas: pd.DataFrame  # every Pareto candidate of every target (FORMULA_COLUMNS, + candidate)
    metrics: pd.DataFrame  # every optimiser step (METRICS_COLUMNS)
    input_names: list[str]  # X's columns
    target_names: list[str]
    y_ndim: int  # 1: predict returns (rows,), 2: (rows, targets)
    heldout: tuple | None = None  # (y_test, shown predictions, sources) of the fit's test rows
    run_dir: Path | None = None
    feature_names: bool = False  # X had column names (a data frame) when fitted


def set_fitted(est, fitted: Fitted) -> None:
    """Set the estimator's fitted attributes (scikit-learn's trailing underscore) from ``fitted``."""
    bundle = fitted.bundle
    est.bundle_, est.summary_ = bundle, fitted.summary
    est.formulas_, est.metrics_ = fitted.formulas, fitted.metrics
    est.input_names_, est.target_names_, est.y_ndim_ = fitted.input_names, fitted.target_names, fitted.y_ndim
    est.model_inputs_ = list(bundle.data_columns) + [n for n in bundle.auxiliary if n not in bundle.data_columns]
    est.run_dir_ = fitted.run_dir
    est.n_features_in_ = len(fitted.input_names)
    if fitted.feature_names:
        est.feature_names_in_ = np.asarray(fitted.input_names, dtype=object)
    rows = (bundle.extras.get("attribution") or {}).get("inputs", [])
    scores = {row["name"]: row["score"] for row in rows if not row.get("pruned")}
    # Attribution scores of X's columns in X's order: 0 for a pruned input, NaN when never computed.
    default = 0.0 if scores else float("nan")
    est.feature_importances_ = np.array([scores.get(n, default) for n in fitted.input_names], dtype=np.float64)
    est._heldout = fitted.heldout


def formula_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in FORMULA_COLUMNS:
        if column not in frame:
            frame[column] = pd.Series(dtype=bool if column == "is_best" else object)
    frame["is_best"] = frame["is_best"].fillna(False).astype(bool)
    extra = [c for c in frame.columns if c not in FORMULA_COLUMNS]
    return frame[FORMULA_COLUMNS + extra].reset_index(drop=True)


def metrics_frame(data) -> pd.DataFrame:
    frame = pd.DataFrame(data, columns=list(METRICS_COLUMNS))
    for column in ("train_loss", "test_loss", "reg"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")  # a saved NaN is a JSON null
    return frame


def fitted_from_result(prep, result, y_ndim: int) -> Fitted:
    """The record of a fit (:func:`kandisc.fitting.fit_prepared`) on the prepared table ``prep``."""
    from kandisc.pipeline.finalize import formula_predictions

    state, (_, test_idx) = result.state, result.split
    bundle, targets = state.bundle, list(prep.table.target_names)
    rows = [row for t in targets for row in (state.formulas.get(t) or {}).get("candidates", [])]
    columns = [prep.model_inputs.index(n) for n in bundle.input_names]
    pred = bundle.predict(torch.as_tensor(prep.x_all[test_idx][:, columns])).cpu().numpy()
    shown, sources = formula_predictions(prep, state.formulas, targets, test_idx, pred)
    return Fitted(
        bundle=bundle,
        summary=result.summary,
        formulas=formula_frame(rows),
        metrics=metrics_frame(result.metrics),
        input_names=list(prep.table.input_names),
        target_names=targets,
        y_ndim=y_ndim,
        heldout=(prep.table.Y[test_idx], shown, sources),
        run_dir=result.run_dir,
    )


def heldout(est, X, y) -> tuple:
    """(y, predictions, sources) for the pred_vs_true figure: of X and y when given, else the fit's."""
    if X is None or y is None:
        return est._heldout or (None, None, None)
    truth = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    return truth, est.predict(X).reshape(len(truth), -1), ["network"] * truth.shape[1]


def aux_exprs(est) -> dict:
    """The auxiliary features as sympy expressions of X's columns (and of earlier features)."""
    from kandisc.knowledge.formula import parse_formula

    return {name: parse_formula(text, est.model_inputs_) for name, text in est.bundle_.auxiliary.items()}


# ---------------------------------------------------------------- files


def save(est, path) -> Path:
    record = {
        "params": est.get_params(deep=False),
        "summary": est.summary_,
        "formulas": est.formulas_.to_dict("records"),
        "metrics": est.metrics_.to_dict("list"),
        "input_names": est.input_names_,
        "target_names": est.target_names_,
        "y_ndim": est.y_ndim_,
        "feature_names": hasattr(est, "feature_names_in_"),
        "heldout_sources": est._heldout[2] if est._heldout else None,
    }
    if hasattr(record["params"]["config"], "model_dump"):
        record["params"]["config"] = record["params"]["config"].model_dump(mode="json")
    tensors = dict(est.bundle_.tensors)
    if est._heldout:
        tensors["heldout_y"], tensors["heldout_pred"] = (torch.as_tensor(a) for a in est._heldout[:2])
    extras = {**est.bundle_.extras, "estimator": to_jsonable(record)}
    return save_model(dataclasses.replace(est.bundle_, extras=extras, tensors=tensors), path)


def _read_bundle(path) -> ModelBundle:
    bundle = load_model(path)
    restore_functions(bundle)
    return bundle


def load(cls, path):
    bundle = _read_bundle(path)
    record = bundle.extras.pop("estimator", None)
    if record is None:  # a model file from the CLI or `kandisc compile`
        return _from_bundle(cls, bundle, {}, None, None, None)
    y, pred = bundle.tensors.pop("heldout_y", None), bundle.tensors.pop("heldout_pred", None)
    est = cls(**record["params"])
    kept = None if y is None else (y.numpy(), pred.numpy(), record["heldout_sources"])
    set_fitted(
        est,
        Fitted(
            bundle,
            record["summary"],
            formula_frame(record["formulas"]),
            metrics_frame(record["metrics"]),
            list(record["input_names"]),
            list(record["target_names"]),
            int(record["y_ndim"]),
            kept,
            feature_names=bool(record["feature_names"]),
        ),
    )
    return est


def from_run(cls, run_dir):
    run_dir = Path(run_dir)
    if not (run_dir / "model.pt").is_file():
        raise RunDirError(f"{run_dir} holds no model.pt; pass the directory of a completed kandisc fit run")
    bundle = _read_bundle(run_dir / "model.pt")
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    formulas = pd.read_csv(run_dir / "formulas.csv") if (run_dir / "formulas.csv").is_file() else None
    metrics = pd.read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else None
    config = None
    if (run_dir / "config.yaml").is_file():
        import yaml

        config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return _from_bundle(cls, bundle, summary, formulas, metrics, run_dir, config)


def _from_bundle(cls, bundle, summary, formulas, metrics, run_dir, config=None):
    if formulas is None:  # the model file keeps each target's best formula only
        best = bundle.extras.get("formulas") or {}
        formulas = [{**row, "target": t, "is_best": True} for t, row in best.items() if row]
    est = cls(config=config)
    targets = list(bundle.output_names)
    fitted = Fitted(
        bundle,
        summary,
        formula_frame(formulas.to_dict("records") if isinstance(formulas, pd.DataFrame) else formulas),
        metrics_frame(metrics if metrics is not None else []),
        list(bundle.data_columns),
        targets,
        1 if len(targets) == 1 else 2,
        run_dir=run_dir,
        feature_names=True,  # the columns are named: a data frame's columns are checked against them
    )
    set_fitted(est, fitted)
    return est


# ---------------------------------------------------------------- pickling


def _bundle_bytes(bundle: ModelBundle) -> bytes:
    # torch.save of the model-file dict needs a path (save_model writes atomically); a temporary
    # directory keeps one format for every copy of a model.
    with tempfile.TemporaryDirectory(prefix="kandisc-") as tmp:
        return save_model(bundle, Path(tmp) / "model.pt").read_bytes()


def _bundle_from_bytes(data: bytes) -> ModelBundle:
    with tempfile.TemporaryDirectory(prefix="kandisc-") as tmp:
        path = Path(tmp) / "model.pt"
        path.write_bytes(data)
        return _read_bundle(path)


def getstate(est, state: dict) -> dict:
    if isinstance(state.get("bundle_"), ModelBundle):
        state = {**state, "bundle_": _bundle_bytes(state["bundle_"])}
    return state


def setstate(state: dict) -> dict:
    if isinstance(state.get("bundle_"), bytes):
        state = {**state, "bundle_": _bundle_from_bytes(state["bundle_"])}
    return state


# ---------------------------------------------------------------- progress


@contextlib.contextmanager
def progress_sink(verbosity: int, log_every: int):
    """0: silent; otherwise a rich bar in terminals and Jupyter, plain log lines elsewhere."""
    from rich.console import Console

    from kandisc.pipeline.state import NullSink
    from kandisc.progress import PlainSink, RichSink

    if not verbosity:
        yield NullSink()
        return
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if console.is_terminal or console.is_jupyter:
        with RichSink(console) as sink:
            yield sink
    else:
        yield PlainSink(console, log_every)


def missing_reference() -> DataError:
    return DataError("this model keeps no training rows (e.g. a compiled formula); pass X")
