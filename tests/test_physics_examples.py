"""The bundled physics examples recover their laws (configs/ + sample_data/, small row and step budgets).

Lagrangians: the equation of motion derived from the formula of L equals the true one to 1e-6 on
fresh points. Conserved quantities: the formula H itself satisfies ∇H·ẋ = 0 to 1e-6 relative on
fresh points, is not constant, and for the oscillator is a function of the energy alone.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from typer.testing import CliRunner

from kandisc.cli import app

ROOT = Path(__file__).resolve().parent.parent
FRESH = np.random.default_rng(7)


def run_example(name: str, tmp_path: Path, rows: int, *overrides: str) -> tuple[dict, str]:
    lines = (ROOT / "sample_data" / f"{name}.csv").read_text().splitlines()
    data = tmp_path / f"{name}.csv"
    data.write_text("\n".join(lines[: rows + 1]) + "\n")
    sets = [arg for item in ("output.figures=false", *overrides) for arg in ("--set", item)]
    config = str(ROOT / "configs" / f"{name}.yaml")
    result = CliRunner().invoke(app, ["fit", str(data), "--config", config, "--out", str(tmp_path / "run"), *sets])
    assert result.exit_code == 0, result.stderr
    return json.loads((tmp_path / "run" / "summary.json").read_text()), result.stdout


@pytest.mark.parametrize(
    "name,seed,truth,ranges",
    [
        ("harmonic_oscillator", 0, "-q", (1, 1)),
        ("harmonic_oscillator", 1, "-q", (1, 1)),
        ("pendulum", 0, "-sin(q)", (2.5, 1)),
        ("pendulum", 1, "-sin(q)", (2.5, 1)),
        ("relativistic_particle", 0, "(1 - qdot**2)**(3/2)", (1, 0.9)),
        ("relativistic_particle", 1, "(1 - qdot**2)**(3/2)", (1, 0.9)),
    ],
)
def test_lagrangian_gives_the_equation_of_motion(name, seed, truth, ranges, tmp_path):
    summary, stdout = run_example(name, tmp_path, 150, f"seed={seed}")
    eom = summary["task"]["equations_of_motion"]["qddot"]
    q, qdot = sp.symbols("q qdot")
    points = FRESH.uniform(-1, 1, (200, 2)) * ranges
    got = sp.lambdify((q, qdot), sp.sympify(eom))(*points.T) + 0 * points[:, 0]
    want = sp.lambdify((q, qdot), sp.sympify(truth))(*points.T) + 0 * points[:, 0]
    assert np.max(np.abs(got - want)) <= 1e-6 * np.max(np.abs(want)), eom
    assert summary["task"]["eom_max_relative_error"] < 1e-6
    assert f"qddot = {eom}" in stdout
    if name == "pendulum":  # a Lagrangian model predicts L and q̈, and explains like any other
        _predict_and_explain(tmp_path, points, want)


def _predict_and_explain(tmp_path: Path, points: np.ndarray, qddot: np.ndarray) -> None:
    rows = tmp_path / "new.csv"
    rows.write_text("q,qdot\n" + "\n".join(f"{q:.17g},{v:.17g}" for q, v in points) + "\n")
    model = str(tmp_path / "run" / "model.pt")
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(app, ["predict", model, str(rows), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    header, *body = out.read_text().splitlines()
    assert header == "q,qdot,L_pred,qddot_pred"
    values = np.array([[float(v) for v in line.split(",")] for line in body])
    assert np.allclose(values[:, 3], qddot, atol=1e-6)
    # The motion fixes L only up to a scale and a total derivative (here a·qdot + b: d/dt of a·q + b·t).
    truth = values[:, 1] ** 2 / 2 + np.cos(values[:, 0])
    basis = np.column_stack([truth, values[:, 1], np.ones_like(truth)])
    coef, *_ = np.linalg.lstsq(basis, values[:, 2], rcond=None)
    assert abs(coef[0]) > 1e-3
    assert np.max(np.abs(values[:, 2] - basis @ coef)) < 1e-6 * abs(coef[0])
    result = CliRunner().invoke(app, ["explain", model, "--out", str(tmp_path / "explain"), "--no-figures"])
    assert result.exit_code == 0, result.stderr
    assert "L = " in result.stdout


def _conservation(summary: dict, names: list[str], flow, points: np.ndarray) -> sp.Expr:
    """Max |∇H·ẋ| / (|∇H||ẋ|) of the run's formula H on fresh points, after checking H is not constant."""
    h = sp.sympify(summary["formulas"]["H"])
    symbols = sp.symbols(names)
    assert h.free_symbols, h
    grad = np.column_stack([sp.lambdify(symbols, h.diff(s))(*points.T) + 0 * points[:, 0] for s in symbols])
    xdot = flow(*points.T)
    cos = np.abs((grad * xdot).sum(1)) / (np.linalg.norm(grad, axis=1) * np.linalg.norm(xdot, axis=1))
    assert np.max(cos) < 1e-6, h
    return h


@pytest.mark.parametrize("seed", [0, 1])
def test_oscillator_energy_is_conserved_and_a_function_of_the_energy(seed, tmp_path):
    summary, _ = run_example("oscillator_energy", tmp_path, 200, f"seed={seed}")
    points = FRESH.uniform(-1, 1, (200, 2))
    h = _conservation(summary, ["q", "p"], lambda q, p: np.column_stack([p, -2 * q]), points)
    q, p, energy, angle = sp.symbols("q p E theta", positive=True)
    exact = sp.nsimplify(h, tolerance=1e-9, rational=True)
    on_level = exact.subs({q: sp.sqrt(energy) * sp.cos(angle), p: sp.sqrt(2 * energy) * sp.sin(angle)})
    assert sp.simplify(sp.diff(on_level, angle)) == 0, h  # constant on every level set of E = p²/2 + q²


def test_central_orbit_quantity_is_conserved(tmp_path):
    summary, _ = run_example("central_orbit", tmp_path, 300)
    radius, angle = FRESH.uniform(0.5, 1.5, 200), FRESH.uniform(-np.pi, np.pi, 200)
    points = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), FRESH.uniform(-1, 1, (200, 2))])

    def flow(x, y, vx, vy):
        r3 = np.hypot(x, y) ** 3
        return np.column_stack([vx, vy, -x / r3, -y / r3])

    _conservation(summary, ["x", "y", "vx", "vy"], flow, points)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", ["neo_hookean_p12", "neo_hookean_p12_no_prior"])
def test_neo_hookean_p12_with_and_without_the_linear_prior(name, seed, tmp_path):
    summary, _ = run_example(name, tmp_path, 1000, f"seed={seed}")
    formula = sp.sympify(summary["formulas"]["P12"])
    f11, f12, f13, f21, f22, f23 = sp.symbols("F11 F12 F13 F21 F22 F23")
    truth = sp.Rational(5, 12) * (f11 * f21 + f12 * f22 + f13 * f23)
    rounded = formula.xreplace({c: sp.Float(round(float(c), 6)) for c in formula.atoms(sp.Float)})
    assert sp.simplify(sp.nsimplify(rounded, rational=True) - truth) == 0, formula
    # P12 does not use F31, F32, F33: pruning removes them, or the symbolic stage zeroes their edges.
    assert set(summary["pruned_inputs"]) <= {"F31", "F32", "F33"} and "F31" in summary["pruned_inputs"]


def test_a_lagrangian_run_draws_its_accelerations_against_the_measured_ones(tmp_path):
    summary, _ = run_example("harmonic_oscillator", tmp_path, 150, "output.figures=true")
    assert "figures/pred_vs_true.png" in summary["figures"]
    assert (tmp_path / "run" / "figures" / "pred_vs_true.png").stat().st_size > 10_000


def test_a_physics_task_runs_as_a_batch(tmp_path):
    """`batch plan` + `batch run` of a Lagrangian config: every row is a task run with its own
    equation of motion, and `batch status` collects them."""
    spec = tmp_path / "sweep.yaml"
    spec.write_text(
        f"config: {ROOT / 'configs' / 'harmonic_oscillator.yaml'}\n"
        f"data: [{ROOT / 'sample_data' / 'harmonic_oscillator.csv'}]\n"
        "sweep: {output.figures: [false]}\nseeds: [0, 1]\n"
    )
    batch = tmp_path / "batch"
    commands = (["plan", str(spec), "--out", str(batch)], ["run", str(batch), "--jobs", "2"], ["status", str(batch)])
    for command in commands:
        result = CliRunner().invoke(app, ["batch", *command])
        assert result.exit_code == 0, (command, result.stdout, result.stderr)
    summaries = sorted(batch.glob("runs/*/summary.json"))
    assert len(summaries) == 2
    for path in summaries:
        task = json.loads(path.read_text())["task"]
        assert sp.simplify(sp.sympify(task["equations_of_motion"]["qddot"]) + sp.Symbol("q")) == 0
        assert task["eom_max_relative_error"] < 1e-6
    assert len((batch / "summary.csv").read_text().splitlines()) == 3
