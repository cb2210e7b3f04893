"""The fused spread and penalty Functions give the values and gradients of the plain formulas."""

import pytest
import torch

from kandisc.model import ModelSpec, MultKAN, native
from kandisc.model.layer import feature_covariance
from kandisc.model.spread import numeric_output_and_spread, scale_penalty
from kandisc.model.stats import sparsity_penalty

F64 = torch.float64  # the engine's default; gradcheck needs it


def reference_output_and_spread(features, weights):
    """The layer's numeric output and each edge's std, written as plain autograd code."""
    out = torch.einsum("bik,iko->bo", features, weights)
    phi = torch.einsum("bik,iko->bio", features, weights)
    n = features.shape[0]
    return out, (phi.var(0, correction=1 if n > 1 else 0) + 1e-30).sqrt()


def reference_penalty(edge_std, input_std, lamb_l1, lamb_entropy):
    """pykan's regulariser of one layer (KAN 2.0): l1 + entropies over rows and columns, in bits."""
    v = edge_std / (input_std[:, None] + 0.1)
    p_out = v / (v.sum(0, keepdim=True) + 1)
    p_in = v / (v.sum(1, keepdim=True) + 1)
    ent_out = -(p_out * torch.log2(p_out + 1e-4)).sum(0).mean()
    ent_in = -(p_in * torch.log2(p_in + 1e-4)).sum(1).mean()
    return lamb_l1 * v.sum() + lamb_entropy * (ent_out + ent_in)


def random_layer(n_batch, n_in, n_feat, n_out, seed=0):
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n_batch, n_in, n_feat, generator=g, dtype=F64, requires_grad=True)
    weights = torch.randn(n_in, n_feat, n_out, generator=g, dtype=F64, requires_grad=True)
    return features, weights


@pytest.mark.parametrize("shape", [(40, 3, 6, 4), (25, 5, 9, 1), (1, 2, 4, 3)])
def test_output_and_spread_match_the_plain_formulas_with_their_gradients(shape):
    features, weights = random_layer(*shape)
    g = torch.Generator().manual_seed(1)
    grad_out = torch.randn(shape[0], shape[3], generator=g, dtype=F64)
    grad_std = torch.randn(shape[1], shape[3], generator=g, dtype=F64)
    results = []
    for fn in (numeric_output_and_spread, reference_output_and_spread):
        out, std = fn(features, weights)
        grads = torch.autograd.grad((out * grad_out).sum() + (std * grad_std).sum(), (features, weights))
        results.append((out, std, *grads))
    for fused, plain in zip(*results, strict=True):
        torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-12)


def test_the_covariance_path_gives_the_same_spread_and_weight_gradient():
    features, weights = random_layer(60, 3, 7, 5)
    constant = features.detach()
    cov = feature_covariance(constant)
    out, std = numeric_output_and_spread(constant, weights, cov)
    ref_out, ref_std = reference_output_and_spread(constant, weights)
    torch.testing.assert_close(std, ref_std, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    (grad,) = torch.autograd.grad(out.sum() + std.sum(), weights)
    (ref_grad,) = torch.autograd.grad(ref_out.sum() + ref_std.sum(), weights)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="no gradient"):
        numeric_output_and_spread(features, weights, cov)


def test_output_and_spread_pass_gradcheck():
    features, weights = random_layer(7, 2, 4, 3)
    assert torch.autograd.gradcheck(lambda f, w: numeric_output_and_spread(f, w), (features, weights))


@pytest.fixture(params=["compiled", "numpy"])
def penalty_path(request, monkeypatch):
    """The penalty as the compiled kernel computes it, and as its numpy twin does without the library."""
    if request.param == "compiled" and not native.available():
        pytest.skip("kernel not built, or KANDISC_NATIVE=0")
    if request.param == "numpy":
        monkeypatch.setattr(native, "available", lambda: False)
    return request.param


@pytest.mark.parametrize("lambdas", [(1.0, 2.0), (1.0, 0.0), (0.3, 5.0)])
def test_scale_penalty_matches_pykans_regulariser_with_its_gradients(lambdas, penalty_path):
    g = torch.Generator().manual_seed(2)
    edge_std = torch.rand(4, 3, generator=g, dtype=F64).requires_grad_()
    edge_std.data[0, 1] = 1e-15  # a removed edge: its scale is ~0
    input_std = torch.rand(4, generator=g, dtype=F64).requires_grad_()
    fused = scale_penalty(edge_std, input_std, *lambdas)
    plain = reference_penalty(edge_std, input_std, *lambdas)
    torch.testing.assert_close(fused, plain, rtol=1e-12, atol=1e-14)
    grads = torch.autograd.grad(fused, (edge_std, input_std))
    ref_grads = torch.autograd.grad(plain, (edge_std, input_std))
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(lambda e, s: scale_penalty(e, s, *lambdas), (edge_std, input_std))


@pytest.mark.parametrize("width", [[2, 5, 1], [3, [2, 2], 2]])
def test_the_models_penalty_and_its_parameter_gradients_match_the_plain_formulas(width):
    model = MultKAN(ModelSpec.build(width, grid=4, seed=3))
    x = torch.rand(80, width[0], generator=torch.Generator().manual_seed(4), dtype=F64) * 2 - 1
    pred, traces = model.forward_traced(x)
    fused = pred.square().mean() + sparsity_penalty(traces, 1.0, 2.0)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(fused, params, allow_unused=True, materialize_grads=True)
    plain = model(x).square().mean()
    h = x
    for layer, kan in enumerate(model.layers):
        features = kan._features(h)
        _, std = reference_output_and_spread(features, kan.numeric_weights())
        plain = plain + reference_penalty(std, h.std(0), 1.0, 2.0)
        h = model.combine(layer, kan(h))
    ref_grads = torch.autograd.grad(plain, params, allow_unused=True, materialize_grads=True)
    torch.testing.assert_close(fused, plain, rtol=1e-10, atol=1e-12)
    for a, b in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


def test_a_second_derivative_through_the_fused_nodes_raises_instead_of_being_wrong():
    features, weights = random_layer(10, 2, 4, 3)
    _, std = numeric_output_and_spread(features, weights)
    (grad,) = torch.autograd.grad(std.sum(), weights, create_graph=True)
    with pytest.raises(RuntimeError):  # no graph back through the hand-written backward
        torch.autograd.grad(grad.sum(), weights)
    edge_std, input_std = torch.rand(3, 2, dtype=F64, requires_grad=True), torch.rand(3, dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(scale_penalty(edge_std, input_std, 1.0, 2.0), edge_std, create_graph=True)
    with pytest.raises(RuntimeError):  # no graph back through the hand-written backward
        torch.autograd.grad(grad.sum(), edge_std)
