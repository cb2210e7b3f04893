"""The compiled feature kernel (kandisc/model/_basis_native.c) against the eager torch path."""

import os
import shutil

import pytest
import torch

from kandisc.model import ModelSpec, MultKAN, basis_layout, native, spline

HAS_COMPILER = any(shutil.which(cc) for cc in ("cc", "gcc", "clang"))
KERNEL_SWITCHED_OFF = os.environ.get("KANDISC_NATIVE", "1") == "0"  # the documented eager-path run
needs_kernel = pytest.mark.skipif(not native.available(), reason="kernel not built, or KANDISC_NATIVE=0")


def knots(low: list[float], high: list[float], n_intervals: int, k: int) -> torch.Tensor:
    f64 = torch.float64
    return spline.uniform_grid(torch.tensor(low, dtype=f64), torch.tensor(high, dtype=f64), n_intervals, k)


@pytest.fixture
def eager(monkeypatch):
    """Within the test, force the eager torch path."""

    def force():
        monkeypatch.setattr(native, "usable", lambda *args: False)

    return force


def test_kernel_is_built_when_a_compiler_exists():
    if not HAS_COMPILER:
        pytest.skip("no C compiler on this machine: the eager path is the expected fallback")
    if KERNEL_SWITCHED_OFF:
        assert not native.available()  # KANDISC_NATIVE=0 must really give the eager path
        pytest.skip("KANDISC_NATIVE=0: the kernel is switched off for this run")
    assert native.available(), "pip install should have built kandisc/model/_basis_native*.so"


def test_env_switch_turns_the_kernel_off(monkeypatch):
    monkeypatch.setenv("KANDISC_NATIVE", "0")
    native._library.cache_clear()
    try:
        assert not native.available()
        x = torch.zeros(3, 1, dtype=torch.float64)
        grid = knots([-1.0], [1.0], 4, 3)
        assert not native.usable(x, grid, spline.basis_table(grid, 3), 3)
    finally:
        monkeypatch.undo()
        native._library.cache_clear()


def awkward_inputs(grid: torch.Tensor, dtype: torch.dtype, n_random: int = 400) -> torch.Tensor:
    """Random points plus every knot, points just beside knots, far outside, and NaN/±inf (last 3 rows)."""
    n_in = grid.shape[0]
    gen = torch.Generator().manual_seed(1)
    lo, hi = grid[:, 0] - 0.5, grid[:, -1] + 0.5
    rand = lo + torch.rand(n_random, n_in, generator=gen, dtype=torch.float64) * (hi - lo)
    knots = grid.transpose(0, 1)
    eps = 1e-7 * (grid[:, -1] - grid[:, 0])
    far = torch.cat([(grid[:, :1] - 10).T, (grid[:, -1:] + 10).T])
    bad = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64)[:, None].expand(3, n_in)
    return torch.cat([rand, knots, knots - eps, knots + eps, far, bad]).to(dtype)


@needs_kernel
@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("base_fun", ["silu", "identity", "zero"])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_features_and_input_gradient_match_eager(dtype, atol, base_fun, k, eager):
    gen = torch.Generator().manual_seed(k)
    grid = knots([-1.0, 0.0, -3.0], [1.0, 5.0, -2.5], 6, k)
    grid = torch.sort(grid + 0.1 * torch.rand(grid.shape, generator=gen, dtype=torch.float64) * grid.diff().mean(), 1)
    grid = grid.values.to(dtype)
    table = spline.basis_table(grid, k)
    x = awkward_inputs(grid, dtype).requires_grad_()
    weights = torch.randn(x.shape[0], 3, grid.shape[1] - k, generator=gen, dtype=torch.float64).to(dtype)

    def run():
        feats = spline.basis_features(x, grid, k, base_fun, table)
        (grad,) = torch.autograd.grad((feats * weights).sum(), x)
        return feats.detach(), grad

    fast, fast_grad = run()
    eager()
    slow, slow_grad = run()
    torch.testing.assert_close(fast, slow, atol=atol, rtol=0, equal_nan=True)
    scale = (weights.abs().sum(-1) / grid.diff().min()).max()  # derivatives grow like 1/h
    torch.testing.assert_close(fast_grad, slow_grad, atol=atol * float(scale), rtol=0, equal_nan=True)
    assert fast[-3:, :, 1:].isnan().all() and fast_grad[-3:].isnan().all()  # the NaN/±inf rows


@needs_kernel
def test_far_inputs_give_zero_spline_features_and_nan_reaches_the_output():
    grid = knots([-1.0], [1.0], 5, 3)
    x = torch.tensor([[-50.0], [50.0]], dtype=torch.float64)
    feats = spline.basis_features(x, grid, 3, "identity")
    assert feats[:, 0, 1:].abs().max() == 0 and feats[0, 0, 0] == -50.0
    # Even with a zero base function a NaN input must not turn into a finite prediction.
    model = MultKAN(ModelSpec.build([2, 3, 1], base_fun="zero"))
    out = model(torch.tensor([[0.1, float("nan")], [0.1, 0.2]], dtype=torch.float64))
    assert out[0].isnan().all() and out[1].isfinite().all()


@needs_kernel
def test_mismatched_shapes_never_reach_the_kernel():
    grid = knots([-1.0, -1.0], [1.0, 1.0], 5, 3)
    table = spline.basis_table(grid, 3)
    x = torch.zeros(4, 2, dtype=torch.float64)
    assert native.usable(x, grid, table, 3)
    assert not native.usable(torch.zeros(4, 3, dtype=torch.float64), grid, table, 3)  # more inputs than grids
    assert not native.usable(x, grid, spline.basis_table(knots([-1.0, -1.0], [1.0, 1.0], 9, 3), 3), 3)  # stale
    assert not native.usable(x, grid, table, 2)  # table built for another order
    with pytest.raises(RuntimeError):  # the eager path then reports the mismatch
        spline.basis_features(torch.zeros(4, 3, dtype=torch.float64), grid, 3, "silu", table)


def test_three_derivatives_then_a_clear_error_and_known_base_functions():
    grid = knots([-1.0], [1.0], 5, 3)
    x = torch.full((3, 1), 0.3, dtype=torch.float64, requires_grad=True)
    out = spline.basis_features(x, grid, 3, "silu").sum()
    for _ in range(basis_layout.MAX_DERIVATIVE):
        (out,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    assert out.abs().sum() > 0  # neither SiLU's nor a cubic's third derivative vanishes
    with pytest.raises(RuntimeError, match="differentiable 3 times in x; a derivative of order 4"):
        torch.autograd.grad(out.sum(), x)
    with pytest.raises(RuntimeError, match="order 4"):
        spline.basis_features(x, grid, 3, "silu", order=4)
    with pytest.raises(ValueError, match="unknown base function 'relu'"):
        spline.basis_features(x, grid, 3, "relu")


@needs_kernel
@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("base_fun", ["silu", "identity", "zero"])
@pytest.mark.parametrize("k", [1, 3, 4])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_derivative_features_and_their_gradient_match_eager(dtype, atol, base_fun, k, order, eager):
    gen = torch.Generator().manual_seed(order)
    grid = knots([-1.0, 0.0], [1.0, 5.0], 6, k).to(dtype)
    table = spline.basis_table(grid, k)
    x = awkward_inputs(grid, dtype, n_random=200).requires_grad_()
    weights = torch.randn(x.shape[0], 2, grid.shape[1] - k, generator=gen, dtype=torch.float64).to(dtype)

    def run():
        feats = spline.basis_features(x, grid, k, base_fun, table, order=order)
        if order == basis_layout.MAX_DERIVATIVE:
            return feats.detach(), None
        (grad,) = torch.autograd.grad((feats * weights).sum(), x)
        return feats.detach(), grad

    fast, fast_grad = run()
    eager()
    slow, slow_grad = run()
    scale = float(grid.diff().min()) ** -(order + 1)  # the order-th derivative grows like 1/h^order
    torch.testing.assert_close(fast, slow, atol=atol * scale, rtol=0, equal_nan=True)
    assert fast[-3:, :, 1:].isnan().all()
    if fast_grad is not None:
        bound = atol * scale * float(weights.abs().sum(-1).max())
        torch.testing.assert_close(fast_grad, slow_grad, atol=bound, rtol=0, equal_nan=True)


@needs_kernel
def test_gradcheck_and_gradgradcheck_through_the_kernel():
    grid = knots([-1.0, -2.0], [1.0, 1.0], 4, 3)
    table = spline.basis_table(grid, 3)
    x = (torch.rand(20, 2, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: spline.basis_features(v, grid, 3, "silu", table), (x,))
    assert torch.autograd.gradgradcheck(lambda v: spline.basis_features(v, grid, 3, "silu", table), (x,))


@needs_kernel
def test_network_gradients_match_eager(eager):
    spec = ModelSpec.build([3, [4, 2], 1], grid=5, k=3, seed=0)
    x = torch.rand(256, 3, dtype=torch.float64) * 2 - 1
    y = torch.sin(x.sum(1, keepdim=True))

    def grads():
        model = MultKAN(spec)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

    fast_loss, fast = grads()
    eager()
    slow_loss, slow = grads()
    torch.testing.assert_close(fast_loss, slow_loss, atol=1e-13, rtol=0)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


@needs_kernel
def test_a_stale_build_is_refused_with_a_warning(monkeypatch):
    monkeypatch.setattr(native, "_source_digest", lambda folder: "0" * 16)
    native._library.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="built from another version of kandisc"):
            assert not native.available()
    finally:
        monkeypatch.undo()
        native._library.cache_clear()
    assert native.available()


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_threads_split_the_batch_without_changing_a_bit(dtype):
    grid = knots([-1.0] * 8, [1.0] * 8, 5, 3).to(dtype)
    table = native.row_table(spline.basis_table(grid, 3))
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(9001, 8, generator=gen, dtype=torch.float64) * 2.4 - 1.2).to(dtype)  # 72 008 pairs: 2 jobs
    grad_out = torch.randn(9001, 8, grid.shape[1] - 3, generator=gen, dtype=torch.float64).to(dtype)
    sigma = torch.sigmoid(x)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 4):
            torch.set_num_threads(n)
            feats, rows = native.features(x, sigma, grid, table, 3, "silu", keep_rows=True)
            grad = native.grad_input(x, sigma, rows, table, grid.shape[1], 3, "silu", grad_out)
            results.append((feats, rows, grad))
    finally:
        torch.set_num_threads(threads)
    for one, many in zip(*results, strict=True):
        assert torch.equal(one, many)
