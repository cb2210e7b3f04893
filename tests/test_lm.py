"""Levenberg-Marquardt (kandisc/lm.py) and its use as `opt: lm`."""

import pytest
import torch

from kandisc.errors import ConfigError
from kandisc.io.config import load_config
from kandisc.lm import MAX_PARAMETERS, LevenbergMarquardt
from kandisc.model import ModelSpec, MultKAN
from kandisc.train import TrainSettings, train
from tests.conftest import make_dataset


def test_recovers_the_parameters_of_a_nonlinear_curve():
    x = torch.linspace(0, 2, 50, dtype=torch.float64)
    y = 1.5 * torch.exp(-0.7 * x) + 0.3
    a, b, c = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.0, -0.1, 0.0))
    opt = LevenbergMarquardt([a, b, c])
    for _ in range(40):
        cost = opt.step(lambda: a * torch.exp(b * x) + c - y)
    assert cost < 1e-24
    torch.testing.assert_close(torch.stack([a, b, c]).detach(), torch.tensor([1.5, -0.7, 0.3], dtype=torch.float64))


def test_a_failed_iteration_leaves_the_parameters_unchanged():
    w = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = LevenbergMarquardt([w])
    # The residuals do not depend on w: no step can lower the cost, so none is taken.
    cost = opt.step(lambda: torch.ones(3, dtype=torch.float64) + 0 * w)
    assert cost == 3.0 and float(w.detach()) == 2.0


def test_refuses_large_models():
    big = torch.zeros(MAX_PARAMETERS + 1, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ConfigError, match="opt: lm .* at most 3000 trainable parameters"):
        LevenbergMarquardt([big])


def test_train_rejects_lm_with_regularisation_or_batches():
    data = make_dataset(lambda x: x[:, [0]], 1, n=50)
    model = MultKAN(ModelSpec.build([1, 1]))
    with pytest.raises(ValueError, match="set lamb: 0 and batch: -1"):
        train(model, data, TrainSettings(steps=1, opt="lm", lamb=0.01))
    with pytest.raises(ValueError, match="set lamb: 0 and batch: -1"):
        train(model, data, TrainSettings(steps=1, opt="lm", batch=10))


def test_config_rejects_lm_with_regularisation(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("pipeline:\n  - fit: {steps: 5, opt: lm, lamb: 0.01}\n")
    with pytest.raises(ConfigError, match=r"pipeline\[0\]\.fit: opt lm minimises the squared error"):
        load_config(cfg, [])
    cfg.write_text("pipeline:\n  - fit: {steps: 5, opt: LM}\n")
    assert load_config(cfg, []).pipeline[0].opt == "lm"


def test_lm_stage_in_a_pipeline(tmp_path):
    from kandisc.api import fit_run

    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "model: {width: [2, [0, 1], 1], base_fun: identity}\n"
        "pipeline:\n  - fit: {steps: 5, update_grid: false}\n  - fit: {steps: 8, opt: lm, update_grid: false}\n"
        "output: {figures: false}\n"
    )
    result = fit_run("sample_data/product.csv", config=str(cfg), out=str(tmp_path / "run"))
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    lm_rows = [line for line in metrics if "fit 2" in line]
    assert len(lm_rows) == 8
    assert result.summary["test_r2"]["f"] > 0.999


def test_a_parameter_that_leaves_the_domain_is_held_still():
    x = torch.linspace(0.5, 2.0, 30, dtype=torch.float64)
    y = 2.0 * x + 1.0
    a = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)  # sqrt(b) is NaN for any b < 0
    opt = LevenbergMarquardt([a, b])
    for _ in range(30):
        cost = opt.step(lambda: a * x + 1.0 + torch.sqrt(b) - y)
    assert cost < 1e-20 and float(b.detach()) == 0.0


def test_the_jacobian_skips_the_entries_the_model_masks_out_and_takes_the_same_steps(monkeypatch):
    """A retrain once every edge is a formula: the constants of removed edges and the masked
    splines cannot move the output, so their Jacobian columns are zero without differencing;
    the steps are the ones a full Jacobian takes, to the last bit, for fewer residual evaluations."""

    def fit(live: bool):
        model = MultKAN(ModelSpec.build([2, 2, 1], seed=0))
        first, second = model.layers
        first.set_symbolic(0, 0, "sin", (1.1, 0.2, 0.9, 0.0))
        first.set_symbolic(1, 0, "x^2", (0.8, -0.1, 0.6, 0.1))
        first.remove_edges(torch.tensor([[False, True], [False, True]]))
        second.set_symbolic(0, 0, "exp", (0.7, 0.0, 1.2, -0.3))
        second.remove_edge(1, 0)
        if not live:
            monkeypatch.setattr(MultKAN, "live_entries", lambda self: {})
        calls = [0]
        forward = MultKAN.forward

        def counted(self, *args, **kwargs):
            calls[0] += 1
            return forward(self, *args, **kwargs)

        monkeypatch.setattr(MultKAN, "forward", counted)
        data = make_dataset(lambda x: torch.exp(torch.sin(1.3 * x[:, [0]]) + 0.5 * x[:, [1]] ** 2), 2, n=120)
        train(model, data, TrainSettings(steps=3, opt="lm", update_grid=False))
        monkeypatch.undo()
        return [p.detach().clone() for p in model.parameters()], calls[0]

    skipping, skipped_calls = fit(live=True)
    full, full_calls = fit(live=False)
    assert all(torch.equal(a, b) for a, b in zip(skipping, full, strict=True))
    assert skipped_calls < full_calls / 2
