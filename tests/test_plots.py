"""Tests for kandisc.plots: every figure shows what it should (axes, titles, labels, marks, pixels)
and is written in each format, atomically and deterministically."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from kandisc.model import ModelSpec, MultKAN
from kandisc.plots import (
    curves,
    network,
    plot_attribution,
    plot_loss,
    plot_network,
    plot_pareto,
    plot_pred_vs_true,
    style,
)
from kandisc.plots.curves import global_steps, short_formula
from kandisc.plots.network import _edge_states, _labels, _layout
from kandisc.plots.style import check_formats, save_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class FakeAttribution:
    node_scores: list[torch.Tensor]
    edge_scores: list[torch.Tensor]
    subnode_scores: list[torch.Tensor]

    @property
    def input_scores(self) -> torch.Tensor:
        return self.node_scores[0]


def fake_attribution(model: MultKAN, seed: int = 0) -> FakeAttribution:
    gen = torch.Generator().manual_seed(seed)
    spec = model.spec
    nodes = [torch.rand(spec.nodes(layer), generator=gen) for layer in range(spec.depth + 1)]
    edges = [torch.rand(spec.nodes(layer), spec.subnodes(layer + 1), generator=gen) for layer in range(spec.depth)]
    subs = [torch.rand(spec.subnodes(layer + 1), generator=gen) for layer in range(spec.depth)]
    return FakeAttribution(nodes, edges, subs)


def make_model(width, rows: int = 64, **kwargs) -> tuple[MultKAN, torch.Tensor]:
    model = MultKAN(ModelSpec.build(width=width, **kwargs))
    x = torch.rand(rows, model.spec.n_inputs, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return model, 2 * x - 1


@pytest.fixture
def figures(monkeypatch) -> list:
    """Every Figure the plot functions save, in order, so tests can look inside them."""
    saved = []

    def keep(fig, *args, **kwargs):
        saved.append(fig)
        return save_figure(fig, *args, **kwargs)

    monkeypatch.setattr(curves, "save_figure", keep)
    monkeypatch.setattr(network, "save_figure", keep)
    return saved


def texts(fig) -> list[str]:
    """Every piece of text drawn on ``fig``: titles, axis labels, tick labels, annotations, legends."""
    return [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def assert_png_content(path: Path, fig=None) -> None:
    """A PNG of the figure's size (150 dpi) with something drawn on it (not a blank canvas)."""
    from matplotlib.image import imread

    image = imread(path)
    height, width = image.shape[:2]
    assert width >= 150 and height >= 150
    if fig is not None:
        want_w, want_h = fig.get_size_inches() * style.PNG_DPI
        assert abs(width - want_w) <= 2 and abs(height - want_h) <= 2
    ink = (image[..., :3] < 0.9).any(-1)  # pixels that are not (near) white
    assert 0.005 < ink.mean() < 0.9


def assert_written(paths: list[Path], formats: tuple[str, ...], fig=None) -> None:
    assert [p.suffix[1:] for p in paths] == list(formats)
    for path in paths:
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(PNG_MAGIC)
            assert_png_content(path, fig)
        elif path.suffix == ".pdf":
            assert data.startswith(b"%PDF")
        else:
            assert b"<svg" in data[:2000]
    leftovers = [p.name for p in paths[0].parent.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert leftovers == []


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, kandisc.plots; print('matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_network_plain_model(tmp_path: Path, figures) -> None:
    model, x = make_model([2, 5, 1])
    paths = plot_network(model, x, fake_attribution(model), ["a", "b"], ["f"], tmp_path / "fig" / "network")
    (fig,) = figures
    assert_written(paths, ("png",), fig)
    assert {"a", "b", "f"} <= set(texts(fig))
    (ax,) = fig.axes
    assert not ax.axison and len(ax.collections) >= 3  # edge lines, curve boxes, nodes
    curves_drawn = [c for c in ax.collections if len(getattr(c, "get_segments", list)()) >= 15]
    assert curves_drawn, "the 15 edges' curves are missing"


def test_network_without_attribution_or_names(tmp_path: Path) -> None:
    model, x = make_model([3, 2])
    assert_written(plot_network(model, x.float(), None, path_stem=tmp_path / "n"), ("png",))


def test_network_mult_symbolic_and_removed_edges(tmp_path: Path, figures) -> None:
    model, x = make_model([2, [3, 2], 1])
    model.set_symbolic(0, 0, 1, "sin", [2.0, 0.0, 1.0, 0.0])
    model.remove_edge(0, 1, 2)
    states = _edge_states(model)
    assert states[0][0, 1] == 2 and states[0][1, 2] == 0 and states[0][0, 0] == 1
    lay = _layout(model, states, ["t", "p"], ["e"])
    assert len(lay.boxes[0]) == 2 * 7 - 1  # 7 subnodes (3 sums + 2×2 factors), one edge removed
    assert len(lay.subnodes[1]) == 7 and len(lay.nodes[1]) == 5
    formats = ("png", "pdf", "svg")
    paths = plot_network(
        model,
        x,
        fake_attribution(model),
        ["temperature", "pressure"],
        ["energy"],
        tmp_path / "network",
        formats,
    )
    assert_written(paths, formats)
    drawn = texts(figures[0])
    assert "1: sin" in drawn and drawn.count("×") == 2  # the numbered symbolic edge, the two mult nodes
    assert {"temperature", "pressure", "energy"} <= set(drawn)
    legend = next(t for t in drawn if t.startswith("symbolic edges"))
    assert " 1  temperature → sin(2*temperature)" in legend.splitlines()  # its fitted form, by number


def test_network_title_legend_and_size(tmp_path: Path, figures) -> None:
    """The figure a person opens: the formula on top, each snapped edge's form beside it, >= 900 px."""
    model, x = make_model([2, 2, 1])
    model.set_symbolic(0, 0, 0, "sin", [math.pi, 0.0, 1.0, 0.0])
    model.set_symbolic(0, 1, 1, "x^2", [1.0, 0.0, 0.5, 0.0])
    title = "f = sin(π*speed_m_s) + 0.5*θ^2"
    notes = ["symbols: speed_m_s = 'speed (m/s)'"]
    path = plot_network(model, x, None, ["speed_m_s", "θ"], ["f"], tmp_path / "n", title=title, notes=notes)[0]
    drawn = texts(figures[0])
    assert title in drawn and notes[0] in drawn
    legend = next(t for t in drawn if t.startswith("symbolic edges")).splitlines()[1:]
    assert legend == [" 1  speed_m_s → sin(π*speed_m_s)", " 2  θ → 0.5*θ^2"]
    assert {"1: sin", "2: x^2"} <= set(drawn)
    assert_png_content(path, figures[0])
    from matplotlib.image import imread

    height, width = imread(path).shape[:2]
    assert width >= 900 and height >= 450
    renderer = figures[0].canvas.get_renderer()
    box = figures[0].bbox
    for text in figures[0].texts:  # title, note and legend all inside the canvas, nothing clipped
        extent = text.get_window_extent(renderer)
        assert extent.x0 >= box.x0 - 1 and extent.x1 <= box.x1 + 1 and extent.y1 <= box.y1 + 1


def test_network_exploding_symbolic_edge_and_empty_layer(tmp_path: Path) -> None:
    model, x = make_model([2, 3, 1])
    model.set_symbolic(0, 0, 0, "1/x", [1.0, 0.0, 1.0, 0.0])  # infinite at x = 0 if sampled there
    for j in range(3):
        model.remove_edge(1, j, 0)
    assert_written(plot_network(model, x, None, path_stem=tmp_path / "n"), ("png",))


def test_network_many_inputs_rotates_labels(tmp_path: Path) -> None:
    model, x = make_model([40, 2, 1], rows=32)
    names = [f"a_long_column_name_{i}" for i in range(40)]
    labels = _labels(names, 0.2)
    assert labels.rotation == 90 and labels.fontsize >= 6
    assert_written(plot_network(model, x, fake_attribution(model), names, ["y"], tmp_path / "n"), ("png",))


def test_network_rejects_wrong_names(tmp_path: Path) -> None:
    model, x = make_model([2, 1])
    with pytest.raises(ValueError, match="input_names"):
        plot_network(model, x, None, ["only_one"], None, tmp_path / "n")


def test_network_10_10_10_1_is_fast(tmp_path: Path) -> None:
    model, x = make_model([10, 10, 10, 1], rows=128)
    start = time.perf_counter()
    paths = plot_network(model, x, fake_attribution(model), None, None, tmp_path / "big")
    elapsed = time.perf_counter() - start
    print(f"[10,10,10,1] network plot: {elapsed:.2f} s")
    assert_written(paths, ("png",))
    assert elapsed < 20.0


def test_global_steps_continue_across_stages() -> None:
    stages = ["fit"] * 3 + ["prune"] * 2 + ["refine G=10"] * 2
    x, runs = global_steps(np.array([0, 1, 2, 0, 1, 0, 1]), stages)
    assert list(x) == [0, 1, 2, 3, 4, 5, 6]
    assert runs == [(0, "fit"), (3, "prune"), (5, "refine G=10")]
    x, _ = global_steps(np.array([0, 10, 20, 30]), ["fit", "fit", "prune", "prune"])
    assert list(x) == [0, 10, 20, 30]  # already global: kept


def test_plot_loss_with_stages(tmp_path: Path, figures) -> None:
    rows = [
        {"step": s, "stage": stage, "train_loss": 0.5 / (s + 1), "test_loss": 0.6 / (s + 1)}
        for stage in ("fit", "prune", "refine G=10")
        for s in range(10)
    ]
    rows[0]["test_loss"] = float("nan")
    paths = plot_loss(rows, tmp_path / "loss", ["png", "pdf"])
    (fig,) = figures
    assert_written(paths, ("png", "pdf"), fig)
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("step (all stages)", "loss")
    assert ax.get_yscale() == "log"
    labels = [line.get_label() for line in ax.get_legend().get_lines()]
    assert any("train" in t for t in labels) and any("test" in t for t in labels)
    assert {"prune", "refine G=10"} <= set(texts(fig))  # stage boundaries are labelled
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(rows).drop(columns="test_loss")
    assert_written(plot_loss(frame, tmp_path / "loss2"), ("png",))
    with pytest.raises(ValueError, match="train_loss"):
        plot_loss([{"step": 0, "stage": "fit"}], tmp_path / "bad")


def test_plot_attribution_many_inputs_and_pruned(tmp_path: Path, figures) -> None:
    names = [f"sensor_{i}" for i in range(25)]
    scores = torch.rand(25, generator=torch.Generator().manual_seed(0))
    paths = plot_attribution(names, scores, tmp_path / "attr", ["png", "svg"], pruned_inputs=["sensor_3", 4])
    (fig,) = figures
    assert_written(paths, ("png", "svg"), fig)
    (ax,) = fig.axes
    assert ax.get_title() == "Input importance" and ax.get_xlabel() == "attribution score"
    assert len(ax.patches) == 25  # one bar per input
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert set(names) <= {t.split(" ")[0] for t in ticks}
    with pytest.raises(ValueError, match="scores"):
        plot_attribution(names, scores[:3], tmp_path / "bad")


def test_plot_pred_vs_true(tmp_path: Path, figures) -> None:
    from kandisc.metrics import r2_score

    rng = np.random.default_rng(0)
    truth = rng.normal(size=(50, 2))
    pred = truth + 0.1 * rng.normal(size=(50, 2))
    paths = plot_pred_vs_true(truth, pred, ["e", "p"], tmp_path / "pvt")
    assert_written(paths, ("png",), figures[0])
    panels = [ax for ax in figures[0].axes if ax.get_visible() and ax.collections]
    assert [ax.get_title() for ax in panels] == ["e", "p"]
    assert all((ax.get_xlabel(), ax.get_ylabel()) == ("true", "predicted") for ax in panels)
    assert len(panels[0].collections[0].get_offsets()) == 50
    r2 = f"R² = {r2_score(truth[:, 0], pred[:, 0]):.4g}"
    assert any(t.startswith(r2) for t in texts(figures[0]))
    assert_written(plot_pred_vs_true(truth[:, 0], pred[:, 0], ["e"], tmp_path / "one"), ("png",))
    with pytest.raises(ValueError, match="disagree"):
        plot_pred_vs_true(truth, pred, ["e"], tmp_path / "bad")


def test_plot_pareto(tmp_path: Path, figures) -> None:
    cands = {
        "f": [
            {"complexity": 1, "test_rmse": 0.5, "sympy": "0.5*x0", "is_best": False},
            {"complexity": 4, "test_rmse": 1e-3, "sympy": "1.000001*x0**2 + 0.3*x1", "is_best": True},
            {
                "complexity": 9,
                "test_rmse": 0.0,
                "sympy": "x0**2 + 0.3*x1 + 1e-9*sin(x2)" * 3,
                "is_best": False,
            },
        ],
        "g": [{"complexity": 2, "test_rmse": None, "sympy": "x0", "is_best": True}],
    }
    assert_written(plot_pareto(cands, tmp_path / "pareto", ["png", "pdf"]), ("png", "pdf"), figures[0])
    panels = [ax for ax in figures[0].axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["f", "g"]
    assert (panels[0].get_xlabel(), panels[0].get_ylabel()) == ("complexity", "test RMSE")
    assert "no candidates" in texts(figures[0])  # g has no finite RMSE
    assert short_formula("1.0000012*x0**2 + 0.29999*x1") == "1*x0^2+0.3*x1"
    assert short_formula("x" * 40) is None


def _overlaps(boxes) -> bool:
    return any(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1 :])


def test_pareto_long_formulas_are_numbered_and_listed(tmp_path: Path, figures) -> None:
    """Long formulas go into a numbered table under the axes; tick labels never run together."""
    long = "0.123456789*exp(0.98765*sin(3.14159*x0) + 1.0000021*x1**2) + 0.000123*x2*cos(2.3*x3 + 0.1)"
    cands = {
        "f": [{"complexity": 5 * k, "test_rmse": 10.0**-k, "sympy": long * k, "is_best": k == 3} for k in range(1, 6)]
    }
    path = plot_pareto(cands, tmp_path / "pareto")[0]
    fig = figures[0]
    plot_ax = next(ax for ax in fig.axes if ax.get_title() == "f")
    assert plot_ax.get_yscale() == "log"
    labels = [t.get_text() for t in plot_ax.texts]
    assert labels == ["1", "2", "3", "4", "5"]  # the points carry numbers, not formulas
    listing = [t.get_text() for ax in fig.axes if ax is not plot_ax for t in ax.texts]
    assert listing[0].startswith("  1  c=5  RMSE 0.1  0.123*exp(")
    assert sum(line.startswith("★ 3") for line in listing) == 1  # the chosen one is starred
    assert "".join(line.strip() for line in listing).count("0.123*exp") == 15  # every formula, whole
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    ticks = [t.get_window_extent(renderer) for t in plot_ax.get_xticklabels() if t.get_text()]
    assert len(ticks) >= 3 and not _overlaps(ticks)
    for t in (t for ax in fig.axes for t in ax.texts):
        assert t.get_window_extent(renderer).x1 <= fig.bbox.x1 + 1  # no line runs off the figure
    assert_png_content(path, fig)


def test_pareto_tiny_spread_is_not_drawn_as_a_trade_off(tmp_path: Path, figures) -> None:
    cands = {"f": [{"complexity": k, "test_rmse": 0.1 * (1 + 2e-4 * k), "sympy": "x", "is_best": k == 1}
                   for k in (1, 4, 9)]}  # fmt: skip
    plot_pareto(cands, tmp_path / "pareto")
    ax = next(ax for ax in figures[0].axes if ax.get_title() == "f")
    lo, hi = ax.get_ylim()
    assert hi / lo >= 9.9  # a decade: the 0.16 % spread looks flat, as it is
    assert any("no trade-off" in t.get_text() for t in ax.texts)


def test_formats_and_determinism(tmp_path: Path) -> None:
    assert check_formats(["PNG", "svg", "png"]) == ["png", "svg"]
    with pytest.raises(ValueError, match="jpeg"):
        check_formats(["jpeg"])
    rows = [{"step": s, "stage": "fit", "train_loss": 1 / (s + 1)} for s in range(5)]
    first = [p.read_bytes() for p in plot_loss(rows, tmp_path / "a", ["pdf", "svg"])]
    second = [p.read_bytes() for p in plot_loss(rows, tmp_path / "b", ["pdf", "svg"])]
    assert first == second


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    class Broken:
        def savefig(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_figure(Broken(), tmp_path / "x", ["png"])
    assert list(tmp_path.iterdir()) == []


def assert_text_inside(fig) -> None:
    """Everything drawn on ``fig`` (titles, axis and tick labels, annotations) lies on the figure:
    the margins computed in inches leave room for all of it."""
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    drawn = fig.get_tightbbox(renderer)  # inches; only what is drawn (ticks in view)
    width, height = fig.get_size_inches()
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, (fig.axes[0].get_title(), drawn.bounds)
    assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, (fig.axes[0].get_title(), drawn.bounds)


def test_chart_labels_fit_on_their_figures_and_log_ticks_are_plain_text(tmp_path: Path, figures) -> None:
    stages = ("fit 1", "fit 2 (after prune)", "fit 4 (after refine G=10)", "symbolic tune and a long name")
    rows = [{"step": s, "stage": st, "train_loss": 10.0 ** -(s + 3 * k), "test_loss": 2e-3} for k, st in
            enumerate(stages) for s in range(6)]  # fmt: skip
    plot_loss(rows, tmp_path / "loss")
    names = ["a_rather_long_input_name_of_a_sensor", "x", "y (pruned here)"]
    plot_attribution(names, [0.9, 0.1, 0.0], tmp_path / "attribution", pruned_inputs=[2])
    truth = np.random.default_rng(1).normal(size=(30, 4)) * 1e4
    plot_pred_vs_true(truth, truth * 1.01, ["energy", "momentum", "q", "p"], tmp_path / "pvt")
    cands = {t: [{"complexity": c, "test_rmse": 10.0**-c, "sympy": f"x0**{c}", "is_best": c == 3} for c in (1, 3, 8)]
             for t in ("f", "g")}  # fmt: skip
    plot_pareto(cands, tmp_path / "pareto")
    assert len(figures) == 4
    for fig in figures:
        assert_text_inside(fig)
    loss_ax = figures[0].axes[0]
    ticks = [t.get_text() for t in loss_ax.get_yticklabels() if t.get_text()]
    assert ticks and all("$" not in t for t in ticks)  # no mathtext to parse
    assert "10⁻⁶" in ticks
