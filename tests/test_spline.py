"""B-spline bases against an independent Cox-de Boor evaluation and scipy's BSpline."""

import numpy as np
import pytest
import torch

from kandisc.model.spline import dense_basis, fit_coefficients, local_basis, uniform_grid


def cox_de_boor(t: np.ndarray, j: int, k: int, x: np.ndarray) -> np.ndarray:
    """Textbook recursion for one basis function (independent of the library code)."""
    if k == 0:
        return ((x >= t[j]) & (x < t[j + 1])).astype(float)
    left = (x - t[j]) / (t[j + k] - t[j]) * cox_de_boor(t, j, k - 1, x)
    right = (t[j + k + 1] - x) / (t[j + k + 1] - t[j + 1]) * cox_de_boor(t, j + 1, k - 1, x)
    return left + right


def random_grid(n_in, grid, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = uniform_grid(torch.full((n_in,), -1.0, dtype=torch.float64), torch.ones(n_in, dtype=torch.float64), grid, k)
    jitter = torch.rand(base.shape, generator=g, dtype=torch.float64) * 0.15
    return torch.sort(base + jitter, dim=1).values


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_basis_matches_cox_de_boor(k):
    grid = random_grid(2, 6, k)
    x = torch.linspace(-2.5, 2.5, 401, dtype=torch.float64)[:, None].repeat(1, 2)
    basis = dense_basis(x, grid, k).numpy()
    for i in range(2):
        t = grid[i].numpy()
        for j in range(6 + k):
            ref = cox_de_boor(t, j, k, x[:, i].numpy())
            np.testing.assert_allclose(basis[:, i, j], ref, atol=1e-12)


def test_basis_matches_scipy():
    scipy_interp = pytest.importorskip("scipy.interpolate")
    k, grid = 3, random_grid(1, 5, 3, seed=3)
    x = torch.linspace(-1.9, 1.9, 301, dtype=torch.float64)[:, None]
    basis = dense_basis(x, grid, k).numpy()
    t = grid[0].numpy()
    for j in range(5 + k):
        ref = np.nan_to_num(scipy_interp.BSpline.basis_element(t[j : j + k + 2], extrapolate=False)(x[:, 0].numpy()))
        np.testing.assert_allclose(basis[:, 0, j], ref, atol=1e-12)


def test_partition_of_unity_inside_and_zero_outside():
    k, grid = 3, random_grid(3, 5, 3)
    inner_lo, inner_hi = grid[:, k], grid[:, -k - 1]
    u = torch.rand(500, 3, dtype=torch.float64)
    x = inner_lo + u * (inner_hi - inner_lo) * 0.999999
    np.testing.assert_allclose(dense_basis(x, grid, k).sum(-1).numpy(), 1.0, atol=1e-12)
    outside = torch.stack([grid[:, 0] - 0.1, grid[:, -1] + 0.1, grid[:, -1]])
    assert dense_basis(outside, grid, k).abs().max() == 0


def test_derivative_matches_finite_difference():
    k, grid = 3, random_grid(2, 5, 3)
    x = torch.rand(50, 2, dtype=torch.float64) * 1.6 - 0.8
    _, deriv = local_basis(x, grid, k)
    h = 1e-6
    plus, _ = local_basis(x + h, grid, k)
    minus, _ = local_basis(x - h, grid, k)
    np.testing.assert_allclose(deriv.numpy(), ((plus - minus) / (2 * h)).numpy(), atol=1e-6)


def test_fit_coefficients_reproduces_a_spline():
    k, grid = 3, random_grid(2, 5, 3)
    coef = torch.randn(2, 8, 3, dtype=torch.float64)
    x = torch.rand(400, 2, dtype=torch.float64) * 4.0 - 2.0  # samples in the support of every basis
    basis = dense_basis(x, grid, k)
    values = torch.einsum("bik,iko->ibo", basis, coef)
    fitted = fit_coefficients(basis.transpose(0, 1), values)
    np.testing.assert_allclose(torch.einsum("bik,iko->ibo", basis, fitted).numpy(), values.numpy(), atol=1e-8)
