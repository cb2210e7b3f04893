"""The safe formula parser and the numpy / torch evaluators."""

import numpy as np
import pytest
import sympy as sp
import torch

from kandisc.errors import DataError, FormulaError
from kandisc.knowledge.formula import (
    formula_variables,
    parse_formula,
    to_numpy_function,
    to_torch_function,
)

x, y, z = sp.symbols("x y z")
VARS = ["x", "y", "z"]

ACCEPTED = [
    ("x", x),
    ("x + y", x + y),
    ("x - y", x - y),
    ("x * y * z", x * y * z),
    ("x / y", x / y),
    ("x ** 2", x**2),
    ("x**7", x**7),
    ("x ** -3", x**-3),
    ("x ** (1/2)", sp.sqrt(x)),
    ("x ** 1.5", x ** sp.Float(1.5, 17)),
    ("-x", -x),
    ("+x", x),
    ("-(x + y)", -(x + y)),
    ("2*x + 3", 2 * x + 3),
    ("1/3 * x", sp.Rational(1, 3) * x),
    ("0.5 * x", sp.Float(0.5, 17) * x),
    ("1e-3 * y", sp.Float(1e-3, 17) * y),
    ("pi * x", sp.pi * x),
    ("E ** x", sp.exp(x)),
    ("exp(sin(pi*x) + y**2)", sp.exp(sp.sin(sp.pi * x) + y**2)),
    ("log(x)", sp.log(x)),
    ("sqrt(x**2 + y**2)", sp.sqrt(x**2 + y**2)),
    ("sin(x) * cos(y) + tan(z)", sp.sin(x) * sp.cos(y) + sp.tan(z)),
    ("tanh(x) + sinh(y) + cosh(z)", sp.tanh(x) + sp.sinh(y) + sp.cosh(z)),
    ("arcsin(x) + asin(y)", sp.asin(x) + sp.asin(y)),
    ("arccos(x) + acos(y)", sp.acos(x) + sp.acos(y)),
    ("arctan(x) + atan(y)", sp.atan(x) + sp.atan(y)),
    ("arctanh(x) + atanh(y)", sp.atanh(x) + sp.atanh(y)),
    ("abs(x) + Abs(y)", sp.Abs(x) + sp.Abs(y)),
    ("sign(x) + sgn(y)", sp.sign(x) + sp.sign(y)),
    ("exp(-(x**2))", sp.exp(-(x**2))),
    ("sin(cos(tan(x)))", sp.sin(sp.cos(sp.tan(x)))),
    ("(x + 1) * (y - 2)", (x + 1) * (y - 2)),
    ("x * sin(y) / (1 + z**2)", x * sp.sin(y) / (1 + z**2)),
    ("  x*y  ", x * y),
    ("(x\n + y)", x + y),
    ("123456789012345678901234567890 * x", sp.Integer(123456789012345678901234567890) * x),
]


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_accepted_formulas_build_the_expected_sympy(text, expected):
    assert parse_formula(text, VARS) == expected


def test_float_constants_keep_full_float64_precision():
    expr = parse_formula("0.41666666666666667 * x + 0.1", ["x"])
    consts = sorted(float(a) for a in expr.atoms(sp.Float))
    assert consts == [0.1, 0.41666666666666667]
    # The printed form round-trips to the same float64 values.
    again = parse_formula(str(expr), ["x"])
    assert sorted(float(a) for a in again.atoms(sp.Float)) == consts


def test_integer_ratios_stay_exact():
    assert parse_formula("5/12", None) == sp.Rational(5, 12)


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("__import__('os').system('x')", "'__import__'"),
        ("x.__class__", "'.__class__'"),
        ("lambda: 1", "lambda"),
        ("open('f')", "'open'"),
        ("foo(x)", "'foo'"),
        ("x[0]", "x[0]"),
        ("[i for i in x]", "list comprehension"),
        ("log(x, base=2)", "'base='"),
        ("'abc'", "'abc'"),
        ("x < y", "comparison"),
        ("x and y", "boolean operator"),
        ("x if y else z", "conditional expression"),
        ("x // y", "'//'"),
        ("x % y", "'%'"),
        ("True", "True"),
        ("3j * x", "3j"),
        ("(x, y)", "tuple"),
        ("x.real", "'.real'"),
        ("sin(*x)", "*x"),
        ("__builtins__", "'__builtins__'"),
        ("eval('1')", "'eval'"),
        ("(x := 2)", "':='"),
    ],
)
def test_rejected_formulas_name_the_token(text, token):
    with pytest.raises(FormulaError) as info:
        parse_formula(text, VARS)
    message = str(info.value)
    assert token in message
    assert "\n" not in message


def test_forbidden_function_lists_the_allowed_ones():
    with pytest.raises(FormulaError, match=r"function 'open' is not allowed; allowed functions: sqrt, exp, log, sin"):
        parse_formula("open('f')", ["x"])


def test_unknown_function_suggests_a_close_name():
    with pytest.raises(FormulaError, match=r"unknown function 'sine' \(did you mean 'sin'\?\)"):
        parse_formula("sine(x)", ["x"])


def test_unknown_variable_lists_known_and_suggests():
    with pytest.raises(FormulaError, match=r"unknown variable 'z'; known: x, y"):
        parse_formula("x + z", ["x", "y"])
    with pytest.raises(FormulaError, match=r"unknown variable 'xx' \(did you mean 'x'\?\)"):
        parse_formula("xx + 1", ["x", "y"])


def test_lowercase_e_is_not_eulers_number():
    with pytest.raises(FormulaError, match=r"unknown variable 'e' \(did you mean 'E'\?\)"):
        parse_formula("e**x", ["x"])
    assert parse_formula("e**x", ["e", "x"]) == sp.Symbol("e") ** x


def test_caret_is_rejected_with_a_hint():
    with pytest.raises(FormulaError, match=r"use \*\* for powers"):
        parse_formula("x^2", ["x"])


def test_syntax_errors_give_the_column():
    with pytest.raises(FormulaError, match=r"syntax error at column 4"):
        parse_formula("x +* 2", ["x"])
    with pytest.raises(FormulaError, match=r"syntax error at the end"):
        parse_formula("x +", ["x"])
    with pytest.raises(FormulaError, match=r"empty formula"):
        parse_formula("   ", ["x"])


def test_wrong_arity_and_variable_called_as_function():
    with pytest.raises(FormulaError, match=r"'log' takes exactly 1 argument \(2 given\)"):
        parse_formula("log(x, 2)", ["x"])
    with pytest.raises(FormulaError, match=r"'x' is a variable, not a function"):
        parse_formula("x(2)", ["x"])
    with pytest.raises(FormulaError, match=r"'sin' is a function"):
        parse_formula("sin + x", ["x"])


def test_undefined_or_complex_constants_are_rejected():
    for text in ("1/0", "log(0)", "sqrt(-1)", "x + atanh(1)"):
        with pytest.raises(FormulaError, match="evaluates to"):
            parse_formula(text, ["x"])


def test_huge_numbers_are_refused_quickly():
    with pytest.raises(FormulaError, match="too large"):
        parse_formula("10**10**10", None)
    with pytest.raises(FormulaError, match="not finite"):
        parse_formula("1e400 * x", ["x"])


def test_deep_nesting_is_a_formula_error():
    with pytest.raises(FormulaError):
        parse_formula("(" * 5000 + "x" + ")" * 5000, ["x"])


def test_free_variables_mode():
    expr = parse_formula("x*y + sin(z) + pi", None)
    assert expr == x * y + sp.sin(z) + sp.pi
    with pytest.raises(FormulaError, match="'__class__'"):
        parse_formula("__class__ + 1", None)


def test_known_variable_wins_over_constant():
    assert parse_formula("E * x", ["E", "x"]) == sp.Symbol("E") * x


def test_formula_variables_order():
    assert formula_variables("x*y + sin(z)") == ["x", "y", "z"]
    assert formula_variables("z + a*b + z") == ["z", "a", "b"]
    assert formula_variables("pi * E * exp(q)") == ["q"]
    assert set(formula_variables(x * y + z)) == {"x", "y", "z"}


def test_numpy_function_matches_the_formula():
    expr = parse_formula("m0/sqrt(1 - v**2/c**2)", ["m0", "v", "c"])
    fn = to_numpy_function(expr, ["m0", "v", "c"])
    m0, v, c = np.array([1.0, 2.0]), np.array([0.5, 0.3]), np.array([1.0, 1.5])
    np.testing.assert_allclose(fn({"m0": m0, "v": v, "c": c}), m0 / np.sqrt(1 - v**2 / c**2), rtol=1e-15)


def test_numpy_function_domain_errors_give_nan_and_constants_broadcast():
    fn = to_numpy_function(parse_formula("sqrt(x)", ["x"]), ["x"])
    out = fn({"x": np.array([4.0, -1.0])})
    assert out[0] == 2.0 and np.isnan(out[1])
    const = to_numpy_function(parse_formula("2", None), ["x"])
    np.testing.assert_array_equal(const({"x": np.zeros(3)}), [2.0, 2.0, 2.0])


def test_numpy_function_of_a_division_by_zero_gives_nan():
    """Constant snapping can round a denominator to 0 (sympy's zoo), which lambdify cannot print:
    such a formula evaluates to NaN, so scoring rejects it, instead of crashing the run."""
    import sympy as sp

    x = sp.Symbol("x")
    fn = to_numpy_function(x + x / sp.Integer(0), ["x"])
    assert np.isnan(fn({"x": np.array([1.0, 2.0])})).all()
    assert fn({"x": np.array([1.0, 2.0])}).shape == (2,)
    # and the symbolic stage's scorer leaves such a formula as it is (nothing to refit) and scores it as no fit
    from kandisc.symbolic.scorer import Scorer

    rows = np.linspace(1, 2, 8)[:, None]
    scorer = Scorer([x], rows, rows[:, 0], rows, rows[:, 0])
    broken = sp.Float(0.5) * x + x / sp.Integer(0)
    assert scorer.refit(broken) == broken
    assert scorer.constant_errors(broken) == {}
    assert not np.isfinite(scorer.rmse(broken))


def test_numpy_function_names_that_shadow_functions():
    fn = to_numpy_function(parse_formula("exp * exp(exp)", ["exp"]), ["exp"])
    np.testing.assert_allclose(fn({"exp": np.array([1.0])}), [np.e])


def test_numpy_function_missing_column_and_unknown_symbol():
    fn = to_numpy_function(parse_formula("x + y", VARS), ["x", "y"])
    with pytest.raises(DataError, match="'y'"):
        fn({"x": np.ones(2)})
    with pytest.raises(FormulaError, match="z"):
        to_numpy_function(x + z, ["x"])


def test_torch_function_matches_numpy_on_every_function():
    text = (
        "exp(x/3) + log(y) + sqrt(y) + sin(x) + cos(z) + tan(x/2) + tanh(z) + sinh(x) + cosh(z)"
        " + arcsin(z/2) + arccos(z/3) + arctan(x) + arctanh(z/2) + abs(x) + sign(z) + x**7"
        " + y**-2 + y**(-1/2) + y**1.5 + 2**x + pi*E - 0.25*x*y*z"
    )
    expr = parse_formula(text, VARS)
    rng = np.random.default_rng(0)
    data = {"x": rng.uniform(-1, 1, 50), "y": rng.uniform(0.5, 2, 50), "z": rng.uniform(-1, 1, 50)}
    expected = to_numpy_function(expr, VARS)(data)
    tensor = torch.tensor(np.column_stack([data[n] for n in VARS]), dtype=torch.float64)
    got = to_torch_function(expr, VARS)(tensor)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    as_dict = to_torch_function(expr, VARS)({k: torch.tensor(v) for k, v in data.items()})
    np.testing.assert_allclose(as_dict.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_torch_function_is_differentiable_and_keeps_dtype():
    fn = to_torch_function(parse_formula("x**2 * sin(y)", VARS), ["x", "y"])
    inp = torch.tensor([[1.5, 0.3]], dtype=torch.float32, requires_grad=True)
    out = fn(inp)
    out.sum().backward()
    assert out.dtype == torch.float32
    assert torch.allclose(inp.grad[0, 0], torch.tensor(2 * 1.5 * np.sin(0.3), dtype=torch.float32))


def test_torch_function_constant_and_errors():
    const = to_torch_function(parse_formula("3", None), ["x"])
    assert torch.equal(const(torch.zeros(4, 1, dtype=torch.float64)), torch.full((4,), 3.0, dtype=torch.float64))
    with pytest.raises(DataError, match="2 columns"):
        to_torch_function(x + y, ["x", "y"])(torch.zeros(3, 3))
    with pytest.raises(FormulaError, match="'Max' is not supported"):
        to_torch_function(sp.Max(x, y), ["x", "y"])
