"""Figures of a kandisc run: network diagram, loss, attribution, predicted vs true, Pareto front,
modular-structure tree.

Every ``draw_*`` function draws one figure on a headless Agg canvas (pyplot is never used) and
returns it; its ``plot_*`` twin writes it as ``<path_stem>.<fmt>`` for each requested format
("png", "pdf", "svg") atomically, and returns the written paths. matplotlib is imported only when
a figure is drawn, so importing this package is cheap. PNGs are written at 150 dpi; PDF and SVG
output carries no dates, so equal inputs give equal files.

- :mod:`kandisc.plots.style`: the shared look, Agg figures and atomic saving;
- :mod:`kandisc.plots.curves`: loss, attribution, predicted vs true and Pareto figures;
- :mod:`kandisc.plots.network`: the network diagram with every edge's curve.
"""

from kandisc.plots.curves import (
    draw_attribution,
    draw_loss,
    draw_pareto,
    draw_pred_vs_true,
    plot_attribution,
    plot_loss,
    plot_pareto,
    plot_pred_vs_true,
)
from kandisc.plots.network import draw_network, plot_network
from kandisc.plots.style import FORMATS, save_figure
from kandisc.plots.tree import plot_tree

__all__ = [
    "FORMATS",
    "draw_attribution",
    "draw_loss",
    "draw_network",
    "draw_pareto",
    "draw_pred_vs_true",
    "plot_attribution",
    "plot_loss",
    "plot_network",
    "plot_pareto",
    "plot_pred_vs_true",
    "plot_tree",
    "save_figure",
]
