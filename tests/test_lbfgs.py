"""kandisc.lbfgs.FlatLBFGS takes the path torch.optim.LBFGS(line_search_fn="strong_wolfe") takes."""

import pytest
import torch

from kandisc.lbfgs import FlatLBFGS


def problem(dtype=torch.float64):
    """Two parameter tensors of a curved valley (Rosenbrock-like) coupled by a quartic term."""
    v = torch.tensor([-1.2, 1.0, 0.5, -0.3], dtype=dtype, requires_grad=True)
    w = torch.tensor([[0.3, -0.2], [0.1, 0.4]], dtype=dtype, requires_grad=True)

    def objective():
        valley = (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2 + (1 - v[2]) ** 2 + 50 * (v[3] - v[2] ** 2) ** 2
        return valley + 0.1 * w.square().sum() + (w[0, 0] - v[0]) ** 4

    return [v, w], objective


def run(kind, steps=4, dtype=torch.float64, **options):
    params, objective = problem(dtype)
    if kind == "torch":
        opt = torch.optim.LBFGS(params, line_search_fn="strong_wolfe", **options)
    else:
        opt = FlatLBFGS(params, **options)

    def closure():
        opt.zero_grad()
        value = objective()
        value.backward()
        return value

    firsts = [float(opt.step(closure).detach()) for _ in range(steps)]
    state = opt.state[params[0]] if kind == "torch" else opt.state
    return firsts, state["func_evals"], state["n_iter"], [p.detach().clone() for p in params]


@pytest.mark.parametrize(
    "options",
    [
        {"max_iter": 20, "history_size": 10, "tolerance_grad": 1e-32, "tolerance_change": 1e-32},  # training's
        {"max_iter": 30, "tolerance_grad": 1e-20, "tolerance_change": 1e-24},  # the constant refit's
        {"max_iter": 5, "history_size": 3, "lr": 0.5},  # a short history, torch's own tolerances
    ],
)
def test_the_flat_optimiser_takes_torchs_path(options):
    # Two steps (40-odd trial points): far enough to use the history, line search and zoom, and
    # short of where the valley's curvature turns rounding differences (dot products summed in
    # another order) into a different trial point.
    ref_losses, ref_evals, ref_iters, ref_params = run("torch", steps=2, **options)
    losses, evals, iters, params = run("flat", steps=2, **options)
    assert (evals, iters) == (ref_evals, ref_iters)  # the same trial points, one by one
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(ref_losses), rtol=1e-9, atol=1e-12)
    for a, b in zip(params, ref_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # the quartic direction is flat
    longer = run("flat", steps=6, **options)[0]
    assert longer[-1] < 0.05 * longer[0] and longer == sorted(longer, reverse=True)  # and it minimises


def test_float32_parameters_are_optimised_in_place():
    losses, _, _, params = run("flat", steps=3, dtype=torch.float32, max_iter=20, history_size=10)
    assert params[0].dtype == torch.float32 and losses[-1] < 0.1


def test_a_zero_gradient_ends_the_step_after_one_evaluation():
    x = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = FlatLBFGS([x])
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        value = (x**2).sum()
        value.backward()
        return value

    assert float(opt.step(closure).detach()) == 0.0 and len(calls) == 1
    assert torch.equal(x.detach(), torch.zeros(3, dtype=torch.float64))


def test_a_huge_loss_with_no_gradient_makes_the_line_search_back_off():
    """The training closure answers a non-finite objective with 1e300 and zero gradients."""
    x = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    opt = FlatLBFGS([x], max_iter=10)

    def closure():
        opt.zero_grad()
        if float(x.detach()) < 0:  # the objective's domain ends at 0
            x.grad = torch.zeros_like(x)
            return torch.tensor(1e300, dtype=torch.float64)
        value = (x - 1) ** 2 + torch.log(x + 1e-3)
        value.backward()
        return value

    for _ in range(3):
        opt.step(closure)
    assert 0 < float(x.detach()) < 3 and torch.isfinite(x).all()


def test_parameters_off_the_cpu_are_refused():
    with pytest.raises(ValueError, match="CPU"):
        FlatLBFGS([torch.zeros(3, device="meta", requires_grad=True)])
