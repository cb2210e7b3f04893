"""Formula assembly equals the model (mult arity 2 and 3, pruned inputs, standardised data),
constant snapping, and end-to-end recovery of known laws from the sample CSVs."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch
from typer.testing import CliRunner

from kandisc.attribution import prune
from kandisc.cli import app
from kandisc.io.model_file import ModelBundle
from kandisc.io.scaling import Scaling
from kandisc.model import ModelSpec, MultKAN
from kandisc.symbolic.assemble import assemble, verify
from kandisc.symbolic.scorer import Scorer
from kandisc.symbolic.simplify import build_candidates
from kandisc.symbolic.snapping import snap_constants
from kandisc.symbolic.time_limit import time_limited

ROOT = Path(__file__).resolve().parent.parent
FNS = ["sin", "x^2", "exp", "tanh", "x", "cos", "x^3", "arctan"]


def symbolic_model(width, arity, seed=0):
    """A model whose every edge is a random library function with random affine constants."""
    model = MultKAN(ModelSpec.build(width, mult_arity=arity))
    g = torch.Generator().manual_seed(seed)
    for layer, kan in enumerate(model.layers):
        for i in range(kan.in_dim):
            for j in range(kan.out_dim):
                params = (torch.rand(4, generator=g, dtype=torch.float64) - 0.5).tolist()
                model.set_symbolic(layer, i, j, FNS[(i + 2 * j + layer) % len(FNS)], params)
    return model


@pytest.mark.parametrize("width,arity", [([3, [1, 2], 1], 2), ([3, [1, 2], [0, 1]], 3), ([2, [0, 1], 2], 3)])
def test_formula_equals_model_for_mult_nodes(width, arity):
    model = symbolic_model(width, arity)
    with torch.no_grad():  # non-trivial affines must be folded in too
        model.node_scale[0].mul_(1.5)
        model.subnode_bias[0].add_(0.25)
    names = [f"v{i}" for i in range(model.spec.n_inputs)]
    bundle = ModelBundle(model, names, [f"t{j}" for j in range(model.spec.n_outputs)])
    x = np.random.default_rng(0).uniform(-1, 1, (200, len(names)))
    assembly = assemble(bundle)
    assert [status for status, _ in verify(bundle, assembly, x)] == ["ok"] * model.spec.n_outputs


def test_formula_after_pruning_and_with_standardised_data():
    model = symbolic_model([4, 3, 1], 2, seed=1)
    model.remove_edge(0, 2, 0), model.remove_edge(0, 2, 1), model.remove_edge(0, 2, 2)  # input 2 unused
    x_raw = np.random.default_rng(1).uniform([0, 10, -1, 100], [1, 20, 1, 300], (300, 4))
    norm = {"x_mean": x_raw.mean(0).tolist(), "x_std": x_raw.std(0).tolist(), "y_mean": [3.0], "y_std": [7.0]}
    pruned = prune(
        model,
        torch.as_tensor((x_raw - x_raw.mean(0)) / x_raw.std(0)),
        edge_threshold=0.0,
        node_threshold=0.0,
        input_threshold=1e-9,
    )
    assert pruned.kept_inputs == [0, 1, 3]
    kept = [0, 1, 3]
    bundle = ModelBundle(
        pruned.model,
        ["a", "b", "d"],
        ["y"],
        normalization=Scaling.from_dict(norm).select_inputs(kept),
    )
    assembly = assemble(bundle)
    assert {str(s) for s in assembly.exprs[0].free_symbols} == {"a", "b", "d"}
    ((status, err),) = verify(bundle, assembly, x_raw[:, kept])
    assert status == "ok" and err < 1e-8


def test_numeric_edges_block_the_formula():
    model = symbolic_model([2, 2, 1], 2)
    model.set_numeric(0, 1, 0)
    bundle = ModelBundle(model, ["x", "y"], ["f"])
    assembly = assemble(bundle)
    assert assembly.exprs == [None] and assembly.numeric_edges == [(0, 1, 0)]
    assert verify(bundle, assembly, np.zeros((3, 2)))[0][0] == "numeric"


def test_constant_snapping_keeps_only_snaps_that_fit():
    x = sp.Symbol("x")
    xs = np.random.default_rng(2).uniform(-1, 1, (400, 1))
    y = np.sin(np.pi * xs[:, 0]) + 0.37 * xs[:, 0]
    scorer = Scorer([x], xs, y, xs, y)
    noisy = sp.Float(1.0002) * sp.sin(sp.Float(3.1409) * x + sp.Float(1e-4)) + sp.Float(0.37) * x
    snapped = snap_constants(noisy, scorer)
    assert sp.sin(sp.pi * x) in snapped.atoms(sp.sin)  # 3.1409 -> pi, 1.0002 -> 1, 1e-4 -> 0
    (slope,) = snapped.atoms(sp.Float)  # 0.37 is not a simple number (denominator > 12): refitted
    assert abs(float(slope) - 0.37) < 1e-6
    front = build_candidates(noisy, scorer)
    best = next(c for c in front if c.is_best)
    assert best.test_rmse < 1e-6 and sp.simplify(best.expr - (sp.sin(sp.pi * x) + sp.Float(0.37) * x)) == 0


def test_near_exact_snaps_are_kept_when_a_far_one_fails():
    """3/(20π)·q²/(ε·d) from a network's 0.04775·q²/(ε·(d + 7e-5)^1.00004): the exponent and the
    offset snap together (neither alone fits), the prefactor is refitted and snaps to 3/(20π)."""
    q, eps, d = sp.symbols("q epsilon d")
    xs = np.random.default_rng(0).uniform(1, 5, (600, 3))
    y = 3 / (20 * np.pi) * xs[:, 0] ** 2 / (xs[:, 1] * xs[:, 2])
    scorer = Scorer([q, eps, d], xs[:400], y[:400], xs[400:], y[400:])
    network = sp.Float(0.0477495931248) * q**2 / (eps * (d + sp.Float(7.2e-5)) ** sp.Float(1.00003670872))
    snapped = snap_constants(network, scorer)
    assert sp.simplify(snapped - 3 * q**2 / (20 * sp.pi * eps * d)) == 0


def test_time_limited_falls_back_and_nests():
    def spin(seconds: float) -> str:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        return "done"

    start = time.monotonic()
    assert time_limited(lambda: spin(5), 0.2, lambda: "fallback") == "fallback"
    assert time.monotonic() - start < 1.0
    # An inner limit that runs out falls back inside; the outer call goes on.
    assert time_limited(lambda: time_limited(lambda: spin(5), 0.1, lambda: "inner") + spin(0.05), 2, lambda: "x") == (
        "innerdone"
    )
    # The outer limit ends an inner call that would outlast it.
    start = time.monotonic()
    assert time_limited(lambda: time_limited(lambda: spin(5), 3, lambda: "inner"), 0.2, lambda: "outer") == "outer"
    assert time.monotonic() - start < 1.0
    assert time_limited(lambda: "quick", 0.2, lambda: "fallback") == "quick"


def run_example(name: str, tmp_path: Path, *overrides: str) -> tuple[dict, str]:
    out = tmp_path / name
    result = CliRunner().invoke(
        app,
        [
            "fit",
            str(ROOT / "sample_data" / f"{name}.csv"),
            "--config",
            str(ROOT / "configs" / f"{name}.yaml"),
            "--out",
            str(out),
            "--set",
            "output.figures=false",
            *(arg for item in overrides for arg in ("--set", item)),
        ],
    )
    assert result.exit_code == 0, result.stderr
    return json.loads((out / "summary.json").read_text()), result.stdout


def rounded(expr: sp.Expr, digits: int = 3) -> sp.Expr:
    return expr.xreplace({f: sp.Float(round(float(f), digits)) for f in expr.atoms(sp.Float)})


@pytest.mark.parametrize(
    "name,expected",
    [
        ("quickstart", "exp(y**2 + sin(pi*x))"),
        ("product", "x*y"),
        ("sin_exp", "sin(x)*exp(y)"),
        ("squares", "x**2 + y**2 + z"),
        ("velocity_addition", "(x + y)/(1 + x*y)"),
    ],
)
def test_recovers_the_law_from_sample_data(name, expected, example_run):
    _, summary, stdout = example_run(name)
    formula = rounded(sp.sympify(summary["formulas"]["f"]))  # our own output, not user input
    truth = sp.sympify(expected)
    names = sorted(str(v) for v in truth.free_symbols | formula.free_symbols)
    points = np.random.default_rng(3).uniform(-0.9, 0.9, (200, len(names)))
    diff = sp.lambdify(sp.symbols(names), formula - truth)(*points.T)
    assert np.max(np.abs(diff)) < 1e-9, formula  # exact after rounding constants to 3 decimals
    assert summary["formula_checks"]["f"]["status"] == "ok"
    assert summary["test_r2"]["f"] >= 0.999
    assert summary["formulas"]["f"] in stdout
    if name == "squares":
        assert summary["pruned_inputs"] == ["w"]


def test_float32_model_gets_its_formula(tmp_path):
    # The formula is checked against the model to 1000 float32 ulps (1e-8 would reject float32 models).
    summary, _ = run_example("quickstart", tmp_path, "model.dtype=float32")
    assert summary["formula_checks"]["f"]["status"] == "ok"
    formula = rounded(sp.sympify(summary["formulas"]["f"]))
    x, y = sp.symbols("x y")
    assert sp.simplify(formula - sp.exp(y**2 + sp.sin(sp.pi * x))) == 0, formula


def test_formula_files(example_run):
    out, _, _ = example_run("product")
    rows = (out / "formulas.csv").read_text().splitlines()
    assert rows[0].startswith("target,complexity,test_rmse,test_r2,sympy,latex")
    assert (out / "formulas" / "f.tex").read_text().startswith("f = ")


def test_relativistic_mass_with_auxiliary_features(tmp_path):
    summary, _ = run_example("relativistic_mass", tmp_path)
    m0, v, c = sp.symbols("m0 v c")
    formula = rounded(sp.sympify(summary["formulas_in_columns"]["m"]))
    diff = sp.lambdify((m0, v, c), formula - m0 / sp.sqrt(1 - v**2 / c**2))
    rng = np.random.default_rng(0)
    assert np.max(np.abs(diff(rng.uniform(0, 1, 50), rng.uniform(0, 0.9, 50), rng.uniform(1.1, 2, 50)))) < 1e-9
    assert "gamma" in summary["formulas"]["m"]


def test_neo_hookean_from_the_linear_elastic_prior(tmp_path):
    summary, _ = run_example("neo_hookean", tmp_path)
    expr = sp.expand(sp.sympify(summary["formulas"]["P11"]))
    f11, f12, f13, det = sp.symbols("F11 F12 F13 detF")
    mu, lam = 5 / 12, 5 / 18
    for term, target in ((f11**2, mu), (f12**2, mu), (f13**2, mu)):
        assert abs(float(expr.coeff(term)) - target) < 0.02 * target
    log_terms = [t for t in expr.args if t.has(sp.log)]
    assert len(log_terms) == 1 and abs(float(log_terms[0].as_coeff_Mul()[0]) - lam) < 0.02 * lam
    offset = float(expr.as_coeff_Add()[0])
    assert abs(offset + mu) < 0.02 * mu


@pytest.mark.parametrize("seed", [2, 3])
def test_noisy_constants_snap_to_the_simplest_numbers_within_their_noise(seed):
    """a·b with 1 % noise, from a network's 0.975·(1.0·a + 0.0042)^1.0058·(1.0·b + 0.0177)^1.0093:
    the refitted constants drift together (0.987·a·(b + 0.039)) and the nearest simple numbers are
    multiples of π (10/π² for an exponent 1.0134); within their standard errors 1 and 0 are too."""
    a, b = sp.symbols("a b")
    rng = np.random.default_rng(seed)
    xs = rng.uniform(1, 5, (1000, 2))
    y = xs[:, 0] * xs[:, 1]
    y = y + rng.normal(0, 0.01 * np.sqrt(np.mean(y**2)), len(y))
    scorer = Scorer([a, b], xs[:800], y[:800], xs[800:], y[800:])
    f = sp.Float
    network = f(0.974684) * (f(1.0) * a + f(0.0042)) ** f(1.0058) * (f(1.0) * b + f(0.0177)) ** f(1.0093)
    assert snap_constants(network, scorer) == a * b
    best = next(c for c in build_candidates(network, scorer) if c.is_best)
    assert best.expr == a * b
