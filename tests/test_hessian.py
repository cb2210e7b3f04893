"""Second (and third) derivatives through the engine against finite differences, on both paths."""

import pytest
import torch

from kandisc.compile import compile_bundle
from kandisc.knowledge.prior import model_from_prior
from kandisc.model import ModelSpec, MultKAN, basis_layout, native, spline
from kandisc.structure import third_derivatives, value_gradient_hessian

F64 = torch.float64


@pytest.fixture(params=["native", "eager"])
def path(request, monkeypatch):
    """Run the test on the compiled kernel (when built) and on the eager torch path."""
    if request.param == "native" and not native.available():
        pytest.skip("compiled kernel not available")
    if request.param == "eager":
        monkeypatch.setattr(native, "usable", lambda *args: False)
    return request.param


def gradient(fn, x):
    x = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    return g


def central(fn, x, step):
    """Central differences of the row-wise vector function fn (B, n) -> (B, m): (B, n, m)."""
    cols = []
    for i in range(x.shape[1]):
        e = torch.zeros_like(x)
        e[:, i] = step
        cols.append(((fn(x + e) - fn(x - e)) / (2 * step)).detach())
    return torch.stack(cols, dim=1)


def assert_relative(actual, expected, tol=1e-6):
    err = float((actual - expected).abs().max() / expected.abs().max())
    assert err < tol, f"relative error {err:.2e}"
    return err


def rows(n_in, count=40, seed=0, low=-0.9, high=0.9):
    gen = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(count, n_in, generator=gen, dtype=F64)


def mixed_model():
    """Spline edges under a multiplication node plus a symbolic edge: every edge kind at once."""
    model = MultKAN(ModelSpec.build([3, [2, 2], 1], grid=4, seed=2, noise_scale=1.0))
    model.set_symbolic(0, 1, 3, "sin", [1.3, 0.2, 0.7, -0.1])
    model.set_symbolic(1, 2, 0, "x^2", [0.8, 0.1, 0.5, 0.0])
    return model


MODELS = {
    "sum nodes": lambda: MultKAN(ModelSpec.build([3, 4, 2, 1], grid=5, seed=1, noise_scale=1.0)),
    "mult node": lambda: MultKAN(ModelSpec.build([2, [0, 1], 1], grid=5, seed=0, noise_scale=1.0)),
    "mixed": mixed_model,
    "symbolic": lambda: compile_bundle("x*exp(y) + sin(x*z)").model,
    "prior + splines": lambda: model_from_prior("x*y + z**2", ["x", "y", "z"], ["f"], spline_magnitude=0.3),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_hessian_matches_finite_differences_of_the_gradient(name, path):
    model = MODELS[name]()
    fn = lambda v: model(v)[:, 0]  # noqa: E731
    x = rows(model.spec.n_inputs)
    f, g, H = value_gradient_hessian(fn, x)
    torch.testing.assert_close(f, fn(x).detach(), rtol=1e-14, atol=1e-14)
    assert_relative(g, central(lambda v: fn(v)[:, None], x, 1e-6)[..., 0])
    assert_relative(H, central(lambda v: gradient(fn, v), x, 1e-5))
    assert torch.allclose(H, H.transpose(1, 2), rtol=1e-10, atol=1e-12)
    assert H.abs().max() > 0


def test_a_product_model_has_its_cross_derivative(path):
    model = compile_bundle("x*y").model  # what once came back as 0 from autograd.functional.hessian
    prior = model_from_prior("x*y", ["x", "y"], ["f"], spline_magnitude=0.0)
    for m in (model, prior):
        x = rows(2, count=3)
        H = torch.autograd.functional.hessian(lambda v, m=m: m(v).sum(), x)  # (B, 2, B, 2)
        cross = torch.stack([H[b, 0, b, 1] for b in range(3)])
        torch.testing.assert_close(cross, torch.ones(3, dtype=F64), rtol=1e-12, atol=1e-12)


def test_create_graph_gives_a_differentiable_gradient_of_a_spline_model(path):
    model = MODELS["sum nodes"]()
    x = rows(3, count=8).requires_grad_()
    (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g[:, 0].sum(), x)
    _, _, H = value_gradient_hessian(lambda v: model(v)[:, 0], x)
    torch.testing.assert_close(gg, H[:, 0, :], rtol=1e-10, atol=1e-12)


def test_third_derivatives_match_finite_differences_of_the_hessian(path):
    model = mixed_model()
    fn = lambda v: model(v)[:, 0]  # noqa: E731
    x = rows(3, count=20, seed=3)
    T = third_derivatives(fn, x)
    numeric = central(lambda v: value_gradient_hessian(fn, v)[2].flatten(1), x, 1e-5)  # (B, i, jk)
    assert_relative(T.flatten(2), numeric, tol=1e-5)  # third differences carry more rounding


@pytest.mark.parametrize("base_fun", ["silu", "identity", "zero"])
@pytest.mark.parametrize("k", [2, 3])
def test_every_derivative_order_of_the_features_is_the_derivative_of_the_one_below(base_fun, k, path):
    grid = spline.uniform_grid(torch.tensor([-1.0, 0.0], dtype=F64), torch.tensor([1.0, 3.0], dtype=F64), 6, k)
    table = spline.basis_table(grid, k)
    x = torch.stack([rows(1, 60, seed=5)[:, 0], 1.5 + 1.4 * rows(1, 60, seed=6)[:, 0]], dim=1)
    for order in range(1, basis_layout.MAX_DERIVATIVE + 1):
        below = lambda v, d=order - 1: spline.basis_features(v, grid, k, base_fun, table, order=d)  # noqa: E731
        step = 1e-6
        numeric = (below(x + step) - below(x - step)) / (2 * step)
        exact = spline.basis_features(x, grid, k, base_fun, table, order=order)
        assert torch.allclose(exact, numeric, rtol=1e-6, atol=1e-6 * float(numeric.abs().max()))


def test_a_fourth_derivative_is_refused_not_silently_zero(path):
    model = MODELS["sum nodes"]()
    x = rows(3, count=4).requires_grad_()
    out = model(x).sum()
    for _ in range(3):
        (g,) = torch.autograd.grad(out, x, create_graph=True)
        out = g.sum()
    with pytest.raises(RuntimeError, match="derivative of order 4"):
        torch.autograd.grad(out, x)
