"""Auxiliary input features: ordered definitions, substitution, and data checks."""

import numpy as np
import pytest
import sympy as sp

from kandisc.errors import ConfigError, DataError, FormulaError
from kandisc.knowledge.auxiliary import compute_auxiliary, substitute_auxiliary

m0, v, c = sp.symbols("m0 v c")


def _columns(v_values=(0.1, 0.5, 0.8)):
    n = len(v_values)
    return {"m0": np.linspace(0.2, 1.0, n), "v": np.array(v_values), "c": np.full(n, 1.5)}


def test_chain_of_auxiliaries_is_computed_and_substituted():
    cols = _columns()
    names, values, exprs = compute_auxiliary(cols, {"beta": "v/c", "gamma": "1/sqrt(1-beta**2)"})
    assert names == ["beta", "gamma"]
    assert values.shape == (3, 2)
    beta = cols["v"] / cols["c"]
    np.testing.assert_allclose(values[:, 0], beta, rtol=1e-15)
    np.testing.assert_allclose(values[:, 1], 1 / np.sqrt(1 - beta**2), rtol=1e-15)
    assert exprs["beta"] == v / c
    assert exprs["gamma"] == 1 / sp.sqrt(1 - (v / c) ** 2)


def test_substitute_auxiliary_back_into_columns():
    _, _, exprs = compute_auxiliary(_columns(), {"beta": "v/c", "gamma": "1/sqrt(1-beta**2)"})
    found = m0 * sp.Symbol("gamma")
    assert sp.simplify(substitute_auxiliary(found, exprs) - m0 / sp.sqrt(1 - v**2 / c**2)) == 0
    # Unsubstituted (staged) definitions are resolved repeatedly.
    staged = {"beta": v / c, "gamma": 1 / sp.sqrt(1 - sp.Symbol("beta") ** 2)}
    assert substitute_auxiliary(found, staged) == m0 / sp.sqrt(1 - (v / c) ** 2)
    assert substitute_auxiliary(m0 * v, {}) == m0 * v


def test_no_auxiliaries_gives_an_empty_matrix():
    names, values, exprs = compute_auxiliary(_columns(), {})
    assert names == [] and values.shape == (3, 0) and exprs == {}


def test_non_finite_auxiliary_names_row_values_and_count():
    cols = _columns((0.1, 1.6, 0.2, 1.7, 2.0))
    with pytest.raises(DataError) as info:
        compute_auxiliary(cols, {"beta": "v/c", "gamma": "1/sqrt(1-beta**2)"})
    message = str(info.value)
    assert message.startswith("auxiliary 'gamma' = 1/sqrt(1-beta**2) is not finite on row 2 (")
    assert "v=1.6" in message and "c=1.5" in message
    assert message.endswith("3 rows in all")


def test_division_by_zero_on_data_is_a_data_error():
    cols = {"x": np.array([1.0, 0.0])}
    with pytest.raises(DataError, match=r"auxiliary 'inv' = 1/x is not finite on row 2 \(x=0\); 1 row in all"):
        compute_auxiliary(cols, {"inv": "1/x"})


@pytest.mark.parametrize(
    ("aux", "pattern"),
    [
        ({"v": "c*2"}, "clashes with the input column 'v'"),
        ({"1beta": "v/c"}, "not a valid name"),
        ({"lambda": "v/c"}, "not a valid name"),
        ({"__x": "v/c"}, "not allowed"),
        ({"pi": "v/c"}, "constant"),
        ({"k": "2"}, "does not depend on any input column"),
        ({"k": ["v"]}, "must be a formula string"),
    ],
)
def test_bad_auxiliary_names_and_values_are_config_errors(aux, pattern):
    with pytest.raises(ConfigError, match=pattern):
        compute_auxiliary(_columns(), aux)


def test_forward_reference_and_bad_formula_are_formula_errors():
    with pytest.raises(FormulaError, match=r"auxiliary 'gamma'.*unknown variable 'beta'.*'beta' comes later"):
        compute_auxiliary(_columns(), {"gamma": "1/sqrt(1-beta**2)", "beta": "v/c"})
    with pytest.raises(FormulaError, match=r"auxiliary 'b'.*'__import__'"):
        compute_auxiliary(_columns(), {"b": "__import__('os')"})


def test_mismatched_column_lengths():
    with pytest.raises(DataError, match="different lengths"):
        compute_auxiliary({"x": np.ones(3), "y": np.ones(2)}, {"s": "x+y"})
