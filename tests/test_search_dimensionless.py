"""The search's dimensionless candidates (kandisc.search.dimensionless): groups in, laws back in columns."""

import json

import numpy as np
import pytest
import sympy as sp

from kandisc.io.data import split, table_from_arrays
from kandisc.knowledge.units import check_formula
from kandisc.pipeline.runner import prepare_table
from kandisc.pipeline.state import RunState
from kandisc.search.dimensionless import (
    CONSTANT,
    CURVE,
    _exact_constants,
    keep_consistent,
    units_candidates,
    with_units,
)
from kandisc.search.divide import with_divide
from kandisc.search.plan import Candidate, plan
from kandisc.search.worker import Outcome

DOPPLER_UNITS = {"c": "m/s", "v": "m/s", "omega_0": "1/s", "omega": "1/s"}


def _doppler(n=160, seed=0):
    """I.34.1, omega = omega_0 / (1 - v/c), with c listed first (its group comes out as c/v)."""
    rng = np.random.default_rng(seed)
    c, v, w0 = rng.uniform(3, 10, n), rng.uniform(1, 2, n), rng.uniform(1, 5, n)
    return np.column_stack([c, v, w0]), w0 / (1 - v / c)


def _prepared(x, y, names, target, units, **search):
    table = table_from_arrays(x, y, names, [target])
    config = {"units": units, "search": {"jobs": 1, "seeds": 1, **search}, "output": {"figures": False}}
    return prepare_table(table, config)


def _equal(formula: str, truth: str, names, x) -> bool:
    """Numerically equal on the rows (the discovery benchmark's strict rule, without rounding)."""
    symbols = [sp.Symbol(n) for n in names]
    f, t = (
        sp.lambdify(symbols, sp.sympify(e, locals=dict(zip(names, symbols, strict=True)))) for e in (formula, truth)
    )
    got, want = f(*x.T), t(*x.T)
    return bool(np.max(np.abs(got - want)) <= 1e-9 * np.max(np.abs(want)))


def test_the_groups_become_the_candidates_inputs_turned_below_one():
    x, y = _doppler()
    prep = _prepared(x, y, ["c", "v", "omega_0"], "omega", DOPPLER_UNITS, candidates=["log-additive", "sum"])
    train, _ = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    candidates, record = units_candidates(prep, train)
    # Oriented below 1 on the data: v/c, whatever the columns' order (c comes first here).
    assert record["groups"] == ["v/c"] and record["forms"] == {"omega": "omega = omega_0 * g(pi_1)"}
    names = [CONSTANT, CURVE, "units-additive", "units-log-additive", "units-sum"]
    assert [c.name for c in candidates] == names
    assert [c.width for c in candidates[2:]] == [[1, 1], [1, 1], [1, 5, 1]]  # one input: the group
    assert [c.y_log for c in candidates[2:]] == [(0,), (1,), (0,)]


def _curve_formula(x, y, names, target, units) -> str:
    prep = _prepared(x, y, names, target, units)
    train, test = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    candidates, record = units_candidates(prep, train)
    curve = next(c for c in candidates if c.name == CURVE)
    outcome = curve.run_on(prep, train, test, deadline=float("inf"), should_stop=lambda: False)
    assert outcome.status == "completed", outcome.message
    return outcome.state.formulas[target]["best"]["sympy"]


@pytest.mark.parametrize(
    "seed,ranges,units,truth",
    [
        # III.15.12: k·d spans 1-25, four periods of cos: no spline of 10 intervals follows it,
        # the rows themselves do (and the group, turned below 1, is 1/(k·d)).
        (2, {"U": (1, 5), "k": (1, 5), "d": (1, 5)}, {"U": "J", "k": "1/m", "d": "m", "E": "J"}, "2*U*(1 - cos(k*d))"),
        # I.48.2: the prefactor is c·m·v, the law m·c²/sqrt(1 - (v/c)²): π^-1 times 1/sqrt of π².
        (
            3,
            {"m": (1, 5), "v": (1, 2), "c": (3, 10)},
            {"m": "kg", "v": "m/s", "c": "m/s", "E": "J"},
            "m*c**2/sqrt(1 - v**2/c**2)",
        ),
        # I.30.5, Snell-like: asin(lambd/(n*d)) of the groups n and lambd/d is a curve of their ratio.
        (
            5,
            {"lambd": (1, 2), "d": (2, 5), "n": (1, 5)},
            {"lambd": "m", "d": "m", "n": "1", "E": "1"},
            "asin(lambd/(n*d))",
        ),
    ],
)
def test_a_law_of_one_or_two_groups_is_a_curve_fitted_from_the_rows(seed, ranges, units, truth):
    rng = np.random.default_rng(seed)
    names = list(ranges)
    x = np.column_stack([rng.uniform(lo, hi, 300) for lo, hi in ranges.values()])
    y = sp.lambdify([sp.Symbol(n) for n in names], sp.sympify(truth))(*x.T)
    formula = _curve_formula(x, y, names, "E", units)
    assert _equal(formula, truth, names, x), formula


def test_with_units_the_plain_search_and_divide_run_before_the_slow_dimensionless_networks():
    """Units add candidates, they must not push the search's own one-layer families and divide
    past the budget: only the quick dimensionless ones (seconds) go before them."""
    rng = np.random.default_rng(4)
    m, u, v, w = (rng.uniform(1, 5, 200) for _ in range(4))
    units = {"m": "kg", "u": "m/s", "v": "m/s", "w": "m/s", "K": "J"}
    y = m * (u**2 + v**2 + w**2) / 2
    prep = _prepared(np.column_stack([m, u, v, w]), y, ["m", "u", "v", "w"], "K", units)
    train, _ = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    planned = plan(prep.cfg, prep.table.Y[train], prep.x_all[train], prep.model_inputs, prep.width)
    order = [c.name for c in with_units(prep, with_divide(prep, planned), train)[0]]
    quick = ["units-constant", "units-curve", "units-additive", "units-log-additive", "units-log-additive-accurate"]
    plain = ["log-additive", "log-additive-accurate", "log-ratio", "log-ratio-sq", "product", "divide"]
    assert order[: len(quick) + len(plain)] == quick + plain
    assert order.index("units-log-ratio") > order.index("divide") and order.index("units-sum") > order.index("divide")
    assert order.index("units-log-ratio") < order.index("sum")


def test_a_law_without_groups_is_its_prefactor_times_a_snapped_constant():
    rng = np.random.default_rng(1)
    q, eps, d = (rng.uniform(1, 5, 120) for _ in range(3))
    units = {"q": "C", "epsilon": "F/m", "d": "m", "F": "N"}
    prep = _prepared(np.column_stack([q, eps, d]), q**2 / (4 * np.pi * eps * d**2), ["q", "epsilon", "d"], "F", units)
    train, test = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    candidates, record = units_candidates(prep, train)
    assert record["groups"] == [] and [c.name for c in candidates] == [CONSTANT]  # no group: no network
    best = candidates[0].run_on(prep, train, test, float("inf"), lambda: False).state.formulas["F"]["best"]
    assert sp.simplify(sp.sympify(best["sympy"]) - sp.sympify("q**2/(4*pi*epsilon*d**2)")) == 0, best["sympy"]


@pytest.mark.parametrize(
    ("value", "exact"), [(3 / (20 * np.pi), "3/(20*pi)"), (0.5 * np.pi**2, "pi**2/2"), (0.6, "3/5")]
)
def test_a_least_squares_constant_is_matched_to_a_multiple_of_a_power_of_pi(value, exact):
    assert sp.sympify(exact) in _exact_constants(value)
    assert _exact_constants(value * (1 + 1e-6)) == []  # exact data gives c to rounding: a near miss is no match


def test_no_dimensionless_candidate_without_a_prefactor():
    x, y = _doppler(60)
    units = {**DOPPLER_UNITS, "omega": "kg"}  # nothing of m/s and 1/s makes kg
    prep = _prepared(x, y, ["c", "v", "omega_0"], "omega", units)
    candidates, record = units_candidates(prep, np.arange(40))
    assert candidates == [] and "omega" in record["skipped"]


def _outcome_with(rows: list[str], best: int) -> Outcome:
    table = [{"sympy": s, "test_rmse": float(k), "complexity": k, "is_best": k == best} for k, s in enumerate(rows)]
    state = RunState(None, None, None, formulas={"F": {"best": table[best], "candidates": table}})
    return Outcome(Candidate("sum", "sum", [3, 5, 1], [], 0, (0,)), "completed", 0.0, state=state)


def test_a_dimensionally_wrong_formula_is_dropped_and_counted():
    x = np.random.default_rng(2).uniform(1, 2, (30, 3))
    units = {"q": "C", "epsilon": "F/m", "d": "m", "F": "N"}
    prep = _prepared(x, x[:, 0] ** 2 / (x[:, 1] * x[:, 2] ** 2), ["q", "epsilon", "d"], "F", units)
    wrong = ["q + d", "0.08*q**2/(epsilon*d**2) + 0.001*d", "exp(d)*q**2/(epsilon*d**2)", "q**2/d**2"]
    right = ["0.0796*q**2/(epsilon*d**2)", "q**2*sin(d/d)/(epsilon*d**2)"]
    outcome = _outcome_with([wrong[0], right[0], *wrong[1:], right[1]], best=2)  # the best is wrong
    assert keep_consistent(outcome, prep) == len(wrong)
    entry = outcome.state.formulas["F"]
    assert [row["sympy"] for row in entry["candidates"]] == right
    assert entry["best"]["sympy"] == right[0]  # the most accurate consistent one takes its place


def test_the_search_returns_only_consistent_formulas_and_reports_the_groups(tmp_path, write_csv):
    from kandisc.api import fit_run

    x, y = _doppler(140)
    data = write_csv({"c": x[:, 0], "v": x[:, 1], "omega_0": x[:, 2], "omega": y})
    config = {"units": DOPPLER_UNITS, "search": {"jobs": 1, "seeds": 1, "candidates": ["log-additive"]}}
    config["output"] = {"figures": False}
    result = fit_run(data, config, out=tmp_path / "run")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert _equal(summary["formulas"]["omega"], "omega_0/(1 - v/c)", ["c", "v", "omega_0"], x)
    units = summary["search"]["units"]
    assert units["groups"] == ["v/c"] and units["dropped_inconsistent"] == sum(units["dropped_by_candidate"].values())
    rows = result.state.formulas["omega"]["candidates"]
    assert rows and all(check_formula(r["sympy"], DOPPLER_UNITS, "omega")[0] for r in rows)
    assert summary["search"]["winner"] == "log-additive"  # a network over the columns is the model
    # The curve of v/c is exact: the other dimensionless fits could add nothing, the run only
    # lacked a model, so the search went straight to the first candidate with a network.
    ran = [c["name"] for c in summary["search"]["candidates"]]
    assert ran == ["units-constant", "units-curve", "log-additive"], ran
    assert "units-additive" in summary["search"]["skipped"], summary["search"]["skipped"]
    assert summary["search"]["stopped_early"].startswith("exact")
    report = (tmp_path / "run" / "report.md").read_text()
    assert "dimensionless groups pi_1 = `v/c`" in report and "dropped as dimensionally inconsistent" in report
    assert "Skipped once a formula found without a network was exact" in report and "`units-additive`" in report


def test_an_explicit_pipeline_returns_only_consistent_formulas_too(tmp_path, write_csv):
    """units: with pipeline: — the same check as in the search, recorded as a `units` stage."""
    from typer.testing import CliRunner

    from kandisc.cli import app

    rng = np.random.default_rng(0)
    x, y = rng.uniform(1, 2, (2, 200))
    data = write_csv({"x": x, "y": y, "f": x * y + 0.3})  # + 0.3 (m²) fits, and a bare number is no area
    config = tmp_path / "c.yaml"
    config.write_text(
        "units: {x: m, y: m, f: m**2}\noutput: {figures: false}\npipeline: [{fit: {steps: 30}}, symbolic]\n"
    )
    result = CliRunner().invoke(app, ["fit", str(data), "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "dimensionally inconsistent formula(s) dropped" in " ".join(summary["warnings"])
    # Which consistent simplifications the front holds depends on the 30-step fit (on some CPUs
    # every candidate carries the bare 0.3): then no formula is returned at all, and none is shown.
    table = tmp_path / "run" / "formulas.csv"
    rows = table.read_text().splitlines()[1:] if table.exists() else []
    assert bool(rows) == (summary["formulas"]["f"] is not None)
    assert all(check_formula(sp.sympify(r.split(",")[4]), {"x": "m", "y": "m", "f": "m**2"}, "f")[0] for r in rows)
    assert "**units** (ok): every formula checked against the units" in (tmp_path / "run" / "report.md").read_text()
