"""The figures of a fit: network, loss, attribution, pred_vs_true (and pareto with formulas).

``draw_figures`` draws them from plain results (a notebook shows them, nothing is written);
``write_figures`` draws the same figures of a run and writes them into ``run/figures``.
"""

from __future__ import annotations

import csv
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
    bundle, x_model, scores, pruned_inputs, metrics, y_test, pred_test, sources=None, candidates=None
) -> dict:
    """Name -> matplotlib figure: network (on model-space rows ``x_model``), loss (from ``metrics``
    rows, when any), attribution, pred_vs_true (when there are test rows), pareto (when formulas)."""
    from kandisc import plots

    pruned = list(pruned_inputs)
    title, notes = network_title(candidates or {}, bundle.extras.get("column_labels") or {})
    figures = {
        "network": plots.draw_network(
            bundle.model, x_model, scores, bundle.input_names, bundle.output_names, title=title, notes=notes
        )
    }
    if len(metrics):
        figures["loss"] = plots.draw_loss(metrics)
    names, values = bundle.input_names + pruned, scores.input_scores.tolist() + [0.0] * len(pruned)
    figures["attribution"] = plots.draw_attribution(names, values, pruned_inputs=pruned)
    if y_test is not None and len(y_test):
        figures["pred_vs_true"] = plots.draw_pred_vs_true(y_test, pred_test, bundle.output_names, sources)
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
    return ("; ".join(parts) or None), ([f"symbols: {mapping_line(labels)}"] if labels else [])


def write_figures(run, prep, state, scores, y_test, pred_test, sources=None) -> list[str]:
    """Write every figure into ``run/figures``; returns the paths relative to the run directory."""
    from kandisc.plots import save_figure

    candidates = {t: f.get("candidates", []) for t, f in state.formulas.items() if f.get("candidates")}
    figures = draw_figures(
        state.bundle,
        state.data.x_train,
        scores,
        state.pruned_inputs,
        _metrics_rows(run),
        y_test,
        pred_test,
        sources,
        candidates,
    )
    folder, fmts = run.figures_dir, list(prep.cfg.output.formats)
    written = [path for name, fig in figures.items() for path in save_figure(fig, folder / name, fmts)]
    return [str(Path(p).relative_to(run.path)) for p in written]
