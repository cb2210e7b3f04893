"""The figures of a fit: network, loss, attribution, pred_vs_true (and pareto with formulas).

``draw_figures`` draws them from plain results (a notebook shows them, nothing is written);
``write_figures`` draws the same figures of a run and writes them into ``run/figures``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path


def _metrics_rows(run) -> list[dict]:
    path = run.path / "metrics.csv"
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in ("step", "train_loss", "test_loss"):
            row[key] = float(row[key]) if row.get(key) not in (None, "") else float("nan")
    return rows


def draw_figures(
    bundle, x_model, scores, pruned_inputs, metrics, y_test, pred_test, sources=None, candidates=None, target_names=None
) -> dict:
    """Name -> matplotlib figure: network (on model-space rows ``x_model``), loss (from ``metrics``
    rows, when any), attribution, pred_vs_true (when there are test rows), pareto (when formulas).

    ``pruned_inputs``: names, or name -> score when pruned (their bars show that score, greyed)."""
    from kandisc import plots

    pruned = list(pruned_inputs)
    title, notes = network_title(candidates or {}, bundle.extras.get("column_labels") or {})
    norm = bundle.normalization
    scaling = (norm.x_mean, norm.x_std) if norm is not None else None
    figures = {
        "network": plots.draw_network(
            bundle.model, x_model, scores, bundle.input_names, bundle.output_names, title=title, notes=notes,
            input_scaling=scaling,
        )
    }  # fmt: skip
    if len(metrics):
        figures["loss"] = plots.draw_loss(metrics)
    at_pruning = pruned_inputs if isinstance(pruned_inputs, dict) else {}
    names = bundle.input_names + pruned
    values = scores.input_scores.tolist() + [float(at_pruning.get(n, 0.0)) for n in pruned]
    figures["attribution"] = plots.draw_attribution(names, values, pruned_inputs=pruned)
    if y_test is not None and len(y_test):
        names = target_names or bundle.output_names
        figures["pred_vs_true"] = plots.draw_pred_vs_true(y_test, pred_test, names, sources)
    if candidates:
        figures["pareto"] = plots.draw_pareto(candidates)
    return figures


def network_title(candidates: dict, labels: dict) -> tuple[str | None, list[str]]:
    """The network figure's title (each target's chosen formula) and a note naming renamed columns."""
    from kandisc.io.names import mapping_line
    from kandisc.plots.curves import short_formula

    parts = []
    for target, rows in candidates.items():
        best = next((r for r in rows if r.get("is_best")), None)
        if best:
            parts.append(f"{target} = {short_formula(best['sympy'], 150) or best['sympy'][:147] + '…'}")
    title = re.sub(r"\bpi\b", "π", "; ".join(parts)) or None  # read by people, not parsed
    return title, ([f"symbols: {mapping_line(labels)}"] if labels else [])


def write_figures(run, prep, state, scores, y_test, pred_test, sources=None, target_names=None) -> list[str]:
    """Write every figure into ``run/figures``; returns the paths relative to the run directory.
    ``target_names``: what ``y_test`` holds, when not the model's outputs (a Lagrangian's q̈)."""
    from kandisc.pipeline.state import pruned_scores
    from kandisc.plots import save_figure

    candidates = {t: f.get("candidates", []) for t, f in state.formulas.items() if f.get("candidates")}
    figures = draw_figures(
        state.bundle,
        state.data.x_train,
        scores,
        {n: pruned_scores(state.reports).get(n, 0.0) for n in state.pruned_inputs},
        _metrics_rows(run),
        y_test,
        pred_test,
        sources,
        candidates,
        target_names,
    )
    folder, fmts = run.figures_dir, list(prep.cfg.output.formats)
    written = [path for name, fig in figures.items() for path in save_figure(fig, folder / name, fmts)]
    return [str(Path(p).relative_to(run.path)) for p in written]
