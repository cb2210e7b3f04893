"""The kanpiler: formula -> fully symbolic MultKAN that computes it exactly, and back."""

import numpy as np
import pytest
import sympy as sp
import torch

from kandisc.compile import compile_bundle
from kandisc.errors import FormulaError
from kandisc.io.model_file import load_model, save_model
from kandisc.knowledge.compiler import plan_network
from kandisc.knowledge.formula import evaluate_rows, parse_formula, to_torch_function
from kandisc.symbolic.assemble import assemble

POS = (0.2, 2.0)
# (formula, {variable: (low, high)} where not [-1, 1])
ROUND_TRIP = [
    ("x*y + sin(z)", {}),
    ("x**7", {}),
    ("abs(x)", {}),
    ("y + abs(x)", {}),
    ("exp(sin(x) + y**2)", {}),
    ("exp(sin(pi*x) + y**2)", {}),
    ("sin(exp(x))", {}),
    ("x*y*z", {}),
    ("pi*x + E", {}),
    ("x/y", {"y": POS}),
    ("x - y", {}),
    ("x**(-3)", {"x": POS}),
    ("sqrt(x)*y", {"x": POS}),
    ("log(x)", {"x": (0.1, 3.0)}),
    ("cosh(x)", {}),
    ("arctan(x*y) + z", {}),
    ("(x + y)/(1 + x*y)", {"x": (-0.9, 0.9), "y": (-0.9, 0.9)}),
    ("x + sin(x)", {}),
    ("sin(x + y) + cos(x + y)", {}),
    ("(x + 1)**2 + (x + 1)**3", {}),
    ("tan(x)", {}),
    ("3*tanh(2*x - 1) + 0.5", {}),
    ("sinh(x) - cosh(y)", {}),
    ("arcsin(x/2) + arccos(y/2)", {}),
    ("arctanh(0.5*x)", {}),
    ("x**(7/2)", {"x": (0.1, 1.5)}),
    ("x**(-7)", {"x": (0.6, 1.5)}),
    ("x**12*y", {}),
    ("x**(-5/2) + y", {"x": POS}),
    ("2**x + 3", {}),
    ("1/(1 + exp(-x))", {}),
    ("sign(x)*y**2", {}),
    ("x**2*y**5/z**3", {"z": POS}),
    ("sqrt(x**2 + y**2 + 1)", {}),
    ("exp(-x**2/2)/sqrt(2*pi)", {}),
    ("x*sin(x)", {}),
    ("m0/sqrt(1 - v**2/c**2)", {"m0": (0.0, 1.0), "v": (0.0, 0.9), "c": (1.1, 2.0)}),
    ("-(x*y) + 4", {}),
    ("x**1.5 + 1/sqrt(y)", {"x": POS, "y": POS}),
]


def _inputs(names, ranges, n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    cols = []
    for name in names:
        lo, hi = ranges.get(name, (-1.0, 1.0))
        cols.append(torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo)
    return torch.stack(cols, 1)


def _close(got, want, tol=1e-10):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert np.all(np.isfinite(got))
    assert np.max(np.abs(got - want) / (1 + np.abs(want))) <= tol


@pytest.mark.parametrize(("text", "ranges"), ROUND_TRIP, ids=[t for t, _ in ROUND_TRIP])
def test_round_trip(text, ranges):
    bundle = compile_bundle(text)
    model = bundle.model
    assert all(float(kan.num_mask.abs().sum()) == 0 for kan in model.layers)
    x = _inputs(bundle.input_names, ranges)
    expr = parse_formula(text, bundle.input_names)
    want = to_torch_function(expr, bundle.input_names)(x)
    with torch.no_grad():
        got = model(x)[:, 0]
    _close(got, want)
    assembly = assemble(bundle)
    assert assembly.numeric_edges == []
    _close(evaluate_rows(assembly.exprs[0], [s.name for s in assembly.symbols], x.numpy()), want.numpy())


def test_structure_of_simple_formulas():
    b = compile_bundle("x*y + sin(z)")
    assert b.input_names == ["x", "y", "z"] and b.output_names == ["f"]
    assert b.model.spec.display_width() == [3, [1, 1], 1]
    assert b.extras["compiled_from"] == "x*y + sin(z)"
    assert compile_bundle("exp(sin(x) + y**2)").model.spec.display_width() == [2, 1, 1]
    power = compile_bundle("x**7").model.spec  # x^4 · x^3: one product node of arity 2
    assert power.display_width() == [1, [0, 1]] and power.mult_arity[1] == [2]
    assert compile_bundle("x*y*z*w").model.spec.mult_arity[1] == [4]


def test_constants_fold_into_affines():
    b = compile_bundle("3*sin(2*x + 1) - 5")
    edges = b.model.symbolic_edges()
    assert len(edges) == 1 and edges[0]["fn"] == "sin"
    assert edges[0]["params"] == pytest.approx([2, 1, 3, -5])
    b = compile_bundle("2*x*y + 1")
    assert float(b.model.node_scale[0][0]) == 2 and float(b.model.node_bias[0][0]) == 1


def test_padding_identity_edges_and_shared_nodes():
    b = compile_bundle("exp(x*y) + z")  # z is padded through one identity node
    edges = b.model.symbolic_edges()
    assert sum(e["fn"] == "x" and e["params"] == [1, 0, 1, 0] for e in edges) >= 3
    shared = compile_bundle("sin(x + y) + cos(x + y)").model.spec.display_width()
    assert shared[1] == 1  # one sum node x + y feeds both functions


def test_variables_order_unused_and_output_name():
    b = compile_bundle("x*y", variables=["z", "y", "x"], output_name="P")
    assert b.input_names == ["z", "y", "x"] and b.output_names == ["P"]
    x = _inputs(["z", "y", "x"], {})
    _close(b.model(x).detach()[:, 0], x[:, 1] * x[:, 2])
    assert not bool(b.model.layers[0].active()[0].any())  # z: no edges


def test_constant_formula_with_variables():
    b = compile_bundle("3", variables=["x"])
    _close(b.model(torch.zeros(4, 1, dtype=torch.float64)).detach()[:, 0], np.full(4, 3.0))


def test_sympy_expression_input():
    x, y = sp.symbols("x y")
    b = compile_bundle(x * sp.cos(y), variables=["x", "y"])
    assert b.extras["compiled_from"] == "x*cos(y)"
    with pytest.raises(FormulaError, match="'y'"):
        compile_bundle(x * y, variables=["x"])


def test_save_load_round_trip(tmp_path):
    b = compile_bundle("exp(sin(x) + y**2) * z**7")
    loaded = load_model(save_model(b, tmp_path / "m.pt"))
    x = _inputs(b.input_names, {})
    _close(loaded.predict(x)[:, 0], b.predict(x)[:, 0], tol=0)
    assert loaded.extras["compiled_from"] == "exp(sin(x) + y**2) * z**7"


@pytest.mark.parametrize(
    ("text", "token"),
    [("x**y", "x**y"), ("x**(1/3)", "x**(1/3)"), ("sin(x)*x**y", "x**y"), ("x**0.3 + y", "x**0.3")],
)
def test_unsupported_is_an_error_naming_the_subexpression(text, token):
    with pytest.raises(FormulaError, match=token.replace("*", r"\*").replace("(", r"\(").replace(")", r"\)")):
        compile_bundle(text)


def test_unknown_function_from_sympy_is_an_error():
    x = sp.Symbol("x")
    with pytest.raises(FormulaError, match="gamma"):
        compile_bundle(sp.gamma(x) + x)
    with pytest.raises(FormulaError, match="floor"):
        plan_network(sp.floor(x), ["x"])


def test_unknown_variable_and_bad_input():
    with pytest.raises(FormulaError, match="'q'"):
        compile_bundle("x + q", variables=["x"])
    with pytest.raises(FormulaError, match="no variables"):
        compile_bundle("3")
    with pytest.raises(FormulaError, match="twice"):
        compile_bundle("x", variables=["x", "x"])
    with pytest.raises(FormulaError, match="__import__"):
        compile_bundle("__import__('os')")
