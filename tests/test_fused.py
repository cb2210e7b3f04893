"""The compiled layer kernel (kandisc/model/fused.py) against the layer's tensor path."""

import pytest
import torch

from kandisc.model import fused, native
from kandisc.model.stats import layer_stats, sparsity_penalty
from tests.conftest import random_kan

F64 = torch.float64

needs_kernel = pytest.mark.skipif(not native.available(), reason="kernel not built, or KANDISC_NATIVE=0")


def tensor_path(monkeypatch):
    monkeypatch.setattr(fused, "usable", lambda *args: False)


def objective_and_gradients(model, x):
    """A regularised objective (traced forward, penalty, and the first-order plain forward) and
    its gradients with respect to every parameter and to the inputs."""
    x = x.clone().requires_grad_(True)
    pred, traces = model.forward_traced(x)
    value = pred.square().mean() + 0.3 * sparsity_penalty(traces, 1.0, 2.0) + model(x, first_order=True).pow(3).mean()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(value, [x, *params], allow_unused=True, materialize_grads=True)
    stds = [t.numeric_std.detach() for t in traces] + [layer_stats(t).input_std.detach() for t in traces]
    return value.detach(), list(grads), stds


CASES = [
    ([2, 5, 1], {}),
    ([3, [2, 2], 2], {}),  # multiplication nodes
    ([2, 4, 1], {"base_fun": "identity", "k": 2}),
    ([2, 3, 1], {"base_fun": "zero", "k": 4}),
]


@needs_kernel
@pytest.mark.parametrize(("width", "spec"), CASES)
def test_the_kernel_gives_the_tensor_paths_objective_spreads_and_gradients(width, spec, monkeypatch):
    model = random_kan(width, **spec)
    g = torch.Generator().manual_seed(5)
    x = torch.rand(120, width[0], generator=g, dtype=F64) * 2.4 - 1.2
    x[0, 0] = 4.0  # beyond the grid: only the base function
    x[1, -1] = -3.0
    assert fused.usable(x, model.layers[0])
    compiled = objective_and_gradients(model, x)
    tensor_path(monkeypatch)
    plain = objective_and_gradients(model, x)
    torch.testing.assert_close(compiled[0], plain[0], rtol=1e-12, atol=1e-14)
    for a, b in zip(compiled[1] + compiled[2], plain[1] + plain[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@needs_kernel
def test_float32_layers_run_the_kernel_too(monkeypatch):
    model = random_kan([3, 6, 2], dtype=torch.float32)
    x = torch.rand(64, 3, generator=torch.Generator().manual_seed(6)) * 2 - 1
    assert fused.usable(x, model.layers[0])
    compiled = objective_and_gradients(model, x)
    tensor_path(monkeypatch)
    plain = objective_and_gradients(model, x)
    for a, b in zip(compiled[1] + compiled[2], plain[1] + plain[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@needs_kernel
def test_split_over_threads_the_kernel_gives_the_same_numbers():
    model = random_kan([4, 6, 1])
    x = torch.rand(9000, 4, generator=torch.Generator().manual_seed(7), dtype=F64) * 2 - 1
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = objective_and_gradients(model, x)
        torch.set_num_threads(4)  # 9000 rows x 4 inputs: enough work for the kernel to split
        four = objective_and_gradients(model, x)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one[1] + one[2], four[1] + four[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


@needs_kernel
def test_a_single_row_and_a_constant_input_keep_finite_spreads_and_gradients():
    model = random_kan([2, 3, 1])
    x = torch.tensor([[0.3, -0.2]], dtype=F64)
    value, grads, stds = objective_and_gradients(model, x)
    assert all(bool(torch.isfinite(t).all()) for t in (value, *grads, *stds))
    x = torch.stack([torch.linspace(-1, 1, 20, dtype=F64), torch.full((20,), 0.5, dtype=F64)], 1)
    value, grads, stds = objective_and_gradients(model, x)  # the second input never varies
    assert all(bool(torch.isfinite(t).all()) for t in (value, *grads))
    assert float(stds[2][1]) == 0.0  # its spread, with a zero (not NaN) gradient above


@needs_kernel
def test_a_non_finite_input_reaches_the_output_as_nan():
    model = random_kan([2, 3, 1])
    x = torch.tensor([[0.1, float("nan")], [0.2, 0.3], [float("inf"), 0.0]], dtype=F64)
    with torch.no_grad():
        out = model(x)
    assert torch.isnan(out[0]).all() and torch.isnan(out[2]).all()
    assert torch.isfinite(out[1]).all()


@needs_kernel
def test_only_a_first_order_traced_or_gradient_free_forward_runs_the_kernel(monkeypatch):
    model = random_kan([2, 3, 1])
    x = torch.rand(30, 2, generator=torch.Generator().manual_seed(8), dtype=F64).requires_grad_()
    calls = []
    numeric_output = fused.numeric_output
    monkeypatch.setattr(fused, "numeric_output", lambda *args, **kw: calls.append(1) or numeric_output(*args, **kw))
    # A physics residual differentiates the default forward twice: it must stay on the tensor path.
    (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    torch.autograd.grad(grad.sum(), x)
    assert calls == []
    model(x, first_order=True)
    model.forward_traced(x)
    with torch.no_grad():
        model(x)
    assert len(calls) == 3 * model.depth


@needs_kernel
def test_a_layer_with_symbolic_edges_runs_the_kernel_except_for_its_trace(monkeypatch):
    model = random_kan([2, 3, 1])
    x = torch.rand(30, 2, generator=torch.Generator().manual_seed(9), dtype=F64)
    model.set_symbolic(0, 1, 2, "sin", [1.3, 0.2, 0.8, 0.1])
    model.set_symbolic(0, 0, 1, "x^2", [0.7, -0.1, 1.2, 0.0])
    hidden = model.layer_inputs(x)[1]
    assert fused.usable(x, model.layers[0]) and not fused.usable(x, model.layers[0], trace=True)
    assert fused.usable(hidden, model.layers[1], trace=True)
    _, traces = model.forward_traced(x)
    assert traces[0].features is not None and traces[1].features is None  # the tensor path keeps features
    params = [p for p in model.parameters() if p.requires_grad]
    compiled = model(x, first_order=True)
    grads = torch.autograd.grad(compiled.square().sum(), params, allow_unused=True, materialize_grads=True)
    tensor_path(monkeypatch)
    plain = model(x, first_order=True)
    ref_grads = torch.autograd.grad(plain.square().sum(), params, allow_unused=True, materialize_grads=True)
    torch.testing.assert_close(compiled, plain, rtol=1e-12, atol=1e-14)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_the_first_order_forward_is_the_plain_forward_without_the_kernel(monkeypatch):
    model = random_kan([2, 3, 1])
    x = torch.rand(30, 2, generator=torch.Generator().manual_seed(10), dtype=F64)
    expected = model(x, first_order=True).detach()
    tensor_path(monkeypatch)
    torch.testing.assert_close(model(x, first_order=True).detach(), expected, rtol=1e-12, atol=1e-14)
