"""Prior formulas: exact at zero spline magnitude, trainable capacity, model files as priors."""

import math

import pytest
import torch

from kandisc.compile import compile_bundle
from kandisc.errors import ConfigError, FormulaError
from kandisc.io.model_file import load_model, save_model
from kandisc.io.scaling import Scaling
from kandisc.knowledge.formula import to_torch_function
from kandisc.knowledge.prior import model_from_prior, prior_from_bundle
from kandisc.train import Dataset, TrainSettings, rmse, train


def _x(n_in, n=300, seed=0, lo=-1.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, n_in, generator=g, dtype=torch.float64) * (hi - lo) + lo


@torch.no_grad()
def _max_err(model, text, names, x):
    return float((model(x)[:, 0] - to_torch_function(text, names)(x)).abs().max())


@pytest.mark.parametrize(
    ("text", "width", "depth"),
    [
        ("x*y", 0, 0),
        ("x*y", 2, 1),
        ("sin(x*y) + z*w", 3, 2),
        ("exp(sin(x) + y**2) * z", 1, 1),
    ],
)
def test_zero_magnitude_computes_the_prior_exactly(text, width, depth):
    names = ["x", "y", "z", "w"]
    model = model_from_prior(text, names, ["f"], extra_width=width, extra_depth=depth, spline_magnitude=0.0)
    assert model.spec.n_inputs == 4
    assert _max_err(model, text, names, _x(4)) < 1e-12
    for kan in model.layers:  # every edge has its spline on (training may grow it)
        assert bool((kan.num_mask == 1).all())


def test_small_magnitude_stays_close_and_capacity_is_added():
    names = ["x", "y", "z"]
    model = model_from_prior("x*y", names, ["f"], extra_width=2, extra_depth=1, spline_magnitude=0.01)
    assert model.spec.display_width() == [3, [2, 1], 1]
    assert 0 < _max_err(model, "x*y", names, _x(3)) < 0.1
    assert model.layers[0].sym_mask.sum() == 2 and model.layers[1].sym_mask.sum() == 1
    assert all(p.requires_grad for p in model.node_scale) and all(p.requires_grad for p in model.subnode_bias)


def test_training_learns_what_the_prior_misses():
    x = _x(3, n=800)
    y = (x[:, 0] * x[:, 1] + 0.5 * torch.sin(math.pi * x[:, 2]))[:, None]
    data = Dataset(x[:400], y[:400], x[400:], y[400:])
    model = model_from_prior("x*y", ["x", "y", "z"], ["f"], extra_width=2, extra_depth=1)
    before = rmse(model, data.x_test, data.y_test)
    train(model, data, TrainSettings(steps=15))
    after = rmse(model, data.x_test, data.y_test)
    assert before > 0.3 and after < 0.05 * before


def test_errors():
    with pytest.raises(FormulaError, match=r"'q'.*known: x, y"):
        model_from_prior("x + q", ["x", "y"], ["f"])
    with pytest.raises(ConfigError, match="one target"):
        model_from_prior("x", ["x"], ["f", "g"])
    with pytest.raises(ConfigError, match="extra_width"):
        model_from_prior("x", ["x"], ["f"], extra_width=-1)


def test_normalization_is_folded_in():
    norm = Scaling.from_dict({"x_mean": [0.5, -1.0], "x_std": [2.0, 3.0], "y_mean": [4.0], "y_std": [0.5]})
    model = model_from_prior("sin(x) + y**2", ["x", "y"], ["f"], spline_magnitude=0.0, normalization=norm)
    x_raw = _x(2)
    x_n = norm.x_to_model(x_raw)
    want = (torch.sin(x_raw[:, 0]) + x_raw[:, 1] ** 2 - 4.0) / 0.5
    with torch.no_grad():
        assert float((model(x_n)[:, 0] - want).abs().max()) < 1e-12


def prior_from_model_file(path, *args, **kwargs):
    return prior_from_bundle(load_model(path), *args, **kwargs)


def test_model_file_as_prior(tmp_path):
    path = save_model(compile_bundle("x*y"), tmp_path / "prior.pt")
    model = prior_from_model_file(path, ["z", "x", "y"], ["f"], spline_magnitude=0.0)
    x = _x(3)
    with torch.no_grad():
        assert float((model(x)[:, 0] - x[:, 1] * x[:, 2]).abs().max()) < 1e-12
    assert bool((model.layers[0].num_mask == 1).all()) and all(p.requires_grad for p in model.node_bias)
    with pytest.raises(ConfigError, match="targets are g"):
        prior_from_model_file(path, ["x", "y"], ["g"])
    with pytest.raises(ConfigError, match="lacks"):
        prior_from_model_file(path, ["x", "w"], ["f"])
    trained = compile_bundle("x*y")
    trained.model.set_numeric(0, 0, 0)
    norm = Scaling.identity(2, 1)
    with pytest.raises(ConfigError, match="standardize: false"):
        prior_from_model_file(save_model(trained, tmp_path / "t.pt"), ["x", "y"], ["f"], 0.01, norm)
    bundle = compile_bundle("x*y")
    bundle.normalization = Scaling.identity(2, 1)
    with pytest.raises(ConfigError, match="standardi"):
        prior_from_model_file(save_model(bundle, tmp_path / "n.pt"), ["x", "y"], ["f"])
