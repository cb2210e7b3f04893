"""The network diagram: a MultKAN drawn layer by layer with every edge's learned curve.

Inputs sit at the bottom and outputs at the top (as in KAN papers). Between two node layers, each
active edge gets a small box in a row (ordered by source node, so edges fan out from each node
without crossing) showing the edge's curve over the range its input takes on a reference sample;
the edge runs from its source node into the box and from the box into its destination. Crowded
rows are staggered over two or three heights. Symbolic edges are numbered; a legend beside the
drawing gives each one's fitted form (``sin(π*x)``), and a title can name the formula. Opacity
is ``tanh(beta·score)`` of the attribution score; colour gives the edge's state. Everything is
drawn as a handful of collections on one full-height Axes whose data units are inches: no
per-edge Axes, no temporary images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kandisc.plots.network_text import draw_head, draw_legend, edge_legend, legend_size, short_name
from kandisc.plots.style import MIN_FONT, fit_fontsize, new_figure, save_figure, style, text_width

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from kandisc.model import MultKAN

REMOVED, NUMERIC, SYMBOLIC = 0, 1, 2
COLOURS = {NUMERIC: (0.0, 0.0, 0.0), SYMBOLIC: (0.85, 0.1, 0.1), REMOVED: (0.72, 0.72, 0.72)}
MIN_ALPHA = 0.05
N_POINTS = 100

MARGIN = 0.3  # inches around the drawing
NODE_SPACING = 0.9  # preferred distance between nodes
SLOT = 0.42  # preferred width per edge box
MIN_SLOT = 0.3  # narrower than this: stagger the boxes over several heights
MAX_BOX = 0.38
MAX_WIDTH = 16.0
MIN_LABEL_SPACING = 0.13  # a 6 pt rotated label needs this much room per node
FAN = 0.45  # vertical room for the lines between a node row and a box row
SUB_DROP = 0.28  # how far below a mult node its factor subnodes sit
ROW_GAP = 0.15  # vertical gap between staggered box rows
MIN_FIGURE_WIDTH = 6.4  # inches: 960 px at 150 dpi, legible at a glance


@dataclass
class _Labels:
    names: list[str]
    fontsize: float
    rotation: float
    room: float  # vertical inches the labels take


@dataclass
class _Layout:
    width: float
    height: float
    nodes: list[np.ndarray]  # per node layer: (n, 2) positions
    subnodes: list[np.ndarray]  # per node layer: (subnodes, 2); layer 0: the input nodes
    edges: list[np.ndarray]  # per layer: (E, 2) active (i, j), ordered by i then j
    boxes: list[np.ndarray]  # per layer: (E, 2) box centres
    box: list[float]  # per layer: box side
    inputs: _Labels
    outputs: _Labels


def _labels(names: Sequence[str], spacing: float) -> _Labels:
    """Horizontal labels when they fit at >= 7 pt, otherwise vertical ones sized to the spacing."""
    names = [short_name(n) for n in names]
    longest = max((len(n) for n in names), default=1)
    size = fit_fontsize(longest, 0.8 * spacing, largest=10.0, smallest=0.0)
    if size >= 7.0:
        return _Labels(names, size, 0.0, size / 72 * 1.5 + 0.08)
    size = max(MIN_FONT, min(9.0, spacing * 72 / 1.5))
    return _Labels(names, size, 90.0, text_width(longest, size) + 0.12)


def _edge_states(model: MultKAN) -> list[np.ndarray]:
    states = []
    for kan in model.layers:
        sym = kan.sym_mask.detach().cpu().numpy()
        num = (kan.num_mask > 0).detach().cpu().numpy()
        states.append(np.where(sym, SYMBOLIC, np.where(num, NUMERIC, REMOVED)).astype(int))
    return states


def _row_x(count: int, left: float, width: float) -> np.ndarray:
    return left + (np.arange(count) + 0.5) * width / max(count, 1)


def _layout(model: MultKAN, states: list[np.ndarray], in_names, out_names) -> _Layout:
    spec = model.spec
    depth = spec.depth
    counts = [spec.nodes(layer) for layer in range(depth + 1)]
    edges = [np.argwhere(s != REMOVED) for s in states]  # row-major: ordered by i, then j
    want = max(max(counts) * NODE_SPACING, max(len(e) for e in edges) * SLOT, 3.5)
    content = max(min(want, MAX_WIDTH), counts[0] * MIN_LABEL_SPACING, counts[-1] * MIN_LABEL_SPACING)
    inputs = _labels(in_names, content / counts[0])
    outputs = _labels(out_names, content / counts[-1])

    boxes_per_row, box = [], []
    for e in edges:
        slot = content / max(len(e), 1)
        rows = 1 if slot >= MIN_SLOT else min(3, math.ceil(MIN_SLOT / slot))
        boxes_per_row.append(rows)
        box.append(min(MAX_BOX, 0.8 * slot * rows))

    node_xy, sub_xy, box_xy = [], [], []
    y = MARGIN + inputs.room
    x0 = _row_x(counts[0], MARGIN, content)
    node_xy.append(np.column_stack([x0, np.full(counts[0], y)]))
    sub_xy.append(node_xy[0])
    for layer in range(depth):
        rows, side = boxes_per_row[layer], box[layer]
        band = rows * side + (rows - 1) * ROW_GAP
        has_mult = bool(spec.width[layer + 1][1])
        fan = FAN if len(edges[layer]) <= 20 else 1.6 * FAN  # dense fans need room to separate
        y_next = y + max(1.2, band + 2 * fan + (SUB_DROP if has_mult else 0.0))
        y_sub = y_next - (SUB_DROP if has_mult else 0.0)
        nodes, subs = _node_row(spec, layer + 1, content, y_next, y_sub)
        centre = (y + y_sub) / 2
        n_e = len(edges[layer])
        bx = _row_x(n_e, MARGIN, content)
        by = centre + ((np.arange(n_e) % rows) - (rows - 1) / 2) * (side + ROW_GAP)
        box_xy.append(np.column_stack([bx, by]))
        node_xy.append(nodes)
        sub_xy.append(subs)
        y = y_next
    height = y + outputs.room + MARGIN
    return _Layout(content + 2 * MARGIN, height, node_xy, sub_xy, edges, box_xy, box, inputs, outputs)


def _node_row(spec, node_layer: int, content: float, y: float, y_sub: float):
    """Node positions and subnode positions (factors of a mult node cluster below it)."""
    n = spec.nodes(node_layer)
    xs = _row_x(n, MARGIN, content)
    owner = spec.subnode_owner(node_layer)
    n_sum = spec.width[node_layer][0]
    spacing = content / n
    sub = []
    seen: dict[int, int] = {}
    for node in owner:
        if node < n_sum:
            sub.append((xs[node], y))
            continue
        arity = spec.mult_arity[node_layer][node - n_sum]
        k = seen.get(node, 0)
        seen[node] = k + 1
        step = min(0.3, 0.6 * spacing / max(arity - 1, 1))
        sub.append((xs[node] + (k - (arity - 1) / 2) * step, y_sub))
    return np.column_stack([xs, np.full(n, y)]), np.array(sub, dtype=float).reshape(-1, 2)


def _curves(model: MultKAN, x_ref: torch.Tensor, n_points: int):
    """Per layer: the input grid (P, in) spanning the reference range and edge outputs (P, in, out)."""
    import torch

    x = torch.as_tensor(x_ref).to(dtype=model.dtype, device=model.device)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] != model.spec.n_inputs:
        raise ValueError(f"x_ref must have shape (rows, {model.spec.n_inputs}), got {tuple(x.shape)}")
    return [(grid.cpu().numpy(), phi.cpu().numpy()) for grid, phi in model.edge_curves(x, n_points)]


def _alphas(scores, states: np.ndarray, beta: float) -> np.ndarray:
    if scores is None:
        return np.ones(states.shape)
    s = np.nan_to_num(np.asarray(_numpy(scores), dtype=float), nan=0.0)
    return np.clip(np.tanh(beta * s), MIN_ALPHA, 1.0)


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def _rgba(states: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    rgb = np.array([COLOURS[s] for s in states.ravel()]).reshape(-1, 3)
    return np.column_stack([rgb, alphas.ravel()])


def _draw_layer(ax, lay: _Layout, layer: int, state, alpha, curve, fn_names, numbers: dict) -> None:
    from matplotlib.collections import LineCollection, PatchCollection
    from matplotlib.patches import Rectangle

    src, dst = lay.nodes[layer], lay.subnodes[layer + 1]
    removed = np.argwhere(state == REMOVED)
    if len(removed):
        segs = np.stack([src[removed[:, 0]], dst[removed[:, 1]]], axis=1)
        ax.add_collection(
            LineCollection(segs, colors=[COLOURS[REMOVED]], linewidths=0.6, linestyles=":", alpha=0.6, zorder=1)
        )
    edges = lay.edges[layer]
    if not len(edges):
        return
    i, j = edges[:, 0], edges[:, 1]
    side, centre = lay.box[layer], lay.boxes[layer]
    rgba = _rgba(state[i, j], alpha[i, j])
    low = centre - [0, side / 2]
    high = centre + [0, side / 2]
    segs = np.concatenate([np.stack([src[i], low], 1), np.stack([high, dst[j]], 1)])
    ax.add_collection(LineCollection(segs, colors=np.concatenate([rgba, rgba]), linewidths=0.8, zorder=2))
    frames = [Rectangle((cx - side / 2, cy - side / 2), side, side) for cx, cy in centre]
    ax.add_collection(PatchCollection(frames, facecolors="white", edgecolors=rgba, linewidths=0.6, zorder=3))
    grid, values = curve
    ax.add_collection(
        LineCollection(_polylines(grid, values, i, j, centre, side), colors=rgba, linewidths=0.9, zorder=4)
    )
    for e in np.flatnonzero(state[i, j] == SYMBOLIC):
        ax.text(
            centre[e, 0],
            centre[e, 1] + side / 2 + 0.02,
            f"{numbers[(layer, int(i[e]), int(j[e]))]}: {fn_names[i[e], j[e]]}",
            fontsize=MIN_FONT,
            color=COLOURS[SYMBOLIC],
            alpha=float(max(alpha[i[e], j[e]], 0.4)),
            ha="center",
            va="bottom",
            zorder=6,
            parse_math=False,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.4, "alpha": 0.85},
        )


def _polylines(grid: np.ndarray, values: np.ndarray, i, j, centre: np.ndarray, side: float) -> np.ndarray:
    """(E, P, 2) curve points scaled into each edge's box (each curve fills its own box)."""
    pad = 0.12 * side
    xs = grid[:, i].T  # (E, P)
    ys = values[:, i, j].T
    span_x = np.ptp(xs, axis=1, keepdims=True)
    u = np.where(span_x > 0, (xs - xs.min(1, keepdims=True)) / np.where(span_x > 0, span_x, 1), 0.5)
    finite = np.isfinite(ys)  # a symbolic edge may blow up (1/x at 0): leave those points out
    y_max = np.where(finite, ys, -np.inf).max(1, keepdims=True)
    y_min = np.where(finite, ys, np.inf).min(1, keepdims=True)
    y_max, y_min = np.where(np.isfinite(y_max), y_max, 0.0), np.where(np.isfinite(y_min), y_min, 0.0)
    span_y = y_max - y_min
    # A nearly constant edge is drawn nearly flat instead of blowing its noise up to full height
    # (relative to a high percentile, so one exploding edge does not flatten all the others).
    floor = max(float(np.percentile(span_y, 90)) * 0.02, 1e-12)
    span_y = np.maximum(span_y, floor)
    v = np.where(finite, (ys - (y_max + y_min) / 2) / span_y + 0.5, np.nan)
    px = centre[:, :1] - side / 2 + pad + u * (side - 2 * pad)
    py = centre[:, 1:] - side / 2 + pad + v * (side - 2 * pad)
    return np.stack([px, py], axis=-1)


def _hollow_markers(ax, points: np.ndarray, size: float, marker: str, edge_rgba: np.ndarray, width: float) -> None:
    """White-filled markers (mult nodes, their factor subnodes) whose outline fades with importance."""
    ax.scatter(
        points[:, 0],
        points[:, 1],
        s=size,
        marker=marker,
        facecolors="white",
        edgecolors=edge_rgba,
        linewidths=width,
        zorder=5,
    )


def _draw_nodes(ax, model: MultKAN, lay: _Layout, node_alpha: list[np.ndarray]) -> None:
    from matplotlib.collections import LineCollection

    spec = model.spec
    for layer, xy in enumerate(lay.nodes):
        n_sum = spec.width[layer][0]
        colours = np.zeros((len(xy), 4))
        colours[:, 3] = node_alpha[layer]
        ax.scatter(xy[:n_sum, 0], xy[:n_sum, 1], s=36, c=colours[:n_sum], marker="o", linewidths=0, zorder=5)
        if len(xy) == n_sum:
            continue
        mult = xy[n_sum:]
        _hollow_markers(ax, mult, 150, "s", colours[n_sum:], 1.1)
        for (x, y), a in zip(mult, node_alpha[layer][n_sum:], strict=True):
            ax.text(x, y, "×", fontsize=10, ha="center", va="center_baseline", alpha=float(a), zorder=6)
        owner = np.array(spec.subnode_owner(layer))
        factors = np.flatnonzero(owner >= n_sum)
        subs = lay.subnodes[layer][factors]
        tops = xy[owner[factors]] - [0, 0.07]
        factor_rgba = np.zeros((len(factors), 4))
        factor_rgba[:, 3] = node_alpha[layer][owner[factors]]
        ax.add_collection(LineCollection(np.stack([subs, tops], 1), colors=factor_rgba, linewidths=0.8, zorder=4))
        _hollow_markers(ax, subs, 10, "o", factor_rgba, 0.7)


def _draw_labels(ax, labels: _Labels, xy: np.ndarray, below: bool) -> None:
    for name, (x, y) in zip(labels.names, xy, strict=True):
        offset = -0.1 if below else 0.1
        if not below and labels.rotation == 0:
            offset = 0.12
        ax.text(
            x,
            y + offset,
            name,
            fontsize=labels.fontsize,
            rotation=labels.rotation,
            ha="center",
            va="top" if below else "bottom",
            zorder=6,
            parse_math=False,
        )


def _names(given, count: int, prefix: str, what: str) -> list[str]:
    if given is None:
        return [f"{prefix}{i}" for i in range(count)]
    names = [str(n) for n in given]
    if len(names) != count:
        raise ValueError(f"{what} has {len(names)} names but the model has {count}")
    return names


def plot_network(
    model: MultKAN,
    x_ref: torch.Tensor,
    attribution=None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    path_stem: Path | str = "network",
    formats: Sequence[str] = ("png",),
    beta: float = 3.0,
    title: str | None = None,
    notes: Sequence[str] = (),
    input_scaling=None,
) -> list[Path]:
    """:func:`draw_network`, written as ``path_stem.<fmt>``; returns the written paths."""
    fig = draw_network(model, x_ref, attribution, input_names, output_names, beta, title, notes, input_scaling)
    return save_figure(fig, path_stem, formats)


def draw_network(
    model: MultKAN,
    x_ref: torch.Tensor,
    attribution=None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    beta: float = 3.0,
    title: str | None = None,
    notes: Sequence[str] = (),
    input_scaling=None,
) -> Figure:
    """Draw ``model`` with each edge's curve over the range of its input on ``x_ref``.

    ``attribution`` (an :class:`kandisc.attribution.Attribution` or ``None``) sets edge and node
    opacity to ``tanh(beta·score)`` (at least 0.05); without it everything is opaque. Numeric
    edges are black, symbolic ones red with a number and their function's name; a legend beside
    the drawing gives each numbered edge's fitted form. Removed edges are grey and dotted. Sum
    nodes are dots, multiplication nodes squares with ×. ``title`` (e.g. the formula) heads the
    figure, ``notes`` are small lines under it (e.g. what the symbols stand for). ``input_scaling``
    ((mean, std) arrays of a model trained on standardised inputs) writes the input edges' forms on
    the raw inputs. Returns the figure.
    """
    from kandisc.model.functions import FUNCTION_NAMES

    spec = model.spec
    in_names = _names(input_names, spec.n_inputs, "x", "input_names")
    out_names = _names(output_names, spec.n_outputs, "y", "output_names")
    states = _edge_states(model)
    curves = _curves(model, x_ref, N_POINTS)
    numbers, legend = edge_legend(model, in_names, input_scaling)
    with style():
        lay = _layout(model, states, in_names, out_names)
        leg_font, leg_w, leg_h = legend_size(legend)
        head = (0.42 if title else 0.0) + 0.2 * len(notes)
        fig_w = max(lay.width + leg_w, MIN_FIGURE_WIDTH)
        fig_h = max(lay.height, leg_h) + head
        fig = new_figure(fig_w, fig_h)
        x0 = (fig_w - lay.width - leg_w) / 2  # the drawing (and its legend) centred
        ax = fig.add_axes((x0 / fig_w, 0, lay.width / fig_w, lay.height / fig_h))  # data units: inches
        ax.set_xlim(0, lay.width)
        ax.set_ylim(0, lay.height)
        ax.set_axis_off()
        for layer, kan in enumerate(model.layers):
            scores = None if attribution is None else attribution.edge_scores[layer]
            fn_names = np.array(FUNCTION_NAMES, dtype=object)[_numpy(kan.sym_fn)]
            alphas = _alphas(scores, states[layer], beta)
            _draw_layer(ax, lay, layer, states[layer], alphas, curves[layer], fn_names, numbers)
        node_alpha = [
            np.ones(len(xy))
            if attribution is None
            else np.maximum(_alphas(attribution.node_scores[layer], np.zeros(len(xy)), beta), 0.25)
            for layer, xy in enumerate(lay.nodes)
        ]
        _draw_nodes(ax, model, lay, node_alpha)
        _draw_labels(ax, lay.inputs, lay.nodes[0], below=True)
        _draw_labels(ax, lay.outputs, lay.nodes[-1], below=False)
        draw_head(fig, title, notes, fig_w, fig_h)
        if legend:
            top = (min(lay.height, fig_h - head) - MARGIN) / fig_h
            draw_legend(fig, legend, (x0 + lay.width + 0.15) / fig_w, top, leg_font, COLOURS[SYMBOLIC])
        return fig
