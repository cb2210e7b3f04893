"""The hand-written objective and gradient (kandisc/model/direct.py) against autograd's."""

import math

import pytest
import torch

from kandisc import train as training
from kandisc.defaults import TrainSettings
from kandisc.model import direct, native
from tests.conftest import random_kan

F64 = torch.float64

needs_kernel = pytest.mark.skipif(not native.available(), reason="kernel not built, or KANDISC_NATIVE=0")


def random_model(width, seed=0, dtype=F64, trainable_affines=False, **spec):
    """:func:`tests.conftest.random_kan` with every affine moved off the identity (and trained or not)."""
    model = random_kan(width, seed, dtype, **spec)
    g = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for params in (model.subnode_scale, model.subnode_bias, model.node_scale, model.node_bias):
            for p in params:
                p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=F64))
                p.requires_grad_(trainable_affines)
    return model


def rows(width, n=150, dtype=F64, seed=5):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, width[0], generator=g, dtype=F64) * 2.4 - 1.2
    x[0, 0] = 4.0  # beyond the grid: only the base function
    y = torch.randn(n, 1, generator=g, dtype=F64).expand(n, 2 if width[-1] == 2 else 1).contiguous()
    return x.to(dtype), y.to(dtype)


def autograd_values_and_grads(model, x, y, s):
    model.zero_grad()
    objective, mse, reg = training._objective(model, x, y, s)
    objective.backward()
    values = tuple(float(v.detach()) for v in (objective, mse, reg))
    return values, {n: p.grad for n, p in model.named_parameters()}


CASES = [
    ([2, 5, 1], {}),
    ([3, [2, 2], [1, 1]], {}),  # multiplication nodes in both layers
    ([3, [1, 3], 2], {}),  # one product of three factors, two outputs
    ([2, 4, 1], {"base_fun": "identity", "k": 2}),
]


@needs_kernel
@pytest.mark.parametrize("lamb", [0.0, 0.01])
@pytest.mark.parametrize(("width", "spec"), CASES)
def test_the_objective_and_every_gradient_are_autograds(width, spec, lamb):
    model = random_model(width, trainable_affines=True, **spec)
    x, y = rows(width)
    s = TrainSettings(lamb=lamb)
    assert direct.covers(model, x, spread=lamb > 0)
    expected, grads = autograd_values_and_grads(model, x, y, s)
    model.zero_grad()
    got = direct.Objective(model, x, y, s.lamb, s.lamb_l1, s.lamb_entropy)()
    assert got == pytest.approx(expected, rel=1e-13, abs=1e-15)
    assert (got[2] > 0) == (lamb > 0)
    for name, p in model.named_parameters():
        if grads[name] is None:  # unused (the symbolic parameters): left unset, as autograd leaves it
            assert p.grad is None, name
            continue
        assert p.grad is not None, name
        scale = float(grads[name].abs().max()) + 1e-300
        assert float((p.grad - grads[name]).abs().max()) <= 1e-12 * scale, name


@needs_kernel
def test_float32_and_frozen_affines():
    model = random_model([2, [0, 2], 1], dtype=torch.float32)
    x, y = rows([2, 1], dtype=torch.float32)
    s = TrainSettings(lamb=0.01)
    expected, grads = autograd_values_and_grads(model, x, y, s)
    model.zero_grad()
    got = direct.Objective(model, x, y, s.lamb, s.lamb_l1, s.lamb_entropy)()
    assert got == pytest.approx(expected, rel=1e-5)
    for name, p in model.named_parameters():
        if not p.requires_grad or grads[name] is None:
            assert p.grad is None, name
        else:
            assert torch.allclose(p.grad, grads[name], rtol=1e-4, atol=1e-6), name


@needs_kernel
def test_without_a_gradient_nothing_is_set_and_a_nonfinite_objective_skips_the_backward():
    model = random_model([2, 5, 1])
    x, y = rows([2, 5, 1])
    objective = direct.Objective(model, x, y, 0.01, 1.0, 2.0)
    value = objective(gradient=False)
    assert math.isfinite(value[0])
    assert all(p.grad is None for p in model.parameters())
    y_bad = y.clone()
    y_bad[3, 0] = math.inf
    assert direct.Objective(model, x, y_bad, 0.0, 1.0, 2.0)()[0] == math.inf
    assert all(p.grad is None for p in model.parameters())


@needs_kernel
def test_symbolic_edges_and_their_parameters_get_autograds_gradient():
    """A retrain: symbolic edges in both layers (one fed by an inner node, so its gradient goes
    on into the first layer; one both symbolic and numeric, as a prior's), no penalty."""
    model = random_model([3, [2, 2], [1, 1]], trainable_affines=True)
    model.layers[0].set_symbolic(1, 2, "sin", (1.3, 0.2, 0.7, -0.1))
    model.layers[0].set_symbolic(2, 0, "x^2", (0.8, -0.3, 1.1, 0.05))
    model.layers[1].set_symbolic(0, 0, "exp", (0.5, 0.1, 0.9, 0.0))
    model.layers[1].set_symbolic(3, 1, "sin", (1.1, -0.4, 0.6, 0.2))
    with torch.no_grad():
        model.layers[1].num_mask[3, 1] = 1.0  # symbolic and numeric at once
    x, y = rows([3, [2, 2], [1, 1]])
    s = TrainSettings()
    assert direct.covers(model, x, spread=False) and not direct.covers(model, x, spread=True)
    expected, grads = autograd_values_and_grads(model, x, y, s)
    model.zero_grad()
    got = direct.Objective(model, x, y, 0.0, s.lamb_l1, s.lamb_entropy)()
    assert got == pytest.approx(expected, rel=1e-13, abs=1e-15)
    for name, p in model.named_parameters():
        assert (p.grad is None) == (grads[name] is None), name
        if p.grad is not None:
            scale = float(grads[name].abs().max()) + 1e-300
            assert float((p.grad - grads[name]).abs().max()) <= 1e-12 * scale, name
    assert float(model.layers[1].sym_params.grad.abs().sum()) > 0


@needs_kernel
def test_a_layer_whose_every_edge_is_symbolic_skips_the_kernel_with_autograds_numbers():
    """The last retrains: every edge of the second layer a formula, its splines frozen."""
    model = random_model([2, 3, 1], trainable_affines=True)
    last = model.layers[1]
    for i, name in enumerate(["sin", "x^2", "exp"]):
        last.set_symbolic(i, 0, name, (0.9, 0.1 * i, 0.7, 0.05))
    for p in (last.coef, last.scale_base, last.scale_sp):
        p.requires_grad_(False)
    x, y = rows([2, 3, 1])
    expected, grads = autograd_values_and_grads(model, x, y, TrainSettings())
    model.zero_grad()
    got = direct.Objective(model, x, y, 0.0, 1.0, 2.0)()
    assert got == pytest.approx(expected, rel=1e-13, abs=1e-15)
    for name, p in model.named_parameters():
        assert (p.grad is None) == (grads[name] is None), name
        if p.grad is not None:
            assert torch.allclose(p.grad, grads[name], rtol=1e-12, atol=1e-15), name
    assert model.layers[0].coef.grad is not None  # the gradient went on through the formulas


@needs_kernel
def test_what_it_does_not_cover_goes_through_autograd():
    model = random_model([2, 5, 1])
    x, _ = rows([2, 5, 1])
    assert direct.covers(model, x, spread=True)
    assert not direct.covers(model, x, spread=True, lamb_coef=0.1)
    assert not direct.covers(model, x.clone().requires_grad_(True), spread=False)
    model.layers[1].set_symbolic(0, 0, "sin", (1.0, 0.0, 1.0, 0.0))
    assert not direct.covers(model, x, spread=True)  # a penalty on symbolic edges: the tensor path's statistics
    assert direct.covers(model, x, spread=False)
    s = TrainSettings()
    assert training._direct(random_model([2, 5, 1]), x, s, residual=None)
    assert not training._direct(random_model([2, 5, 1]), x, s, residual=training.regression_residual)
    assert not training._direct(random_model([2, 5, 1]), x, TrainSettings(lamb=0.01, lamb_coef=0.5), None)
    assert not training._direct(model, x, TrainSettings(lamb=0.01), None)


def fit_history(monkeypatch, use_direct: bool, width, steps=8):
    if not use_direct:
        monkeypatch.setattr(training, "_direct", lambda *args: False)
    model = random_model(width)
    x, y = rows(width, n=200)
    data = training.Dataset(x[:160], y[:160], x[160:], y[160:])
    result = training.train(model, data, TrainSettings(steps=steps, lamb=0.01))
    monkeypatch.undo()
    history = [(r.train_loss, r.test_loss, r.reg) for r in result.history]
    return history, [p.detach().clone() for p in model.parameters()]


@needs_kernel
@pytest.mark.parametrize(("width", "steps"), [([2, 5, 1], 8), ([3, [2, 2], [1, 1]], 2)])
def test_a_fit_takes_the_autograd_path_to_rounding(monkeypatch, width, steps):
    """The objective and gradient agree to rounding, so a regularised fit takes the same steps;
    rounding differences (products summed in another order) grow from step to step, so the
    network with product nodes is compared over two steps."""
    history, params = fit_history(monkeypatch, True, width, steps)
    expected_history, expected_params = fit_history(monkeypatch, False, width, steps)
    assert len(history) == len(expected_history) == steps
    assert history[0] == pytest.approx(expected_history[0], rel=1e-10)
    for got, expected in zip(history, expected_history, strict=True):
        assert got == pytest.approx(expected, rel=1e-6)
    for got, expected in zip(params, expected_params, strict=True):
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-7)
