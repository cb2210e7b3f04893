"""The words around the network diagram: the title and notes above it, and the legend of edge forms.

Symbolic edges are numbered in the drawing; the legend beside it gives each number's fitted form
in its input's name (``3  θ → 0.208*sin(3*θ)``), on the raw input when the model was trained on
standardised data. Sizes are in inches, like the drawing's own layout (:mod:`kandisc.plots.network`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kandisc.plots.style import fit_fontsize, text_width

if TYPE_CHECKING:
    from kandisc.model import MultKAN

LEGEND_FONT = 7.5
MAX_LEGEND_WIDTH = 4.5
MAX_LEGEND_LINES = 40
MAX_NAME = 40


def short_name(name: str) -> str:
    """A column name cut to ``MAX_NAME`` characters for a figure."""
    name = str(name)
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def edge_legend(model: MultKAN, in_names: list[str], scaling) -> tuple[dict, list[str]]:
    """A number for each symbolic edge and the legend lines giving its fitted form, ``3  θ: sin(π*θ)``.

    ``scaling`` ((mean, std) per input, or None): input edges are shown on the raw inputs.
    """
    from kandisc.symbolic.edge_form import edge_source, edge_text, raw_params

    numbers, lines = {}, []
    for edge in model.symbolic_edges():
        layer, i, j = edge["layer"], edge["i"], edge["j"]
        source = edge_source(layer, i, in_names)
        numbers[(layer, i, j)] = len(numbers) + 1
        params = edge["params"]
        if scaling is not None and layer == 0:
            params = raw_params(params, float(scaling[0][i]), float(scaling[1][i]))
        form = edge_text(edge["fn"], params, source)
        lines.append(f"{len(numbers):>2}  {short_name(source)} → {form}")
    if len(lines) > MAX_LEGEND_LINES:  # a big network: the report's table has every edge
        lines = lines[: MAX_LEGEND_LINES - 1] + [f"... {len(lines) - MAX_LEGEND_LINES + 1} more in report.md"]
    return numbers, lines


def legend_size(lines: list[str]) -> tuple[float, float, float]:
    """(fontsize, width, height) in inches of the edge legend; nothing when there is no line."""
    if not lines:
        return LEGEND_FONT, 0.0, 0.0
    longest = max(len(line) for line in lines) + 2
    size = fit_fontsize(longest, MAX_LEGEND_WIDTH, largest=LEGEND_FONT)
    # 1.15: the monospace face and the arrow run a little wider than the 0.6 em estimate
    width = 1.15 * min(text_width(longest, size), MAX_LEGEND_WIDTH) + 0.3
    return size, width, (len(lines) + 1.5) * size / 72 * 1.45


def draw_head(fig, title: str | None, notes: Sequence[str], fig_w: float, fig_h: float) -> None:
    """The title (bold, shrunk to the figure's width) and the note lines under it, at the top."""
    y = 1 - 0.12 / fig_h
    if title:
        size = fit_fontsize(len(title), fig_w - 0.4, largest=11.0)
        fig.text(0.5, y, title, ha="center", va="top", fontsize=size, fontweight="bold", parse_math=False)
        y -= 0.36 / fig_h
    for note in notes:
        size = fit_fontsize(len(note), fig_w - 0.4, largest=7.5)
        fig.text(0.5, y, note, ha="center", va="top", fontsize=size, color="0.3", parse_math=False)
        y -= 0.2 / fig_h


def draw_legend(fig, lines: list[str], left: float, top: float, fontsize: float, colour) -> None:
    """The edge legend as one monospace block whose top-left corner is at (left, top), figure fraction."""
    text = "symbolic edges (fitted form)\n" + "\n".join(lines)
    fig.text(
        left, top, text, ha="left", va="top", fontsize=fontsize, color=colour, family="monospace",
        linespacing=1.45, parse_math=False,
    )  # fmt: skip
