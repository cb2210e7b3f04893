"""The modular-structure tree of a model (``kandisc explain``): inputs at the bottom, groups above.

Takes the plain ``tree_detail`` dict of :meth:`kandisc.structure.Structure.to_dict` (``kind``,
``inputs``, ``score``, ``symmetry``, ``children``), so it needs no model. Leaves sit in tree order
along the bottom; each inner node stands above its children at a height one more than its
tallest child, joined by elbow lines, marked with how its children combine and annotated with
its split score and, below the root, the symmetry score of its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kandisc.plots.curves import TRAIN
from kandisc.plots.style import fit_fontsize, new_figure, save_figure, style

SYMBOLS = {"add": "+", "mul": "×", "general": "h(Σ)", "compose": "∘"}
MEANING = {"add": "additive", "mul": "multiplicative", "general": "general, h(p + q + ...)", "compose": "no split"}
SYMMETRY = "#2a9d5c"


def _layout(node: dict, leaves: list[str], placed: list) -> tuple[float, int]:
    """(x, height) of ``node``; appends (node, x, height, children's xs) for inner nodes."""
    children = node.get("children", [])
    if not children:
        leaves.append(node["inputs"][0])
        return float(len(leaves) - 1), 0
    spots = [_layout(child, leaves, placed) for child in children]
    xs = [x for x, _ in spots]
    height = 1 + max(h for _, h in spots)
    x = sum(xs) / len(xs)
    placed.append((node, x, height, spots))
    return x, height


def _draw_node(ax, node: dict, x: float, y: float, spots, fontsize: float, is_root: bool) -> None:
    for cx, ch in spots:
        ax.plot([cx, cx, x], [ch, y - 0.35, y - 0.35], color="0.55", lw=1.0, solid_capstyle="round")
    ax.plot([x, x], [y - 0.35, y - 0.18], color="0.55", lw=1.0)
    label = SYMBOLS.get(node["kind"], node["kind"])
    box = {"boxstyle": "round,pad=0.3", "fc": "white", "ec": TRAIN, "lw": 1.2}
    ax.text(x, y, label, ha="center", va="center", fontsize=fontsize + 1, color=TRAIN, bbox=box, zorder=3)
    notes = []
    if node.get("score") is not None:
        notes.append((f"split {node['score']:.2g}", "0.35"))
    if node.get("symmetry") is not None and not is_root:
        notes.append((f"sym {node['symmetry']:.2g}", SYMMETRY))
    right = x + 0.12 + 0.07 * len(label)  # clear of the label's box
    for k, (text, colour) in enumerate(notes):
        ax.text(right, y + 0.1 - 0.2 * k, text, ha="left", va="center", fontsize=fontsize - 2, color=colour)


def plot_tree(
    tree: dict,
    path_stem: Path | str,
    formats: Sequence[str] = ("png",),
    title: str = "Modular structure",
    threshold: float | None = None,
) -> list[Path]:
    """Draw ``tree`` (a ``tree_detail`` dict) and save it as ``path_stem.<fmt>``; ``threshold``,
    when given, is named in the key (split and symmetry scores hold below it)."""
    leaves: list[str] = []
    placed: list = []
    _, top = _layout(tree, leaves, placed)
    n = len(leaves)
    width, height = max(4.0, 0.9 * n + 1.6), max(2.6, 1.0 * top + 1.9)
    longest = max((len(name) for name in leaves), default=1)
    fontsize = fit_fontsize(longest, 0.85, largest=9.0)
    with style():
        fig = new_figure(width, height)
        ax = fig.add_axes((0.04, 0.14, 0.92, 0.74))
        for node, x, y, spots in placed:
            _draw_node(ax, node, x, y, spots, fontsize, node is tree)
        ax.scatter(range(n), [0] * n, s=28, color=TRAIN, zorder=3)
        rotate = 30 if n > 8 or longest > 8 else 0
        for i, name in enumerate(leaves):
            ax.text(i, -0.22, name, rotation=rotate, ha="right" if rotate else "center", va="top", fontsize=fontsize)
        ax.set_xlim(-0.7, max(n - 0.3, 0.7))
        ax.set_ylim(-0.5, top + 0.55)
        ax.axis("off")
        kinds = sorted({node["kind"] for node, *_ in placed}, key=list(SYMBOLS).index)
        legend = "   ".join(f"{SYMBOLS[k]} {MEANING[k]}" for k in kinds) or "one input: nothing to split"
        if threshold is not None and kinds:
            legend += f"   (split / sym scores hold below {threshold:g})"
        fig.text(0.5, 0.04, legend, ha="center", va="bottom", fontsize=7.5, color="0.3")
        ax.set_title(title)
        return save_figure(fig, path_stem, formats)
