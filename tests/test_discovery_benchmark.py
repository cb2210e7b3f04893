"""benchmarks/discovery.py and feynman_laws.py: rounding, strict / SRBench / R² scoring, sampling, one tiny run."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("discovery_benchmark", ROOT / "benchmarks" / "discovery.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["discovery_benchmark"] = bench  # dataclasses and pickling look the module up by name
_spec.loader.exec_module(bench)
fl = importlib.import_module("feynman_laws")  # on sys.path once discovery.py is loaded

XY = fl.Law("t.xy", "x*y", ("x", "y"), ((1.0, 5.0), (1.0, 5.0)), "f")


@pytest.mark.parametrize(
    ("found", "equal"),
    [
        ("0.99999*x*y", True),  # 0.99999 rounds to 1.000
        ("x*y + 0.00003", True),  # below 1e-4: dropped
        ("1.0*x**1.0*y", True),  # float exponents round to exact integers
        ("2.0004*x*y", False),  # rounds to 2.0*x*y, which is not x*y
        ("x*y + 0.001", False),
        ("x + y", False),
    ],
)
def test_strict_after_rounding(found, equal):
    assert fl.strict_match(found, XY, 0)[0] is equal


def test_round_constants_keeps_integers_rationals_and_pi():
    x = sp.Symbol("x")
    assert fl.round_constants(fl.parse("2.0004*x", ["x"])) == 2 * x
    assert fl.round_constants(fl.parse("1.23456*x", ["x"])) != sp.Rational(123, 100) * x
    assert fl.round_constants(fl.parse("1.23456*x", ["x"])) == sp.Rational(1235, 1000) * x
    assert fl.round_constants(fl.parse("x/3 + pi*x", ["x"])) == x / 3 + sp.pi * x


def test_pi_constants_count_only_when_symbolic():
    law = fl.Law("t.pi", "h/(2*pi)*omega", ("omega", "h"), ((1.0, 5.0), (1.0, 5.0)), "E_n")
    assert fl.strict_match("h*omega/(2*pi)", law, 0) == (True, "symbolic")
    assert fl.strict_match("0.159155*h*omega", law, 0)[0] is False  # 0.159 is not 1/(2π)


def test_srbench_rule_credits_a_constant_factor_or_offset():
    law = fl.Law("t.pi", "h/(2*pi)*omega", ("omega", "h"), ((1.0, 5.0), (1.0, 5.0)), "E_n")
    assert fl.srbench_match("0.159155*h*omega", law, 0)
    assert fl.srbench_match("h*omega/(2*pi) + 3.7", law, 0)
    assert not fl.srbench_match("0.159*h*omega**1.01", law, 0)
    assert not fl.srbench_match("0*h", law, 0) and not fl.srbench_match(None, law, 0)


def test_clash_prone_names_are_plain_symbols():
    names = ("I", "gamma", "beta", "E", "S", "N", "Q", "pi")
    expr = fl.parse("I*gamma + beta*E + S*N*Q + pi", names)
    assert expr.free_symbols == {sp.Symbol(n) for n in names}
    law = fl.Law("t.clash", "I/(gamma-1)", ("I", "gamma"), ((1.0, 5.0), (2.0, 5.0)), "y")
    assert fl.strict_match("I/(gamma - 1.00001)", law, 0) == (True, "symbolic")


def test_numerically_equal_but_unsimplified_counts():
    # asin(sin(x)) = x only for |x| <= π/2, which simplify cannot know from x > 0
    law = fl.Law("t.asin", "x*y", ("x", "y"), ((0.1, 1.0), (1.0, 5.0)), "f")
    assert fl.strict_match("asin(sin(x))*y", law, 0) == (True, "numeric")
    assert fl.strict_match("sqrt(x**2)*y", law, 0) == (True, "symbolic")  # x > 0 in its range


def test_nan_or_missing_formula_is_not_equal():
    assert fl.strict_match("nan*x", XY, 0) == (False, "")
    assert fl.strict_match("sqrt(-x)*y", XY, 0) == (False, "")  # complex on the whole range
    assert fl.strict_match("x*y + z", XY, 0) == (False, "")  # a name that is no variable
    assert fl.strict_match(None, XY, 0) == (False, "")
    assert fl.strict_match("x*(", XY, 0) == (False, "unparsable")
    assert np.isnan(fl.formula_r2("nan*x", XY, 0)) and np.isnan(fl.formula_r2(None, XY, 0))


def test_formula_r2():
    assert fl.formula_r2("x*y", XY, 0) == pytest.approx(1.0)
    assert 0.9 < fl.formula_r2("x*y + 0.1", XY, 0) < 0.9999
    assert fl.formula_r2("x + y", XY, 0) < 0.999


def test_simplify_cap_gives_up():
    start = time.perf_counter()
    with pytest.raises(TimeoutError), fl.time_cap(0.05):
        while True:
            pass
    assert time.perf_counter() - start < 1.0


def test_sampler_stays_in_ranges_and_is_reproducible():
    law = fl.Law("t.r", "a + b", ("a", "b"), ((1.0, 2.0), (3.0, 10.0)), "y")
    x = fl.sample(law, 500, fl.rng_for(law, 0, 0))
    assert x.shape == (500, 2)
    assert (x[:, 0] >= 1).all() and (x[:, 0] <= 2).all() and (x[:, 1] >= 3).all() and (x[:, 1] <= 10).all()
    assert np.array_equal(x, fl.sample(law, 500, fl.rng_for(law, 0, 0)))
    assert not np.array_equal(x, fl.sample(law, 500, fl.rng_for(law, 1, 0)))


def test_noise_on_training_targets_only():
    clean_x, clean_y = fl.training_data(XY, 2000, 0, 0.0)
    noisy_x, noisy_y = fl.training_data(XY, 2000, 0, 0.1)
    assert np.array_equal(clean_x, noisy_x)
    np.testing.assert_allclose(clean_y, clean_x[:, 0] * clean_x[:, 1])
    rms = np.sqrt(np.mean(clean_y**2))
    assert np.std(noisy_y - clean_y) == pytest.approx(0.1 * rms, rel=0.1)
    # the scoring points are clean: the noisy fit's exact formula still scores R² = 1
    assert fl.formula_r2("x*y", XY, 0) == pytest.approx(1.0)


def test_default_laws_file_parses_when_present():
    if not bench.DEFAULT_LAWS.is_file():
        pytest.skip("feynman-dev.csv not present")
    laws = fl.load_laws(bench.DEFAULT_LAWS)
    assert {law.id for law in laws} >= set(bench.QUICK_IDS)
    for law in laws:
        x = fl.sample(law, 50, fl.rng_for(law, 0, 0))
        assert np.isfinite(fl.evaluate(fl.parse(law.formula, law.variables), law.variables, x)).all(), law.id


def test_missing_laws_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="not found"):
        fl.load_laws(tmp_path / "absent.csv")


def test_end_to_end_one_tiny_law(tmp_path):
    laws = tmp_path / "laws.csv"
    laws.write_text('id,formula,variables,ranges,output\nT.1,a*b,a b,"1,5 1,5",f\n')
    (tmp_path / "short.yaml").write_text(
        "pipeline:\n  - fit: {steps: 2}\n  - symbolic: {rounds: 1, retrain_steps: 0}\noutput: {figures: false}\n"
    )
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "discovery.py"), "--laws", str(laws), "--rows", "200"]
    cmd += ["--out", str(out), "--jobs", "1", f"--extra-args=--config {tmp_path / 'short.yaml'}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with (out / "results.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["id"] == "T.1" and row["status"] == "completed" and row["n_vars"] == "2"
    assert (out / "runs" / "T.1_g0_s0" / "run" / "summary.json").is_file()
    assert json.loads((out / "results.json").read_text())["rates"]["0"]["all"]["runs"] == 1
    fitted = (out / "runs" / "T.1_g0_s0" / "fit.json").stat().st_mtime_ns
    rescored = subprocess.run(cmd, capture_output=True, text=True, timeout=60)  # same --out: no second fit
    assert rescored.returncode == 0 and (out / "runs" / "T.1_g0_s0" / "fit.json").stat().st_mtime_ns == fitted
    results = str(out / "results.csv")
    again = subprocess.run([*cmd[:2], "--summary-only", results, results], capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count("T.1 ") == 2 and "R²≥0.999" in again.stdout
