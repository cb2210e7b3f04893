"""One record per library function: registering one makes every layer use it.

A function registered at test time (``arcsinh``, a sympy function torch also has) is fitted by
edge_fit, parsed by the formula parser, compiled by the compiler and evaluated by the model; a
function added as a formula (``sinc``) works the same way from the config through a saved model.
"""

import json
import math

import numpy as np
import pytest
import sympy as sp
import torch

from kandisc.errors import ConfigError, FormulaError
from kandisc.io.config import load_config
from kandisc.io.model_file import load_model
from kandisc.knowledge.compiler import plan_network
from kandisc.knowledge.formula import parse_formula, to_numpy_function
from kandisc.knowledge.user_functions import function_from_formula, restore_functions
from kandisc.model import ModelSpec, MultKAN
from kandisc.model.functions import FUNCTIONS, SymbolicFunction, register_function, unregister_function
from kandisc.symbolic.assemble import assemble
from kandisc.symbolic.edge_fit import fit_edges
from tests.conftest import fit_with_config

ARCSINH = SymbolicFunction(
    "arcsinh",
    4,
    torch.asinh,
    lambda a: sp.asinh(a),
    canonical="positive_a",
    parse_names=("arcsinh", "asinh"),
    sympy_head="asinh",
)


@pytest.fixture
def arcsinh():
    register_function(ARCSINH)
    yield ARCSINH
    unregister_function("arcsinh")


@pytest.fixture
def sinc():
    register_function(function_from_formula("sinc", "sin(x)/x", 3))
    yield FUNCTIONS["sinc"]
    unregister_function("sinc")


def test_a_registered_function_is_fitted(arcsinh):
    x = torch.linspace(-1, 1, 100, dtype=torch.float64)[None]
    fits = fit_edges(x, 2 * torch.asinh(4 * x + 1) + 1, ["x", "arcsinh"])
    assert float(fits.r2[0, 1]) > 1 - 1e-8 > 0.99 > float(fits.r2[0, 0])
    np.testing.assert_allclose(fits.params[0, 1].numpy(), [4.0, 1.0, 2.0, 1.0], rtol=1e-3)


def test_a_registered_function_is_parsed_compiled_and_evaluated(arcsinh):
    x, y = sp.symbols("x y")
    expr = parse_formula("arcsinh(2*x) + asinh(y)", ["x", "y"])
    assert expr == sp.asinh(2 * x) + sp.asinh(y)
    plan = plan_network(expr, ["x", "y"])
    assert sorted(edge[3] for edge in plan.edges) == ["arcsinh", "arcsinh"]
    model = plan.build()
    rows = torch.rand(50, 2, dtype=torch.float64) * 2 - 1
    want = torch.asinh(2 * rows[:, 0]) + torch.asinh(rows[:, 1])
    torch.testing.assert_close(model(rows)[:, 0], want)


def test_the_model_evaluates_a_registered_function(arcsinh):
    model = MultKAN(ModelSpec.build([1, 1]))
    model.layers[0].remove_edges(torch.ones(1, 1, dtype=torch.bool))
    model.set_symbolic(0, 0, 0, "arcsinh", (2.0, 0.5, 3.0, -1.0))
    rows = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
    torch.testing.assert_close(model(rows), 3 * torch.asinh(2 * rows + 0.5) - 1)


def test_built_ins_cannot_be_replaced():
    with pytest.raises(ValueError, match="built-in"):
        register_function(FUNCTIONS["sin"])


def test_a_formula_function_expands_into_its_formula(sinc):
    u = sp.Symbol("u")
    assert parse_formula("sinc(2*u)", ["u"]) == sp.sin(2 * u) / (2 * u)
    t = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(sinc.torch_fn(t), torch.sin(t) / t)
    value = to_numpy_function("sinc(u) + 1", ["u"])({"u": np.array([1.0])})
    np.testing.assert_allclose(value, [math.sin(1.0) + 1])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("sin: {formula: x}", "built-in library function"),
        ("asin: {formula: x}", "built-in library function"),
        ("pi: {formula: x}", "reserved"),
        ("2f: {formula: x}", "not a valid name"),
        ("f: {formula: 'y + 1'}", "unknown variable 'y'"),
        ("f: {formula: '3'}", "does not depend on x"),
        ("f: {formula: \"__import__('os')\"}", "'__import__' is not allowed"),
        ("f: {formula: x, complexity: -1}", "out of range"),
    ],
)
def test_config_functions_are_checked(tmp_path, entry, message):
    path = tmp_path / "run.yaml"
    path.write_text(f"functions:\n  {entry}\n")
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_a_config_function_is_fitted_saved_and_reloaded(write_csv, tmp_path):
    x = np.linspace(0.5, 3.0, 300)
    data = write_csv({"x": x, "f": np.sin(2 * x) / (2 * x)})
    config = """
functions:
  sinc: {formula: "sin(x)/x", complexity: 2}
model: {width: [1, 1], grid: 10}
output: {figures: false}
pipeline:
  - fit: {steps: 40}
  - symbolic: {library: [sinc], retrain_steps: 5}
"""
    try:
        out = fit_with_config(data, config, tmp_path / "run")
        formula = json.loads((out / "summary.json").read_text())["formulas"]["f"]
        assert sp.simplify(sp.sympify(formula) - sp.sympify("sin(2*x)/(2*x)")) == 0
    finally:
        unregister_function("sinc")
    bundle = load_model(out / "model.pt")
    register_function(function_from_formula("other", "x**2 + x", 5))  # takes the id sinc had
    try:
        restore_functions(bundle)
        assert bundle.model.symbolic_edges()[0]["fn"] == "sinc"
        assert "sin" in str(assemble(bundle).exprs[0])
    finally:
        unregister_function("other")
        unregister_function("sinc")


def test_prior_formulas_may_call_config_functions(sinc):
    expr = parse_formula("2*sinc(x)", ["x"])
    with pytest.raises(FormulaError, match="unknown function 'sincc'"):
        parse_formula("sincc(x)", ["x"])
    assert expr == 2 * sp.sin(sp.Symbol("x")) / sp.Symbol("x")
