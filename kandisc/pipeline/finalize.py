"""The end of a fit: metrics in target units, attribution, model file, summary and figures."""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import torch

from kandisc import metrics
from kandisc.attribution import Attribution, attribute
from kandisc.errors import FormulaError
from kandisc.io.atomic import atomic_write_text
from kandisc.io.model_file import save_model
from kandisc.pipeline.state import pruned_scores
from kandisc.pipeline.structure_summary import FIT_ROWS, model_structure

REFERENCE_ROWS = 256  # rows of training inputs stored in model.pt for `explain` without --data


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> dict:
    """Per target RMSE and R² (NaN-safe for an empty split)."""
    rmse, r2 = {}, {}
    for t, name in enumerate(names):
        if y_true.shape[0] == 0:
            rmse[name] = r2[name] = None
            continue
        rmse[name] = metrics.rmse(y_true[:, t], y_pred[:, t])
        r2[name] = metrics.r2_score(y_true[:, t], y_pred[:, t])
    return {"rmse": rmse, "r2": r2}


def _predict_rows(bundle, x_model: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return bundle.to_target_units(bundle.model(x_model)).cpu().numpy()


def attribution_tables(bundle, scores, pruned: dict[str, float] | None = None) -> dict:
    """Input, node and edge scores with names (the content of attribution.json / explain.json).

    ``pruned`` (name -> score at pruning time) adds the removed inputs after the kept ones, marked
    ``"pruned": true``, so the table lists every input the fit started with.
    """
    inputs = [{"name": n, "score": float(s)} for n, s in zip(bundle.input_names, scores.input_scores, strict=True)]
    ranked = sorted(inputs, key=lambda r: -r["score"])
    if pruned is not None:
        for row in ranked:
            row["pruned"] = False
        ranked += sorted(
            ({"name": n, "score": v, "pruned": True} for n, v in pruned.items()), key=lambda r: -r["score"]
        )
    for rank, row in enumerate(ranked, 1):
        row["rank"] = rank
    edges = []
    for layer, table in enumerate(scores.edge_scores):
        active = bundle.model.layers[layer].active().cpu()
        for i, j in active.nonzero().tolist():
            edges.append({"layer": layer, "i": i, "j": j, "score": float(table[i, j])})
    return {
        "inputs": ranked,
        "nodes": [t.tolist() for t in scores.node_scores],
        "edges": edges,
        "outputs": list(bundle.output_names),
    }


class Finished(NamedTuple):
    """What the end of a fit computes before anything is written (see :func:`summarize_fit`)."""

    summary: dict
    scores: Attribution
    tables: dict
    pred_test: np.ndarray  # the network's predictions on the test rows, in target units


def summarize_fit(prep, state, test_idx, train_idx) -> Finished:
    """Metrics, attribution and the summary of a finished fit, and the bundle's extras; no I/O.

    The in-memory fit (:mod:`kandisc.fitting`, the notebook estimator) stops here; ``finalize_run``
    writes the results of the same computation into the run directory.
    """
    bundle, data = state.bundle, state.data
    y_raw = prep.y
    labels = dict(prep.table.labels)
    relabel_latex(state.formulas, prep.model_inputs, labels)
    if state.task is None:
        pred_train = _predict_rows(bundle, data.x_train)
        pred_test = _predict_rows(bundle, data.x_test)
        train_m = regression_metrics(y_raw[train_idx], pred_train, bundle.output_names)
        test_m = regression_metrics(y_raw[test_idx], pred_test, bundle.output_names)
    else:
        train_m, test_m = (task_metrics(state, prep.x_all[rows], y_raw[rows]) for rows in (train_idx, test_idx))
        pred_test = _predict_rows(bundle, data.x_test)  # the scalar itself: figures compare no values
    scores = attribute(bundle.model, data.x_train)
    tables = attribution_tables(bundle, scores, pruned_scores(state.reports))
    x_raw_train = prep.x_all[train_idx][:, [prep.model_inputs.index(n) for n in bundle.input_names]]
    bundle.extras.update(
        {
            "attribution": tables,
            "input_ranges": {
                n: [float(prep.x_all[train_idx][:, i].min()), float(prep.x_all[train_idx][:, i].max())]
                for i, n in enumerate(prep.model_inputs)
            },
            "shape_initial": state.shape_history[0],
            "pruned_inputs": list(state.pruned_inputs),
            "stages": [{"stage": r.stage, "label": r.label, "status": r.status, **r.details} for r in state.reports],
            "formulas": {t: f.get("best") for t, f in state.formulas.items()},
            "test_r2": test_m["r2"],
        }
    )
    bundle.tensors["reference_x"] = torch.as_tensor(x_raw_train[:REFERENCE_ROWS])
    formulas = {t: (state.formulas.get(t, {}).get("best") or {}).get("sympy") for t in bundle.output_names}
    summary = {
        "status": "completed",
        "inputs": list(prep.table.input_names),
        "symbols": labels,  # formula symbol -> CSV column, for the columns a formula cannot name
        "auxiliary": dict(prep.cfg.auxiliary),
        "targets": list(bundle.output_names),
        "train_rmse": train_m["rmse"],
        "test_rmse": test_m["rmse"],
        "test_r2": test_m["r2"],
        "formulas": formulas,
        "formulas_in_columns": in_columns(formulas, state.aux_exprs, prep.model_inputs),
        "formula_checks": {t: f.get("check") for t, f in state.formulas.items()},
        **formula_verdicts(state.formulas, bundle.output_names, prep.cfg.search.accept_r2),
        "search": state.search,
        "data": data_record(prep, train_idx, test_idx),
        "shape_initial": state.shape_history[0],
        "shape_final": bundle.model.spec.display_width(),
        "kept_inputs": list(bundle.input_names),
        "pruned_inputs": list(state.pruned_inputs),
        "n_edges": bundle.model.n_edges(),
        "warnings": [r.message for r in state.reports if r.message],
        "wall_seconds": None,
    }
    if state.task is not None:
        summary["task"] = task_summary(state, formulas, prep.x_all[test_idx], y_raw[test_idx])
    else:  # a task's scalar is no measured target: its structure is no hypothesis about the data
        summary["structure"] = model_structure(bundle, data.x_train, FIT_ROWS)
    return Finished(summary, scores, tables, pred_test)


def task_metrics(state, x_raw: np.ndarray, y_raw: np.ndarray) -> dict:
    """The physics task's RMSE and R² of the network (see ``PhysicsTask.metrics``), as per target."""
    task, name = state.task, state.bundle.output_names[0]
    rmse, r2 = task.metrics(task.scalar(state.bundle.model), x_raw, y_raw)
    return {"rmse": {name: rmse}, "r2": {name: r2}}


def task_summary(state, formulas: dict, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """summary["task"]: the task as configured and what its best formula gives on the test rows
    (the equations of motion of L, the conservation of H)."""
    task = state.task
    ((kind, params),) = task.to_dict().items()
    record = {"kind": kind, **params, "scalar": task.output}
    text = formulas.get(task.output)
    if text is not None:
        from kandisc.knowledge.formula import parse_formula

        record.update(task.formula_record(parse_formula(text, task.inputs), x_test, y_test))
    return record


def finalize_run(run, prep, state, test_idx, train_idx) -> dict:
    """Write model.pt, attribution.json, formulas, figures, summary.json and report.md of a fit."""
    clock = [time.perf_counter()]

    def lap() -> float:  # seconds since the previous lap
        clock.append(time.perf_counter())
        return round(clock[-1] - clock[-2], 3)

    summary, scores, tables, pred_test = summarize_fit(prep, state, test_idx, train_idx)
    timings = {"stages": [{"label": r.label, "seconds": r.seconds} for r in state.reports], "summarize": lap()}
    bundle, y_raw = state.bundle, prep.y
    save_model(bundle, run.model_path)
    run.write_json("attribution.json", tables)
    write_formula_files(run, state)
    timings["write"] = lap()
    if prep.cfg.output.figures:
        from kandisc.pipeline.figures import write_figures

        names = None
        if state.task is None:
            shown, sources = formula_predictions(prep, state.formulas, bundle.output_names, test_idx, pred_test)
            y_shown = y_raw[test_idx]
        elif hasattr(state.task, "predict"):  # a Lagrangian: its q̈ against the measured q̈
            shown = state.task.predict(state.task.scalar(bundle.model), prep.x_all[test_idx])
            y_shown, names = y_raw[test_idx], list(prep.table.target_names)
            sources = ["Euler–Lagrange from the network"] * len(names)
        else:  # the conserved H has no measured values to plot against
            shown, sources, y_shown = pred_test, None, None
        summary["figures"] = write_figures(run, prep, state, scores, y_shown, shown, sources, names)
        timings["figures"] = lap()
    summary["wall_seconds"] = round(run.elapsed(), 3)
    summary["timings"] = timings  # where the wall time went (benchmarks/end_to_end.py reads it)
    run.write_json("summary.json", summary)
    from kandisc.io.config import config_to_yaml
    from kandisc.pipeline.report import render_report
    from kandisc.pipeline.report_html import render_html

    labels = state.bundle.extras.get("column_labels") or {}
    config = config_to_yaml(prep.cfg)
    text = render_report(run.path.name, summary, tables, state.formulas, state.reports, config, labels)
    run.write_text("report.md", text)
    run.write_text("report.html", render_html(text, run.path, f"kandisc run {run.path.name}"))
    return summary


def data_record(prep, train_idx, test_idx) -> dict:
    """What the fit was given: the file, rows, split and each column's range (for the report)."""
    table = prep.table
    names = list(table.input_names) + list(table.target_names)
    values = np.concatenate([table.X, table.Y], axis=1)
    return {
        "path": str(table.path),
        "sha256": table.sha256,
        "rows": table.n_rows,
        "dropped_rows": table.n_dropped,
        "train_rows": len(train_idx),
        "test_rows": len(test_idx),
        "test_fraction": prep.cfg.data.test_fraction,
        "seed": prep.cfg.seed,
        "columns": {
            n: {"min": float(values[:, k].min()), "max": float(values[:, k].max()), "mean": float(values[:, k].mean())}
            for k, n in enumerate(names)
        },
    }


def relabel_latex(formulas: dict, names: list[str], labels: dict[str, str]) -> None:
    """Every candidate's LaTeX with the columns' proper names (not the symbols standing for them)."""
    from kandisc.knowledge.latex import formula_latex, needs_relabel

    if not needs_relabel(names, labels):
        return
    for entry in formulas.values():
        for row in [*(entry.get("candidates") or []), entry.get("best") or {}]:
            try:
                row["latex"] = formula_latex(row["sympy"], names, labels)
            except (KeyError, FormulaError):  # no formula, or one over other names: sympy's own LaTeX stays
                continue


def formula_predictions(prep, formulas: dict, targets: list[str], rows, fallback: np.ndarray):
    """Each target's best formula evaluated on ``rows`` (the network's ``fallback`` where none)."""
    from kandisc.knowledge.formula import evaluate_rows, parse_formula

    shown, sources = fallback.copy(), []
    for t, target in enumerate(targets):
        best = (formulas.get(target) or {}).get("best")
        if not best:
            sources.append("network")
            continue
        expr = parse_formula(best["sympy"], prep.model_inputs)
        shown[:, t] = evaluate_rows(expr, prep.model_inputs, prep.x_all[rows])
        sources.append("formula")
    return shown, sources


def formula_verdicts(formulas: dict, targets: list[str], accept_r2: float) -> dict:
    """The best formula's own held-out metrics per target, and whether each reached ``accept_r2``.

    A formula's R² counts, not the network's: the network may fit well while no formula does. A
    law is a formula with test R² ≥ ``accept_r2`` (> 0, so a constant never is one).
    """
    best = {t: (formulas.get(t) or {}).get("best") or {} for t in targets}
    r2 = {t: best[t].get("test_r2") for t in targets}
    found = {t: metrics.reaches(r2[t], accept_r2) for t in targets}
    return {
        "formula_test_r2": r2,
        "formula_test_rmse": {t: best[t].get("test_rmse") for t in targets},
        "accept_r2": accept_r2,
        "law_found": all(found.values()),
        "law_found_per_target": found,
    }


def in_columns(formulas: dict, aux_exprs: dict, names: list[str]) -> dict:
    """Formulas with auxiliary features substituted back into the original CSV columns."""
    if not aux_exprs:
        return dict(formulas)
    from kandisc.knowledge.auxiliary import substitute_auxiliary
    from kandisc.knowledge.formula import parse_formula
    from kandisc.symbolic.simplify import round_significant

    out = {}
    for target, text in formulas.items():
        if text is not None:
            text = str(round_significant(substitute_auxiliary(parse_formula(text, names), aux_exprs), 15))
        out[target] = text
    return out


def write_formula_files(run, state) -> None:
    """formulas.csv (every candidate of every target) and formulas/<target>.tex (the best)."""
    import csv
    import io

    rows = [row for entry in state.formulas.values() for row in entry.get("candidates", [])]
    if not rows:
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    run.write_text("formulas.csv", buffer.getvalue())
    folder = run.formulas_dir
    from kandisc.knowledge.latex import symbol_latex

    run_labels = state.bundle.extras.get("column_labels") or {}
    for target, entry in state.formulas.items():
        best = entry.get("best")
        if best:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in target)
            name = symbol_latex(target, run_labels)
            atomic_write_text(folder / f"{safe}.tex", f"{name} = {best['latex']}\n")
