"""Chart-style figures of a run: loss curve, input attribution, predicted vs true, Pareto front.

Each function takes plain data (lists, arrays, tensors, data frames) rather than run files, so it
serves ``fit``, ``explain`` and notebooks alike. ``draw_*`` returns the figure (a notebook shows it);
``plot_*`` draws and writes it, and returns the paths it wrote.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kandisc.metrics import r2_score
from kandisc.metrics import rmse as rmse_of
from kandisc.plots.style import log_axis, new_figure, save_figure, style, text_width

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRAIN, TEST, BEST, GREY = "#1f5fa8", "#d1495b", "#d1495b", "#a8a8a8"


def _array(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float)


# ----- loss ------------------------------------------------------------------------------------
def _loss_frame(metrics):
    import pandas as pd

    frame = metrics.copy() if isinstance(metrics, pd.DataFrame) else pd.DataFrame(list(metrics))
    missing = [c for c in ("step", "stage", "train_loss") if c not in frame.columns]
    if missing:
        raise ValueError(f"metrics lack column(s) {', '.join(missing)}")
    if "test_loss" not in frame.columns:
        frame["test_loss"] = np.nan
    frame = frame.reset_index(drop=True)
    frame["stage"] = frame["stage"].astype(str)
    return frame


def global_steps(steps: np.ndarray, stages: Sequence[str]) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Steps counted across stages, and (first row, name) of each run of consecutive equal stages.

    Steps that already increase through the table are kept; steps restarting in every stage are
    shifted to continue where the previous stage ended.
    """
    steps = np.asarray(steps, dtype=float)
    runs = [(0, stages[0])] if len(stages) else []
    runs += [(r, stages[r]) for r in range(1, len(stages)) if stages[r] != stages[r - 1]]
    if len(steps) < 2 or bool(np.all(np.diff(steps) >= 0)):
        return steps, runs
    x = steps.copy()
    bounds = [r for r, _ in runs] + [len(steps)]
    for start, end in zip(bounds[1:-1], bounds[2:], strict=True):
        prev = x[start - 1]
        delta = float(np.median(np.diff(steps[:start]))) if start > 1 else 1.0
        x[start:end] = prev + max(delta, 1.0) + (steps[start:end] - steps[start])
    return x, runs


STAGE_FONT = 7.5  # the stage names above the loss curve


def plot_loss(metrics, path_stem: Path | str, formats: Sequence[str] = ("png",)) -> list[Path]:
    """:func:`draw_loss`, written as ``path_stem.<fmt>``."""
    return save_figure(draw_loss(metrics), path_stem, formats)


def draw_loss(metrics) -> Figure:
    """Train and test loss against the global step (log y), with the stage boundaries marked.

    ``metrics``: list of dicts or a data frame with columns step, stage, train_loss (test_loss
    optional), one row per logged step in run order, as in ``metrics.csv``.
    """
    frame = _loss_frame(metrics)
    if frame.empty:
        raise ValueError("metrics have no rows to plot")
    x, runs = global_steps(frame["step"].to_numpy(), list(frame["stage"]))
    width, height, left = 7.0, 4.0, 0.8
    # Margins in inches, computed (a layout engine measures every tick label twice, which costs
    # more than drawing the figure): the y labels on the left, the slanted stage names above
    # (30°: sin 0.5, cos 0.87), and on the right whatever of the last stage's name overhangs
    # the end of the curve.
    names = [text_width(len(name), STAGE_FONT) for _, name in runs]
    top = 0.1 + 0.5 * max(names, default=0.0) + STAGE_FONT / 72
    right = 0.2
    if runs and len(x) > 1 and x[-1] > x[0]:
        span = x[-1] - x[0]
        at = (x[runs[-1][0]] - x[0] + 0.05 * span) / (1.1 * span)  # matplotlib's 5 % margins
        right = min(max(0.87 * names[-1] - (1 - at) * (width - left - 0.2) + 0.05, 0.2), 2.0)
    with style():
        fig = new_figure(width, height)
        fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=0.55 / height, top=1 - top / height)
        ax = fig.add_subplot()
        for column, colour, label in (("train_loss", TRAIN, "train"), ("test_loss", TEST, "test")):
            y = _array(frame[column].to_numpy())
            y = np.where(y > 0, y, np.nan)  # log scale: non-positive values cannot be shown
            if np.isfinite(y).any():
                ax.plot(x, y, color=colour, linewidth=1.4, label=label)
        ax.set_yscale("log")
        log_axis(ax.yaxis)
        ax.set_xlabel("step (all stages)")
        ax.set_ylabel("loss")
        _mark_stages(ax, x, runs)
        ax.legend(loc="best", frameon=False)
        return fig


def _mark_stages(ax, x: np.ndarray, runs: list[tuple[int, str]]) -> None:
    """Dashed lines between stages; stage names above the plot, slanted so short stages fit."""
    transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
    for k, (row, name) in enumerate(runs):
        edge = x[row] - 0.5 if k else x[row]
        if k:
            ax.axvline(edge, color="0.45", linestyle="--", linewidth=0.8)
        ax.text(
            edge,
            1.01,
            name,
            transform=transform,
            rotation=30,
            rotation_mode="anchor",
            ha="left",
            va="bottom",
            fontsize=STAGE_FONT,
            color="0.25",
            parse_math=False,
        )


# ----- attribution -----------------------------------------------------------------------------
def plot_attribution(
    input_names: Sequence[str],
    scores,
    path_stem: Path | str,
    formats: Sequence[str] = ("png",),
    pruned_inputs: Sequence = (),
) -> list[Path]:
    """:func:`draw_attribution`, written as ``path_stem.<fmt>``."""
    return save_figure(draw_attribution(input_names, scores, pruned_inputs), path_stem, formats)


def draw_attribution(input_names: Sequence[str], scores, pruned_inputs: Sequence = ()) -> Figure:
    """Input importances as horizontal bars, highest on top; pruned inputs grey and marked.

    ``pruned_inputs`` holds names (or indices) of inputs the prune stage removed.
    """
    names = [str(n) for n in input_names]
    values = np.nan_to_num(_array(scores).reshape(-1))
    if len(values) != len(names):
        raise ValueError(f"{len(names)} input names but {len(values)} scores")
    pruned = {names[p] if isinstance(p, int | np.integer) else str(p) for p in pruned_inputs}
    order = np.argsort(-values, kind="stable")
    labels = [names[i] + (" (pruned)" if names[i] in pruned else "") for i in order]
    colours = [GREY if names[i] in pruned else TRAIN for i in order]
    n = len(names)
    fontsize = 8.0 if n <= 30 else max(6.0, 8.0 - (n - 30) / 15)
    height = 1.1 + max(n, 2) * max(0.2, fontsize / 72 * 1.7)
    width = 6.5
    left = min(0.25 + text_width(max((len(label) for label in labels), default=1), fontsize), 0.6 * width)
    with style():
        fig = new_figure(width, height)
        fig.subplots_adjust(left=left / width, right=1 - 0.25 / width, bottom=0.45 / height, top=1 - 0.4 / height)
        ax = fig.add_subplot()
        y = np.arange(n)[::-1]
        ax.barh(y, values[order], color=colours, height=0.7)
        ax.set_yticks(y, labels, fontsize=fontsize)
        for tick, colour in zip(ax.get_yticklabels(), colours, strict=True):
            tick.set_color("0.45" if colour == GREY else "black")
        ax.set_ylim(-0.6, n - 0.4)
        top = float(values.max(initial=0.0)) or 1.0
        ax.set_xlim(0, top * 1.18)
        for yy, v in zip(y, values[order], strict=True):
            ax.text(v + top * 0.01, yy, f"{v:.3g}", va="center", fontsize=min(fontsize, 7.5), color="0.25")
        ax.set_xlabel("attribution score")
        ax.set_title("Input importance")
        return fig


# ----- predicted vs true -----------------------------------------------------------------------
def _panels(count: int, size: float = 3.3):
    cols = min(count, 3)
    rows = math.ceil(count / cols)
    return rows, cols, (cols * size, rows * size + 0.2)


def panel_margins(fig, rows: int, cols: int, left: float, right: float, top: float, bottom: float) -> dict:
    """``gridspec_kw`` for a rows × cols grid of panels, each with ``left``, ``right``, ``top`` and
    ``bottom`` inches of room around it for its labels. Computed instead of using a layout engine,
    which measures every tick label twice and costs more than drawing the figure."""
    width, height = fig.get_size_inches()
    panel_w = (width - cols * (left + right)) / cols
    panel_h = (height - rows * (top + bottom)) / rows
    return {
        "left": left / width,
        "right": 1 - right / width,
        "bottom": bottom / height,
        "top": 1 - top / height,
        "wspace": (left + right) / panel_w,
        "hspace": (top + bottom) / panel_h,
    }


def plot_pred_vs_true(
    y_true,
    y_pred,
    target_names: Sequence[str],
    path_stem: Path | str,
    formats: Sequence[str] = ("png",),
    sources: Sequence[str] | None = None,
) -> list[Path]:
    """:func:`draw_pred_vs_true`, written as ``path_stem.<fmt>``."""
    return save_figure(draw_pred_vs_true(y_true, y_pred, target_names, sources), path_stem, formats)


def draw_pred_vs_true(y_true, y_pred, target_names: Sequence[str], sources: Sequence[str] | None = None) -> Figure:
    """One panel per target: predictions against truth with the y = x line, R² and RMSE.

    ``sources`` names what predicted each target (e.g. "formula" or "network"), shown in the title.
    """
    t_all, p_all = _array(y_true), _array(y_pred)
    t_all = t_all.reshape(len(t_all), -1)
    p_all = p_all.reshape(len(p_all), -1)
    names = [str(n) for n in target_names]
    if t_all.shape != p_all.shape or t_all.shape[1] != len(names):
        raise ValueError(f"y_true {t_all.shape}, y_pred {p_all.shape} and {len(names)} target names disagree")
    rows, cols, size = _panels(len(names))
    with style():
        fig = new_figure(*size)
        # left: a 7-character tick label (ScalarFormatter goes scientific beyond) and the y label
        room = panel_margins(fig, rows, cols, left=0.85, right=0.15, top=0.35, bottom=0.5)
        axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw=room).ravel()
        for k, name in enumerate(names):
            ok = np.isfinite(t_all[:, k]) & np.isfinite(p_all[:, k])
            title = name if sources is None else f"{name} ({sources[k]})"
            _pred_panel(axes[k], t_all[ok, k], p_all[ok, k], title)
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        return fig


def _pred_panel(ax, t: np.ndarray, p: np.ndarray, name: str) -> None:
    r2, rmse = r2_score(t, p), rmse_of(t, p)
    ax.scatter(t, p, s=7, alpha=0.55, color=TRAIN, linewidths=0, rasterized=len(t) > 5000)
    both = np.concatenate([t, p]) if len(t) else np.array([0.0, 1.0])
    lo, hi = float(both.min()), float(both.max())
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color=TEST, linestyle="--", linewidth=1.0)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(_fit_title(name, 3.0), fontsize=9.5)
    ax.text(
        0.04,
        0.96,
        f"R² = {r2:.4g}\nRMSE = {rmse:.3g}\nn = {len(t)}",
        transform=ax.transAxes,
        va="top",
        ha="left",
        fontsize=8,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.8"},
    )


def _fit_title(name: str, inches: float, fontsize: float = 9.5) -> str:
    chars = max(4, int(inches / text_width(1, fontsize)))
    return name if len(name) <= chars else name[: chars - 1] + "…"


# ----- Pareto front ----------------------------------------------------------------------------
_FLOAT = re.compile(r"\d+\.\d+(?:[eE][-+]?\d+)?")
PARETO_PANEL = 4.6  # inches per target: 690 px at 150 dpi
PARETO_FONT = 7.0
PARETO_ROW = 3.3  # inches of a panel with its title and axis labels, above its formula table
FLAT_SPREAD = 1.5  # best/worst RMSE closer than this is not a trade-off worth a slope


def short_formula(expr: str, limit: int = 32) -> str | None:
    """A display form of a sympy string (3 significant digits, ^ for powers), or None if too long."""
    text = _FLOAT.sub(lambda m: f"{float(m.group()):.3g}", str(expr)).replace("**", "^").replace(" ", "")
    return text if len(text) <= limit else None


def plot_pareto(
    candidates: Mapping[str, Sequence[Mapping]], path_stem: Path | str, formats: Sequence[str] = ("png",)
) -> list[Path]:
    """:func:`draw_pareto`, written as ``path_stem.<fmt>``."""
    return save_figure(draw_pareto(candidates), path_stem, formats)


def draw_pareto(candidates: Mapping[str, Sequence[Mapping]]) -> Figure:
    """Per target: test RMSE (log) against complexity of the candidate formulas, best one highlighted.

    ``candidates``: target -> list of dicts with complexity, test_rmse, sympy, is_best. Points are
    numbered in order of complexity and the table under each panel gives every number's formula,
    so long formulas never crowd the axes. A spread of test RMSE below a factor of
    ``FLAT_SPREAD`` is drawn on a decade-wide axis and labelled as no trade-off.
    """
    targets = list(candidates)
    if not targets:
        raise ValueError("no targets to plot a Pareto front for")
    cols = min(len(targets), 3)
    rows = math.ceil(len(targets) / cols)
    points = {t: _pareto_points(candidates[t]) for t in targets}
    width = PARETO_PANEL * cols
    chars = int((PARETO_PANEL - 0.5) / (1.2 * text_width(1, PARETO_FONT)))  # monospace runs ~1.2x wider
    tables = {t: _pareto_table(points[t], chars) for t in targets}
    table_h = [max(len(tables[t]) for t in targets[r * cols : (r + 1) * cols]) * PARETO_FONT / 72 * 1.5 + 0.3
               for r in range(rows)]  # fmt: skip
    height = sum(PARETO_ROW + h for h in table_h)
    with style():
        fig = new_figure(width, height)
        # Each target's row: its panel (room for the title above and the axis labels around it)
        # over its formula table, placed in inches (a layout engine costs more than the drawing).
        row_tops = [height - sum(PARETO_ROW + h for h in table_h[:r]) for r in range(rows)]
        for k, target in enumerate(targets):
            r, c = divmod(k, cols)
            left, top = c * PARETO_PANEL, row_tops[r]
            panel = (left + 0.75, top - PARETO_ROW + 0.5, PARETO_PANEL - 0.95, PARETO_ROW - 0.85)
            table = (left + 0.15, top - PARETO_ROW - table_h[r], PARETO_PANEL - 0.3, table_h[r])
            _pareto_panel(fig.add_axes(_fraction(panel, width, height)), target, points[target])
            _pareto_listing(fig.add_axes(_fraction(table, width, height)), tables[target])
        return fig


def _fraction(box: tuple[float, float, float, float], width: float, height: float) -> tuple[float, ...]:
    """(left, bottom, width, height) in inches as fractions of a ``width`` × ``height`` figure."""
    return box[0] / width, box[1] / height, box[2] / width, box[3] / height


def _pareto_points(cands: Sequence[Mapping]):
    pts = []
    for c in cands:
        rmse = c.get("test_rmse")
        if rmse is None or not math.isfinite(float(rmse)):
            continue
        pts.append((float(c["complexity"]), float(rmse), str(c.get("sympy", "")), bool(c.get("is_best"))))
    pts.sort(key=lambda p: (p[0], p[1]))
    positive = [p[1] for p in pts if p[1] > 0]
    floor = min(positive) * 0.1 if positive else 1e-12  # an exact fit still shows on a log axis
    return [(c, max(r, floor), s, b) for c, r, s, b in pts]


def _pareto_table(pts, chars: int) -> list[tuple[str, bool]]:
    """Lines of the formula table under a panel: ``3  c=11  RMSE 8.9e-17  2*x + ...`` (wrapped)."""
    import textwrap

    lines = []
    for k, (c, r, expr, best) in enumerate(pts, 1):
        head = f"{'★' if best else ' '}{k:>2}  c={c:g}  RMSE {r:.2g}  "
        text = short_formula(expr, 10_000) or expr
        wrapped = textwrap.wrap(text, max(chars - len(head), 12), break_on_hyphens=False) or [""]
        lines.append((head + wrapped[0], best))
        lines += [(" " * len(head) + more, best) for more in wrapped[1:]]
    return lines


def _pareto_listing(ax, lines: list[tuple[str, bool]]) -> None:
    ax.set_axis_off()
    for n, (line, best) in enumerate(lines):  # fixed line pitch in points, whatever the axes' height
        ax.annotate(
            line, (0.0, 1.0), xycoords="axes fraction", xytext=(0, -n * PARETO_FONT * 1.45),
            textcoords="offset points", ha="left", va="top", family="monospace", fontsize=PARETO_FONT,
            color=BEST if best else "0.2", fontweight="bold" if best else "normal", parse_math=False,
            annotation_clip=False,
        )  # fmt: skip


def _pareto_panel(ax, target: str, pts) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title(_fit_title(target, PARETO_PANEL - 0.6), fontsize=9.5)
    ax.set_xlabel("complexity")
    ax.set_ylabel("test RMSE")
    if not pts:
        ax.text(0.5, 0.5, "no candidates", transform=ax.transAxes, ha="center", va="center", color="0.4")
        return
    cx = np.array([p[0] for p in pts])
    ry = np.array([p[1] for p in pts])
    ax.step(cx, ry, where="post", color="0.6", linewidth=0.8, zorder=1)
    ax.scatter(cx, ry, s=18, color=TRAIN, zorder=2)
    ax.set_yscale("log")
    log_axis(ax.yaxis)
    for k, (c, r, _, best) in enumerate(pts, 1):
        if best:
            ax.scatter([c], [r], s=140, marker="*", color=BEST, zorder=3, label="chosen")
        ax.annotate(
            str(k), (c, r), xytext=(5, 4), textcoords="offset points", fontsize=8, parse_math=False,
            color=BEST if best else "0.2", fontweight="bold" if best else "normal", annotation_clip=False,
        )  # fmt: skip
    if cx.min() == cx.max():  # a single complexity: give the axis integer room on both sides
        ax.set_xlim(cx.min() - 1, cx.max() + 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.margins(x=0.12, y=0.25)
    lo, hi = float(ry.min()), float(ry.max())
    if hi / lo < FLAT_SPREAD:  # log autoscaling would blow a 0.02 % difference up into a slope
        centre = math.sqrt(lo * hi)
        ax.set_ylim(centre / math.sqrt(10), centre * math.sqrt(10))
        if len(pts) > 1:
            ax.text(
                0.5, 0.06, f"test RMSE differs by {100 * (hi - lo) / lo:.2g} %: no trade-off",
                transform=ax.transAxes, ha="center", fontsize=7.5, color="0.35",
            )  # fmt: skip
    if any(p[3] for p in pts):
        ax.legend(loc="upper right", frameon=False)
