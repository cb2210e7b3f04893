"""The physics tasks' losses: q̈ from the Euler–Lagrange equations, the conservation residual, their guards."""

import numpy as np
import pytest
import sympy as sp
import torch

from kandisc.model import ModelSpec, MultKAN
from kandisc.tasks import ConservedTask, LagrangianTask, TaskError, task_from_dict
from kandisc.tasks.base import formula_scalar
from kandisc.tasks.lagrangian import accelerations
from kandisc.tasks.scoring import TaskScorer

ROWS = torch.as_tensor(np.random.default_rng(0).uniform(-0.8, 0.8, (50, 4)))


def _qddot(text: str, names: list[str], x: torch.Tensor) -> np.ndarray:
    return accelerations(formula_scalar(sp.sympify(text), names), x, len(names) // 2).detach().numpy()


@pytest.mark.parametrize(
    "lagrangian,truth",
    [
        ("qdot**2/2 - q**2/2", lambda q, v: -q),
        ("qdot**2/2 + cos(q)", lambda q, v: -np.sin(q)),
        ("-sqrt(1 - qdot**2) + q", lambda q, v: (1 - v**2) ** 1.5),
        ("3*(qdot**2/2 - q**2/2) + 7", lambda q, v: -q),  # L is fixed only up to scale and a constant
    ],
)
def test_accelerations_of_one_coordinate(lagrangian, truth):
    x = ROWS[:, :2]
    q, v = x.numpy().T
    assert np.allclose(_qddot(lagrangian, ["q", "qdot"], x)[:, 0], truth(q, v), atol=1e-12)


def test_accelerations_use_the_mixed_block():
    # L = (v1² + 2 v2²)/2 + q1 v2 - q1 q2: a1 = v2 - q2, a2 = -(q1 + v1)/2 (the q1·v2 term couples).
    names = ["q1", "q2", "v1", "v2"]
    q1, q2, v1, v2 = ROWS.numpy().T
    got = _qddot("(v1**2 + 2*v2**2)/2 + q1*v2 - q1*q2", names, ROWS)
    assert np.allclose(got, np.column_stack([v2 - q2, -(q1 + v1) / 2]), atol=1e-12)
    task = LagrangianTask(["q1", "q2"], ["v1", "v2"], ["a1", "a2"])
    eom = task.equations_of_motion(sp.sympify("(v1**2 + 2*v2**2)/2 + q1*v2 - q1*q2"))
    assert sp.simplify(eom["a1"] - sp.sympify("v2 - q2")) == 0
    assert sp.simplify(eom["a2"] + sp.sympify("(q1 + v1)/2")) == 0


def test_singular_hessian_is_a_clear_error_not_nan():
    task = LagrangianTask(["q"], ["qdot"], ["qddot"])
    x = ROWS[:, :2]
    assert torch.isinf(task.residuals(formula_scalar(sp.sympify("q**2"), ["q", "qdot"]), x, x[:, :1])).all()
    model = MultKAN(ModelSpec.build([2, 1], seed=0), dtype=torch.float64)
    model.layers[0].remove_edges(torch.tensor([[False], [True]]))  # L no longer depends on qdot
    with pytest.raises(TaskError, match="singular at 50 of 50 training rows"):
        task.check(model, x)
    assert task.equations_of_motion(sp.sympify("q**2 + qdot")) is None


def test_kinetic_term_is_added_to_the_network():
    task = LagrangianTask(["q"], ["qdot"], ["qddot"], kinetic="qdot**2/2")
    model = MultKAN(ModelSpec.build([2, 1], seed=0), dtype=torch.float64)
    x = ROWS[:, :2]
    assert torch.allclose(task.scalar(model)(x), model(x)[:, 0] + x[:, 1] ** 2 / 2)
    assert task.total_expr(sp.Symbol("q")) == sp.Symbol("q") + sp.Symbol("qdot") ** 2 / 2


def test_conservation_residual_is_scale_free_and_zero_for_the_energy():
    task = ConservedTask(["q", "p"], ["qdot", "pdot"])
    x = ROWS[:, :2]
    flow = torch.stack([x[:, 1], -2 * x[:, 0]], 1)  # H = p²/2 + q²
    energy = task.residuals(formula_scalar(sp.sympify("p**2/2 + q**2"), ["q", "p"]), x, flow)
    assert float(energy.detach().abs().max()) < 1e-12
    wrong = task.residuals(formula_scalar(sp.sympify("p**2 + q**2"), ["q", "p"]), x, flow)
    scaled = task.residuals(formula_scalar(sp.sympify("1000*(p**2 + q**2)"), ["q", "p"]), x, flow)
    assert float(wrong.detach().abs().mean()) > 0.05
    assert torch.allclose(wrong, scaled)
    record = task.formula_record(sp.sympify("p**2/2 + q**2"), x.numpy(), flow.numpy())
    assert record == {"constant": False, "max_abs_cosine": pytest.approx(0, abs=1e-12)}
    assert task.formula_record(sp.Integer(3), x.numpy(), flow.numpy())["constant"] is True


def test_constant_h_cannot_train():
    task = ConservedTask(["q", "p"], ["qdot", "pdot"])
    model = MultKAN(ModelSpec.build([2, 1], seed=0), dtype=torch.float64)
    model.layers[0].remove_edges(torch.ones(2, 1, dtype=torch.bool))
    with pytest.raises(TaskError, match="zero gradient on every training row"):
        task.check(model, ROWS[:, :2])


def test_scorer_rates_formulas_by_the_task():
    task = LagrangianTask(["q"], ["qdot"], ["qddot"])
    x = ROWS[:, :2].numpy()
    y = -np.sin(x[:, :1])
    scorer = TaskScorer(task, sp.symbols("q qdot"), x, y, x, y)
    good, poor = sp.sympify("qdot**2/2 + cos(q)"), sp.sympify("qdot**2/2 - q**2/2")
    assert scorer.rmse(good) < 1e-12 < scorer.rmse(poor)
    assert scorer.candidate(good, "model").test_r2 == pytest.approx(1.0)
    refitted = scorer.refit(sp.sympify("qdot**2/2 + 0.9*cos(1.1*q)"))
    assert scorer.rmse(refitted) < 1e-6


def test_task_round_trips_through_its_dict():
    for task in (LagrangianTask(["q"], ["v"], ["a"], "v**2/2"), ConservedTask(["q", "p"], ["p", "f"])):
        again = task_from_dict(task.to_dict())
        assert type(again) is type(task) and again.to_dict() == task.to_dict()
    assert task_from_dict({}) is None


def test_train_takes_a_residual_and_regression_is_unchanged():
    from kandisc.train import Dataset, TrainSettings, regression_residual, train

    x = ROWS[:40, :2]
    y = (x[:, :1] * x[:, 1:]).clone()
    data = Dataset(x[:30], y[:30], x[30:], y[30:])
    settings = TrainSettings(steps=3, update_grid=False)
    default, explicit = (MultKAN(ModelSpec.build([2, 2, 1], seed=0), dtype=torch.float64) for _ in range(2))
    plain = train(default, data, settings)
    given = train(explicit, data, settings, residual=regression_residual)
    assert [r.train_loss for r in plain.history] == [r.train_loss for r in given.history]
    states = zip(default.state_dict().values(), explicit.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in states)
    task = LagrangianTask(["q"], ["qdot"], ["qddot"], kinetic="qdot**2/2")
    model = MultKAN(ModelSpec.build([2, 1], seed=0), dtype=torch.float64)
    qddot = -x[:, :1]
    before = task.metrics(task.scalar(model), x.numpy(), qddot.numpy())[0]
    result = train(model, Dataset(x, qddot, x[:0], qddot[:0]), settings, residual=task.residual)
    assert result.history[-1].train_loss < 0.5 * before  # the q̈ loss, not the values of L, went down
