"""Units: the unit grammar, dimensional consistency of formulas, Buckingham groups and prefactors,
the dimensionless problem, the ``units:`` config key and ``kandisc units``."""

import random
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from typer.testing import CliRunner

from kandisc.cli import app
from kandisc.errors import ConfigError, DataError, FormulaError
from kandisc.io.config import load_config, schema_rows
from kandisc.knowledge.buckingham import back_substitute, buckingham, dimensionless_problem
from kandisc.knowledge.units import (
    BASE,
    DERIVED,
    DIMENSIONLESS,
    check_columns,
    check_formula,
    drop_inconsistent,
    format_dim,
    parse_units,
)

runner = CliRunner()
S = sp.Symbol


def dim(**exponents):
    return tuple(Fraction(exponents.get(b, 0)) for b in BASE)


RELATIVISTIC = {"m0": "kg", "v": "m/s", "c": "m/s", "m": "kg"}
PENDULUM = {"l": "m", "g": "m/s**2", "mass": "kg", "T": "s"}
COULOMB = {"q1": "C", "q2": "C", "eps": "F/m", "r": "m", "F": "N"}


# ---------------------------------------------------------------- the grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kg", dim(kg=1)),
        ("m/s", dim(m=1, s=-1)),
        ("kg*m**2/s**2", dim(kg=1, m=2, s=-2)),
        ("J", dim(kg=1, m=2, s=-2)),
        ("F/m", dim(A=2, s=4, kg=-1, m=-3)),  # permittivity
        ("J*s", dim(kg=1, m=2, s=-1)),  # Planck's constant
        ("ohm", dim(kg=1, m=2, s=-3, A=-2)),
        ("T", dim(kg=1, s=-2, A=-1)),
        ("1/s", dim(s=-1)),
        ("Hz", dim(s=-1)),
        ("s**-1", dim(s=-1)),
        ("m**(1/2)", dim(m=Fraction(1, 2))),
        ("m**0.5*kg**-(3/2)", dim(m=Fraction(1, 2), kg=Fraction(-3, 2))),
        ("1", DIMENSIONLESS),
        ("rad", DIMENSIONLESS),
        ("mol/(m**3*K)", dim(mol=1, m=-3, K=-1)),
    ],
)
def test_units_parse_to_base_dimensions(text, expected):
    assert parse_units(text) == expected


@pytest.mark.parametrize("name", [*BASE, *DERIVED])
def test_format_dim_reads_back_to_the_same_dimension(name):
    d = parse_units(name)
    assert parse_units(format_dim(d)) == d


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kgg", "unknown unit 'kgg' in 'kgg'; did you mean 'kg'?"),
        ("km", "unknown unit 'km'"),
        ("m^2", "'^' in 'm^2' is not a power; write **"),
        ("2*m", "the number 2 in '2*m' is not a unit"),
        ("m**x", "the exponent 'x' in 'm**x' is not a number"),
        ("m/", "cannot read units 'm/'"),
        ("", "units must be a non-empty string"),
        ("sqrt(m)", "'sqrt(m)' in 'sqrt(m)' is not allowed in units"),
        ("m**(1/0)", "division by zero"),
        ("__import__('os')", "is not allowed in units"),
    ],
)
def test_bad_units_are_one_line_config_errors(text, message):
    with pytest.raises(ConfigError) as info:
        parse_units(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_check_columns_wants_units_for_every_column_and_no_others():
    check_columns(RELATIVISTIC, ["m0", "v", "c", "m"])
    check_columns({}, ["anything"])  # no units: nothing to check
    with pytest.raises(ConfigError, match=r"units: column 'c' without units"):
        check_columns({"m0": "kg", "v": "m/s", "m": "kg"}, ["m0", "v", "c", "m"])
    with pytest.raises(ConfigError, match=r"units.vv: no such column; did you mean 'v'\?"):
        check_columns({**RELATIVISTIC, "vv": "m"}, ["m0", "v", "c", "m"])


# ---------------------------------------------------------------- the config key


def _config(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return load_config(path)


def test_units_in_the_config_accept_a_bare_1(tmp_path):
    cfg = _config(tmp_path, "units: {theta: 1, r: m, F: N, tau: N*m}\n")
    assert cfg.units == {"theta": "1", "r": "m", "F": "N", "tau": "N*m"}


def test_units_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"units\.v: unknown unit 'mps'"):
        _config(tmp_path, "units: {v: mps}\n")
    with pytest.raises(ConfigError, match=r"units: column 'c' without units"):
        _config(tmp_path, "data: {inputs: [v, c], targets: m}\nunits: {v: m/s, m: kg}\n")


def test_units_is_in_the_schema():
    rows = {key: meaning for key, _, _, meaning in schema_rows()}
    assert "SI units" in rows["units"]


# ---------------------------------------------------------------- dimensional consistency


@pytest.mark.parametrize(
    "formula",
    [
        "m0/sqrt(1 - v**2/c**2)",
        "2.5*m0*cos(v/c)**2 + m0",
        "m0*exp(-(v/c)**2)*log(c/v)",
        "m0*(v/c)**(v/c)",  # a dimensionless base may have any dimensionless exponent
        "Abs(m0)*sign(v)",  # Abs keeps units; sign takes any
        "m0*(v**2)**0.5/c",
    ],
)
def test_consistent_formulas_pass(formula):
    assert check_formula(formula, RELATIVISTIC, "m") == (True, "")


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("m0/sqrt(1 - v**2/c)", "of a sum have different units"),
        ("m0 + v", "the terms m0 (kg) and v (m/s) of a sum"),
        ("m0 + 1", "of a sum have different units"),  # numeric constants are dimensionless
        ("m0*exp(v)", "the argument v of exp has units m/s, not 1"),
        ("m0*sin(v/c**2)", "of sin has units s/m"),
        ("m0*v**c", "the exponent of v**c has units m/s"),
        ("m0*c**(v/c)", "raises a quantity with units m/s to a non-numeric power"),
        ("m0*v/c**2", "the formula has units kg*s/m, the target m has kg"),
        ("m0*v", "the formula has units m*kg/s, the target m has kg"),
    ],
)
def test_inconsistent_formulas_are_caught_with_a_reason(formula, reason):
    ok, why = check_formula(formula, RELATIVISTIC, "m")
    assert not ok and reason in why


def test_check_formula_without_target_only_checks_inside():
    assert check_formula("m0*v", RELATIVISTIC) == (True, "")
    assert check_formula(S("m0") * S("v"), RELATIVISTIC, "m")[0] is False


def test_drop_inconsistent_keeps_order_and_unjudgeable_rows():
    rows = [
        {"sympy": "m0/sqrt(1 - v**2/c**2)", "complexity": 9},
        {"sympy": "m0*v", "complexity": 3},
        {"sympy": None, "complexity": 0},  # no formula: nothing to judge
        {"sympy": "m0 + 0.2*v/c", "complexity": 5},  # a fitted constant without units
    ]
    kept, dropped = drop_inconsistent(rows, RELATIVISTIC, "m", ["m0", "v", "c"])
    assert dropped == 2
    assert [r["complexity"] for r in kept] == [9, 0]


# ---------------------------------------------------------------- Buckingham groups and prefactor


def _exponents(group):
    return {n: int(e) if e.denominator == 1 else e for n, e in group.exponents.items()}


def test_relativistic_mass_has_the_group_v_over_c_and_prefactor_m0():
    a = buckingham(RELATIVISTIC, ["m0", "v", "c"], "m")
    assert [(g.name, g.expr) for g in a.groups] == [("pi_1", S("v") / S("c"))]
    assert a.prefactor == S("m0")
    assert a.form() == "m = m0 * g(pi_1)"


def test_pendulum_period_has_no_group_and_sqrt_l_over_g():
    a = buckingham(PENDULUM, ["l", "g", "mass"], "T")
    assert a.groups == ()
    assert a.prefactor_exponents == {"l": Fraction(1, 2), "g": Fraction(-1, 2)}
    # T / prefactor is dimensionless: so is g*T**2/l
    assert check_formula(S("T") / a.prefactor, {**PENDULUM, "one": "1"}, "one") == (True, "")
    assert sp.simplify(a.prefactor**2 - S("l") / S("g")) == 0
    assert a.unused == ("mass",)  # the period cannot depend on the mass


def test_coulomb_force_prefactor_and_charge_ratio():
    a = buckingham(COULOMB, ["q1", "q2", "eps", "r"], "F")
    assert [_exponents(g) for g in a.groups] == [{"q1": 1, "q2": -1}]
    assert a.prefactor == S("q1") * S("q2") / (S("eps") * S("r") ** 2)
    assert a.to_dict()["prefactor_exponents"] == {"q1": 1, "q2": 1, "eps": -1, "r": -2}


def test_groups_are_a_basis_of_dimensionless_monomials():
    units = {"x": "m", "c": "m/s", "u": "m/s", "t": "s", "theta": "1", "t1": "s"}
    a = buckingham(units, ["x", "c", "u", "t", "theta"], "t1")
    assert len(a.groups) == 5 - 2  # columns minus the rank of the dimension matrix (m, s)
    for g in a.groups:
        assert check_formula(g.expr, units) == (True, "") and check_formula(g.expr, {**units, "one": "1"}, "one")[0]
    matrix = sp.Matrix([[g.exponents.get(c, 0) for c in a.inputs] for g in a.groups])
    assert matrix.rank() == len(a.groups)
    # a dimensionless column is a group by itself and keeps its name; others are pi_1, pi_2, ...
    assert [g.name for g in a.groups] == ["theta", "pi_1", "pi_2"]
    assert a.groups[1].expr == S("c") / S("u")  # two variables before three
    assert a.prefactor == S("t")


def test_random_unit_tables_give_a_group_basis_and_a_prefactor_with_the_target_units():
    rng = random.Random(0)
    names = [*BASE, *DERIVED]
    for _ in range(40):
        n = rng.randint(1, 7)
        units = {f"x{i}": rng.choice(names) for i in range(n)} | {"y": rng.choice(names)}
        inputs = [f"x{i}" for i in range(n)]
        a = buckingham(units, inputs, "y")
        dims = sp.Matrix([[parse_units(units[c])[d] for c in inputs] for d in range(len(BASE))])
        assert len(a.groups) == n - dims.rank(), units
        if a.groups:
            exponents = sp.Matrix([[g.exponents.get(c, 0) for c in inputs] for g in a.groups])
            assert exponents.rank() == len(a.groups) and (dims * exponents.T).is_zero_matrix, units
            for g in a.groups:  # integer exponents, the group's first column positive
                assert all(e.denominator == 1 for e in g.exponents.values())
                assert next(iter(g.exponents.values())) > 0
        target = sp.Matrix(parse_units(units["y"]))
        if a.prefactor is None:
            assert dims.row_join(target).rank() > dims.rank(), units
        else:
            assert check_formula(a.prefactor, units, "y") == (True, ""), units


def test_prefactor_is_none_when_a_dimensional_constant_is_missing():
    a = buckingham({"v": "m/s", "t": "s", "E": "J"}, ["v", "t"], "E")
    assert a.prefactor is None and "no product of the inputs" in a.form()
    with pytest.raises(ConfigError, match="add the missing dimensional constant"):
        dimensionless_problem(a, {"v": np.ones(3), "t": np.ones(3)}, np.ones(3))


def test_buckingham_wants_units_for_inputs_and_target():
    with pytest.raises(ConfigError, match="no units for 'c'"):
        buckingham({"v": "m/s", "m": "kg"}, ["v", "c"], "m")


# ---------------------------------------------------------------- the dimensionless problem


def _relativistic_data(n=50):
    rng = np.random.default_rng(0)
    cols = {"m0": rng.uniform(1, 5, n), "v": rng.uniform(1, 2, n), "c": rng.uniform(3, 10, n)}
    return cols, cols["m0"] / np.sqrt(1 - cols["v"] ** 2 / cols["c"] ** 2)


def test_dimensionless_problem_gives_groups_and_scaled_target():
    cols, y = _relativistic_data()
    a = buckingham(RELATIVISTIC, ["m0", "v", "c"], "m")
    names, values, y_scaled = dimensionless_problem(a, cols, y)
    assert names == ["pi_1"] and values.shape == (50, 1)
    np.testing.assert_allclose(values[:, 0], cols["v"] / cols["c"], rtol=1e-15)
    np.testing.assert_allclose(y_scaled, 1 / np.sqrt(1 - values[:, 0] ** 2), rtol=1e-13)


def test_back_substitute_returns_the_law_in_the_columns():
    cols, y = _relativistic_data()
    a = buckingham(RELATIVISTIC, ["m0", "v", "c"], "m")
    law = back_substitute("1/sqrt(1 - pi_1**2)", a)
    assert law.free_symbols == {S("m0"), S("v"), S("c")}
    values = sp.lambdify([S("m0"), S("v"), S("c")], law)(cols["m0"], cols["v"], cols["c"])
    np.testing.assert_allclose(values, y, rtol=1e-13)
    assert check_formula(law, RELATIVISTIC, "m") == (True, "")
    with pytest.raises(FormulaError, match="v is not a group"):
        back_substitute(S("v") * S("pi_1"), a)


def test_group_free_problem_is_a_constant_times_the_prefactor():
    rng = np.random.default_rng(1)
    cols = {"l": rng.uniform(0.5, 2, 20), "g": rng.uniform(9, 10, 20), "mass": rng.uniform(1, 3, 20)}
    period = 2 * np.pi * np.sqrt(cols["l"] / cols["g"])
    a = buckingham(PENDULUM, ["l", "g", "mass"], "T")
    names, values, y_scaled = dimensionless_problem(a, cols, period)
    assert names == [] and values.shape == (20, 0)
    np.testing.assert_allclose(y_scaled, 2 * np.pi, rtol=1e-14)
    assert sp.simplify(back_substitute(2 * sp.pi, a) - 2 * sp.pi * sp.sqrt(S("l")) / sp.sqrt(S("g"))) == 0


def test_non_finite_groups_name_the_row():
    a = buckingham(PENDULUM, ["l", "g", "mass"], "T")
    cols = {"l": np.array([1.0, -1.0]), "g": np.array([9.8, 9.8]), "mass": np.ones(2)}
    with pytest.raises(DataError, match=r"prefactor .* on row 2 \(l=-1, g=9.8\)"):
        dimensionless_problem(a, cols, np.ones(2))


# ---------------------------------------------------------------- kandisc units


def test_units_command_prints_groups_and_prefactor(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data: {targets: F}\nunits: {q1: C, q2: C, eps: F/m, r: m, F: N}\n")
    result = runner.invoke(app, ["units", str(path)])
    assert result.exit_code == 0, result.output
    assert "groups:    pi_1 = q1/q2" in result.output
    assert "prefactor: q1*q2/(eps*r**2)" in result.output


def test_units_command_checks_the_csv_header(tmp_path):
    path, data = tmp_path / "run.yaml", tmp_path / "data.csv"
    path.write_text("units: {m0: kg, v: m/s, m: kg}\n")
    rows = "\n".join(f"{1 + i},{0.1 * i},{3.0},{1 + i}" for i in range(12))
    data.write_text("m0,v,c,m\n" + rows + "\n")
    result = runner.invoke(app, ["units", str(path), "--data", str(data)])
    assert result.exit_code == 2
    assert "column 'c' without units" in result.output
    path.write_text("units: {m0: kg, v: m/s, c: m/s, m: kg}\n")
    result = runner.invoke(app, ["units", str(path), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert '"form": "m = m0 * g(pi_1)"' in result.output
