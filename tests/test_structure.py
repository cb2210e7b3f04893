"""Hypothesis tests (kandisc.structure) on closed-form functions and on fitted MultKANs.

Known answers at input scales 1e-2, 1 and 1e2 with outputs rescaled too: every claimed
separation must be the true one (no false claim) and none may be missed. Functions whose shape
depends on the scale (a sine of x², say) are written in units of the scale, f(x) = c·F(x/s),
which is what a change of units is; polynomial ones are used literally.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import pytest
import torch

from kandisc.model import ModelSpec, MultKAN
from kandisc.structure import (
    THRESHOLD,
    check_general_separability,
    check_separability,
    check_symmetry,
    detect_structure,
    jet,
)
from kandisc.train import Dataset, TrainSettings, train

SCALES = [1e-2, 1.0, 1e2]
XYZ = ["x", "y", "z"]


def uniform(n_in, scale=1.0, rows=1000, seed=0, low=-1.0, high=1.0):
    gen = torch.Generator().manual_seed(seed)
    return scale * (low + (high - low) * torch.rand(rows, n_in, generator=gen, dtype=torch.float64))


def c(v, i):
    return v[:, i]


# name -> (F(x, s), n inputs, additive, multiplicative, tree)
CASES = {
    "x*y + z": (lambda v, s: c(v, 0) * c(v, 1) + c(v, 2), 3, [[0, 1], [2]], [[0, 1, 2]], [["x", "y"], "z"]),
    "x*exp(y)*z": (
        lambda v, s: c(v, 0) * torch.exp(c(v, 1) / s) * c(v, 2),
        3,
        [[0, 1, 2]],
        [[0], [1], [2]],
        ["x", "y", "z"],
    ),
    "sin(x^2 + y^2) + z": (
        lambda v, s: torch.sin((c(v, 0) ** 2 + c(v, 1) ** 2) / s**2) + c(v, 2) / s,
        3,
        [[0, 1], [2]],
        [[0, 1, 2]],
        [["x", "y"], "z"],
    ),
    "(x + y)*z": (lambda v, s: (c(v, 0) + c(v, 1)) * c(v, 2), 3, [[0, 1, 2]], [[0, 1], [2]], [["x", "y"], "z"]),
    "x + y + z": (lambda v, s: v.sum(1), 3, [[0], [1], [2]], [[0, 1, 2]], ["x", "y", "z"]),
    "sqrt(x^2 + y^2 + z^2)": (
        lambda v, s: torch.sqrt((v**2).sum(1) + 0.1 * s**2),
        3,
        [[0, 1, 2]],
        [[0, 1, 2]],
        ["x", "y", "z"],
    ),
    "sin(x + y*z)": (
        lambda v, s: torch.sin(c(v, 0) / s + c(v, 1) * c(v, 2) / s**2),
        3,
        [[0, 1, 2]],
        [[0, 1, 2]],
        ["x", ["y", "z"]],
    ),
    "y*(x + z)": (lambda v, s: c(v, 1) * (c(v, 0) + c(v, 2)), 3, [[0, 1, 2]], [[0, 2], [1]], [["x", "z"], "y"]),
    "exp(sin(pi x) + y^2)*z": (
        lambda v, s: torch.exp(torch.sin(math.pi * c(v, 0) / s) + (c(v, 1) / s) ** 2) * c(v, 2),
        3,
        [[0, 1, 2]],
        [[0], [1], [2]],
        ["x", "y", "z"],
    ),
    "sin(u) + z*u, u = x^2 + y^2": (
        lambda v, s: torch.sin((c(v, 0) ** 2 + c(v, 1) ** 2) / s**2) + c(v, 2) * (c(v, 0) ** 2 + c(v, 1) ** 2) / s**3,
        3,
        [[0, 1, 2]],
        [[0, 1, 2]],
        [["x", "y"], "z"],
    ),
    "x*y + z*w": (lambda v, s: c(v, 0) * c(v, 1) + c(v, 2) * c(v, 3), 4, [[0, 1], [2, 3]], [[0, 1, 2, 3]], None),
    "(x + y)*(z + w)": (
        lambda v, s: (c(v, 0) + c(v, 1)) * (c(v, 2) + c(v, 3)),
        4,
        [[0, 1, 2, 3]],
        [[0, 1], [2, 3]],
        None,
    ),
}
FOUR = ["x", "y", "z", "w"]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("name", list(CASES))
def test_known_structures_at_every_scale(name, scale):
    fn, n_in, additive, multiplicative, tree = CASES[name]
    names = XYZ if n_in == 3 else FOUR
    out_scale = 1e3 if scale < 1 else 1e-3  # the output's units change too
    found = detect_structure(lambda v: out_scale * fn(v, scale), uniform(n_in, scale), names)
    assert found.additive == additive
    assert found.multiplicative == multiplicative
    if tree is not None:
        assert found.tree.nested(names) == tree
    for group in found.symmetries:  # every reported symmetry is real: check it at another row set
        members = [names.index(n) for n in group["group"]]
        assert check_symmetry(jet(lambda v: fn(v, scale), uniform(n_in, scale, seed=9)), members).holds


def node_scores(node: dict) -> list[float]:
    """Every score and symmetry score in a tree_detail dict, depth first."""
    own = [node[key] for key in ("score", "symmetry") if key in node]
    return own + [s for child in node.get("children", []) for s in node_scores(child)]


@pytest.mark.parametrize("name", ["sin(u) + z*u, u = x^2 + y^2", "sin(x + y*z)", "(x + y)*z"])
def test_scores_do_not_depend_on_units(name):
    fn = CASES[name][0]
    reference = detect_structure(lambda v: fn(v, 1.0), uniform(3), XYZ).to_dict()
    for scale, out in [(1e-2, 1e4), (1e2, 1e-4)]:
        moved = detect_structure(lambda v, s=scale, o=out: o * fn(v, s), uniform(3, scale), XYZ).to_dict()
        for key in ("additive", "multiplicative"):
            assert moved["scores"][key] == pytest.approx(reference["scores"][key], rel=1e-6, abs=1e-12)
        assert moved["tree"] == reference["tree"]
        expected = pytest.approx(node_scores(reference["tree_detail"]), rel=1e-6, abs=1e-12)
        assert node_scores(moved["tree_detail"]) == expected


def test_one_hypothesis_at_a_time_with_its_score_and_threshold():
    the_jet = jet(lambda v: (c(v, 0) + c(v, 1)) * c(v, 2), uniform(3))
    additive = check_separability(the_jet, [[0, 1], [2]], "add")
    assert not additive.holds and additive.score > 10 * THRESHOLD and additive.threshold == THRESHOLD
    product = check_separability(the_jet, [[0, 1]], "mul")  # the unnamed input z is the other group
    assert product.holds and product.groups == [[0, 1], [2]] and product.score < 1e-8
    assert check_general_separability(the_jet, [[0, 1], [2]]).holds  # a product is h(p + q) too
    assert not check_general_separability(the_jet, [[0], [1], [2]]).holds  # but not of x | y | z
    assert check_symmetry(the_jet, [0, 1]).holds and not check_symmetry(the_jet, [0, 2]).holds
    with pytest.raises(ValueError, match="mode must be"):
        check_separability(the_jet, [[0]], "sum")


def test_an_input_the_function_ignores_is_its_own_group():
    found = detect_structure(lambda v: torch.exp(c(v, 0) * c(v, 2)), uniform(3), XYZ)
    assert found.additive == [[0, 2], [1]] and found.multiplicative == [[0, 2], [1]]
    assert found.tree.nested(XYZ) == [["x", "z"], "y"]


@pytest.mark.parametrize(
    "name,kinds",
    [
        ("sqrt(x^2 + y^2 + z^2)", ["general"]),
        ("x*exp(y)*z", ["mul"]),
        ("(x + y)*z", ["mul", "add"]),
        ("x*y + z", ["add", "general"]),
        ("sin(x + y*z)", ["general", "general"]),
        ("sin(u) + z*u, u = x^2 + y^2", ["compose", "general"]),
    ],
)
def test_tree_nodes_say_how_their_children_combine(name, kinds):
    found = detect_structure(lambda v: CASES[name][0](v, 1.0), uniform(3), XYZ)
    assert [found.tree.kind] + [node.kind for node in found.tree.groups()] == kinds


def test_structure_to_dict_names_groups_and_carries_scores():
    found = detect_structure(lambda v: c(v, 0) * c(v, 1) + c(v, 2), uniform(3), XYZ)
    d = found.to_dict()
    assert d["additive"] == [["x", "y"], ["z"]] and d["tree"] == [["x", "y"], "z"]
    assert d["symmetries"] == [{"group": ["x", "y"], "score": pytest.approx(0.0, abs=1e-9)}]
    assert d["threshold"] == THRESHOLD and d["scores"]["additive"] < THRESHOLD <= d["scores"]["multiplicative"]
    assert d["tree_detail"]["kind"] == "add" and d["rows"] == 1000


# ----- fitted MultKANs: the surrogate of the data ---------------------------------------------
class Fit(NamedTuple):
    target: Callable
    width: list
    arity: int
    grid: int
    base: str
    seed: int
    steps: int
    additive: list
    multiplicative: list


ALL = [[0, 1, 2]]
FITS = {
    "x*y + z": Fit(lambda v: c(v, 0) * c(v, 1) + c(v, 2), [3, [1, 1], 1], 2, 3, "identity", 0, 15, [[0, 1], [2]], ALL),
    "(x + y)*z": Fit(
        lambda v: (c(v, 0) + c(v, 1)) * c(v, 2), [3, [0, 1], 1], 2, 3, "identity", 0, 15, ALL, [[0, 1], [2]]
    ),
    "sin(2(x^2 + y^2)) + z": Fit(
        lambda v: torch.sin(2 * (c(v, 0) ** 2 + c(v, 1) ** 2)) + c(v, 2),
        [3, 2, 1],
        2,
        5,
        "silu",
        0,
        15,
        [[0, 1], [2]],
        ALL,
    ),
    "x*exp(y)*z": Fit(
        lambda v: c(v, 0) * torch.exp(c(v, 1)) * c(v, 2), [3, [0, 1], 1], 3, 3, "identity", 4, 15, ALL, [[0], [1], [2]]
    ),
}


@pytest.fixture(scope="module")
def fitted():
    """Each function fitted from 1000 rows by a tiny MultKAN (Levenberg-Marquardt, a few steps)."""
    models = {}
    x = uniform(3)
    for name, fit in FITS.items():
        y = fit.target(x)[:, None]
        model = MultKAN(
            ModelSpec.build(fit.width, grid=fit.grid, mult_arity=fit.arity, base_fun=fit.base, seed=fit.seed)
        )
        train(model, Dataset(x, y, x[:100], y[:100]), TrainSettings(steps=fit.steps, opt="lm", update_grid=False))
        models[name] = model
    return models, x


@pytest.mark.parametrize("name", list(FITS))
def test_fitted_models_show_the_structure_of_their_data(fitted, name):
    models, x = fitted
    model = models[name]
    base = detect_structure(lambda v: model(v)[:, 0], x, XYZ)
    assert base.additive == FITS[name].additive
    assert base.multiplicative == FITS[name].multiplicative
    for scale in (1e-2, 1e2):  # the same model in other units: the same answer and the same scores
        moved = detect_structure(lambda v, s=scale: model(v / s)[:, 0] / s, x * scale, XYZ)
        assert moved.additive == base.additive and moved.multiplicative == base.multiplicative
        assert moved.additive_score == pytest.approx(base.additive_score, rel=1e-6, abs=1e-12)
        assert moved.multiplicative_score == pytest.approx(base.multiplicative_score, rel=1e-6, abs=1e-12)


def test_a_fitted_sum_of_a_product_is_not_called_multiplicative(fitted):
    models, x = fitted
    the_jet = jet(lambda v: models["x*y + z"](v)[:, 0], x)
    assert check_separability(the_jet, [[0, 1], [2]], "add").holds
    assert not check_separability(the_jet, [[0, 1], [2]], "mul").holds
    product = jet(lambda v: models["(x + y)*z"](v)[:, 0], x)
    assert not check_separability(product, [[0, 1], [2]], "add").holds
    symmetric = jet(lambda v: models["sin(2(x^2 + y^2)) + z"](v)[:, 0], x)
    assert check_symmetry(symmetric, [0, 1]).holds and not check_symmetry(symmetric, [0, 2]).holds


def test_a_single_input_has_nothing_to_split():
    found = detect_structure(lambda v: torch.sin(c(v, 0)), uniform(1), ["t"])
    d = found.to_dict()
    assert d["additive"] == [["t"]] and d["tree"] == "t" and d["symmetries"] == []
    assert found.additive_score == float("inf") > THRESHOLD  # no split claimed


def test_a_partition_does_not_depend_on_rounding_between_h_ij_and_h_ji():
    from kandisc.structure.separability import separation

    scores = torch.tensor([[0.0, 1e-11, 2.0], [1e-11, 0.0, 1.0 + 4e-16], [2.0, 1.0, 0.0]], dtype=torch.float64)
    parts, score = separation(scores, [0, 1, 2])
    assert parts == [[0, 1, 2]] and score == pytest.approx(1.0)  # the weaker link to z holds y in
    assert separation(scores.T.contiguous(), [0, 1, 2]) == (parts, score)
