"""Training accuracy targets, determinism and the non-finite loss guard."""

import math

import torch

from kandisc.model import ModelSpec, MultKAN
from kandisc.model.spline import dense_basis, uniform_grid
from kandisc.train import Dataset, TrainSettings, train
from tests.conftest import make_dataset


def best_uniform_spline_rmse(fn, n_intervals: int, k: int = 3) -> float:
    """RMSE on [-1, 1] of the best least-squares fit by a [1,1] KAN edge (constant + SiLU + the
    B-splines of ``n_intervals`` uniform intervals): no training can go below it."""
    x = torch.linspace(-1, 1, 20001, dtype=torch.float64)[:, None]
    grid = uniform_grid(
        torch.tensor([-1.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64), n_intervals, k
    )
    columns = torch.cat([torch.ones_like(x), torch.nn.functional.silu(x), dense_basis(x, grid, k)[:, 0]], dim=1)
    coef = torch.linalg.lstsq(columns, fn(x)).solution
    return float(torch.sqrt(torch.mean((columns @ coef - fn(x)) ** 2)))


def test_fits_sin_pi_x_with_one_edge():
    # The issue asked for test RMSE < 1e-4 at G=10, but the best possible uniform-grid cubic spline
    # is at 1.17e-4 (computed here); training reaches that floor, and G=20 goes well below 1e-4.
    def fn(x):
        return torch.sin(math.pi * x)

    floor = best_uniform_spline_rmse(fn, 10)
    assert 1.1e-4 < floor < 1.25e-4
    data = make_dataset(fn, 1, n=500)
    model = MultKAN(ModelSpec.build([1, 1], grid=10))
    result = train(model, data, TrainSettings(steps=40, update_grid=False))
    assert result.history[-1].test_loss < 1.03 * floor
    model.refine(data.x_train, 20)
    result = train(model, data, TrainSettings(steps=20))
    assert result.history[-1].test_loss < 5e-5


def test_fits_exp_sin_plus_square(expsin_data):
    model = MultKAN(ModelSpec.build([2, 5, 1], grid=5))
    train(model, expsin_data, TrainSettings(steps=40))
    model.refine(expsin_data.x_train, 20)
    result = train(model, expsin_data, TrainSettings(steps=40))
    assert result.history[-1].test_loss < 1e-3


def test_mult_node_fits_product():
    # LBFGS stalls near 1e-4 on x*y (flat valleys: base and spline both represent a line, and the
    # mult node trades scale between its factors); Levenberg-Marquardt goes to machine precision
    # (benchmarks/exact_fits.py, seeds 0-5: four reach ~1e-16, two 5e-7 to 9e-7).
    data = make_dataset(lambda x: x[:, [0]] * x[:, [1]], 2, n=400)
    model = MultKAN(ModelSpec.build([2, [0, 1], 1], base_fun="identity"))
    result = train(model, data, TrainSettings(steps=30, update_grid=False))
    assert result.history[-1].test_loss < 1e-3
    model = MultKAN(ModelSpec.build([2, [0, 1], 1], base_fun="identity"))
    result = train(model, data, TrainSettings(steps=40, opt="lm", update_grid=False))
    assert result.history[-1].test_loss < 1e-6


def test_same_seed_same_result(expsin_data):
    runs = []
    for _ in range(2):
        model = MultKAN(ModelSpec.build([2, 3, 1], seed=7))
        train(model, expsin_data, TrainSettings(steps=3, batch=64), torch.Generator().manual_seed(1))
        runs.append(model(expsin_data.x_test).detach())
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)


def test_nonfinite_batch_rolls_back_to_finite_weights(expsin_data):
    bad = expsin_data.y_train.clone()
    bad[::7] = float("nan")  # every mini-batch now contains NaN targets
    data = Dataset(expsin_data.x_train, bad, expsin_data.x_test, expsin_data.y_test)
    model = MultKAN(ModelSpec.build([2, 3, 1]))
    result = train(model, data, TrainSettings(steps=10, batch=100, opt="adam", lr=1e-2))
    assert result.status == "nonfinite"
    assert "non-finite" in result.message
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_regularised_training_records_penalty(expsin_data):
    model = MultKAN(ModelSpec.build([2, 3, 1]))
    seen = []
    train(model, expsin_data, TrainSettings(steps=3, lamb=1e-2), callback=seen.append)
    assert len(seen) == 3 and all(r.reg > 0 for r in seen)
