"""The figures of a fit run: network, loss, attribution, pred_vs_true (and pareto with formulas)."""

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


def write_figures(run, prep, state, scores, y_test, pred_test, sources=None) -> list[str]:
    """Write every figure into ``run/figures``; returns the paths relative to the run directory."""
    from kandisc import plots

    bundle, fmts = state.bundle, list(prep.cfg.output.formats)
    folder = run.figures_dir
    written = []
    written += plots.plot_network(
        bundle.model, state.data.x_train, scores, bundle.input_names, bundle.output_names, folder / "network", fmts
    )
    rows = _metrics_rows(run)
    if rows:
        written += plots.plot_loss(rows, folder / "loss", fmts)
    written += plots.plot_attribution(
        bundle.input_names + state.pruned_inputs,
        scores.input_scores.tolist() + [0.0] * len(state.pruned_inputs),
        folder / "attribution",
        fmts,
        pruned_inputs=state.pruned_inputs,
    )
    if len(y_test):
        written += plots.plot_pred_vs_true(
            y_test, pred_test, bundle.output_names, folder / "pred_vs_true", fmts, sources=sources
        )
    candidates = {t: f.get("candidates", []) for t, f in state.formulas.items() if f.get("candidates")}
    if candidates:
        written += plots.plot_pareto(candidates, folder / "pareto", fmts)
    return [str(Path(p).relative_to(run.path)) for p in written]
