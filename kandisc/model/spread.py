"""Fused autograd Functions for the regularised objective: a layer's numeric output with each
edge's spread, and the KAN sparsity penalty of those spreads.

The penalty is a few dozen tiny tensor operations per layer. Written as plain torch code, each one
is an autograd node, and on the small networks and batches of a typical fit the spreads and the
penalty cost twice the unregularised forward and backward. Here each layer gives two nodes whose
backward is written out by hand, with the same formulas (benchmarks/README.md):

- :func:`numeric_output_and_spread`: ``out = F·W`` (the layer's numeric part, one GEMM) and
  ``std_b(φ_io)`` with ``φ_bio = Σ_k F_bik W_iko``. Its backward folds the spread's gradient into
  the output's, so the features get one product instead of two products and a sum. This is the
  tensor path (a GPU, a layer with symbolic edges, no compiled library); on the CPU
  :mod:`kandisc.model.fused` does the same in one compiled call each way.
- :func:`scale_penalty`: ``λ_l1·Σv + λ_ent·(H_out + H_in)`` of ``v = std(φ)/(std(x) + 0.1)``,
  with its gradients formed in the same call: compiled (``kandisc_scale_penalty`` in
  ``_layer_native_impl.h``) where the library is built, else in float64 numpy.

Both are first-order only (``once_differentiable``: differentiating them twice raises instead of
giving a wrong answer); the training objective differentiates them once. Physics residuals,
which differentiate the model twice, go through the layer's plain forward, not through these.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from kandisc.model import native

SCALE_OFFSET = 0.1  # v = std(phi) / (std(x) + SCALE_OFFSET), as pykan
ENTROPY_EPS = 1e-4  # p·log2(p + eps)
VARIANCE_FLOOR = 1e-30  # std = sqrt(var + floor): finite gradient at a removed edge


def _divisor(n: int) -> int:
    return max(n - 1, 1)  # Bessel's correction, except for a single row


class _NumericSpread(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, weights, covariance):
        n_batch, n_in, n_feat = features.shape
        out = features.reshape(n_batch, -1) @ weights.reshape(n_in * n_feat, -1)
        if covariance is not None:  # constant features (the data rows): wᵀΣw, nothing B-sized
            cov_w = covariance @ weights  # (in, K+1, out)
            var = (weights * cov_w).sum(1)
            centred = None
        else:
            phi = torch.bmm(features.transpose(0, 1), weights)  # (in, B, out)
            centred = phi - phi.mean(1, keepdim=True)
            var = centred.square().sum(1) / _divisor(n_batch)
            cov_w = None
        std = (var.clamp(min=0) + VARIANCE_FLOOR).sqrt()
        ctx.save_for_backward(features, weights, cov_w, centred, var, std)
        return out, std

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_std):
        features, weights, cov_w, centred, var, std = ctx.saved_tensors
        n_batch, n_in, n_feat = features.shape
        # d std / d var, zero where the clamp held the variance at 0 (rounding below zero)
        grad_var = grad_std * (var >= 0).to(std.dtype) / (2 * std)
        if cov_w is not None:
            grad_w = (features.reshape(n_batch, -1).T @ grad_out).reshape(weights.shape)
            grad_w = grad_w + 2 * cov_w * grad_var.unsqueeze(1)
            return None, grad_w, None  # kept data features carry no gradient
        # Per-edge gradient of the edge values: the output's (the same for every input) plus the spread's.
        grad_phi = grad_out.unsqueeze(0) + centred * (2 * grad_var / _divisor(n_batch)).unsqueeze(1)  # (in, B, out)
        grad_features = None
        if ctx.needs_input_grad[0]:
            grad_features = torch.bmm(grad_phi, weights.transpose(1, 2)).transpose(0, 1)
        grad_w = torch.bmm(features.transpose(0, 1).transpose(1, 2), grad_phi)
        return grad_features, grad_w, None


def numeric_output_and_spread(
    features: torch.Tensor, weights: torch.Tensor, covariance: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(out (B, out), std (in, out)): the numeric part of a layer, ``features`` (B, in, K+1) times
    ``weights`` (in, K+1, out), and the standard deviation over the batch of each edge's numeric
    output. ``covariance``: the (in, K+1, K+1) covariance of the features when they are constant
    (no gradient), which gives the spread as ``wᵀΣw`` without any (in, B, out) tensor."""
    if covariance is not None and features.requires_grad:
        raise ValueError("a feature covariance is only for features that carry no gradient")
    return _NumericSpread.apply(features, weights, covariance)


def _entropy_slope(p: np.ndarray) -> np.ndarray:
    """d/dp of p·log2(p + eps)."""
    return np.log2(p + ENTROPY_EPS) + p / ((p + ENTROPY_EPS) * math.log(2))


def _normalised(v: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(p, 1/(Σ_axis v + 1)): v normalised along ``axis`` as the entropy terms take it."""
    inv = 1 / (v.sum(axis, keepdims=True) + 1)
    return v * inv, inv


def _host(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _penalty_and_gradients(edge_std: torch.Tensor, input_std: torch.Tensor, lamb_l1: float, lamb_entropy: float):
    """(total, d total/d edge_std, d total/d input_std) in float64 numpy: on (in, out) arrays a
    numpy operation costs a fifth of a torch one; the compiled kernel's twin, for where it is absent."""
    inv_scale = 1 / (_host(input_std)[:, None] + SCALE_OFFSET)  # (in, 1)
    v = _host(edge_std) * inv_scale
    total = lamb_l1 * v.sum()
    grad_v = np.full_like(v, lamb_l1)
    if lamb_entropy:
        # over inputs for each output (axis 0), over outputs for each input (axis 1)
        for axis in (0, 1):
            p, inv = _normalised(v, axis)
            total -= lamb_entropy * (p * np.log2(p + ENTROPY_EPS)).sum(axis).mean()
            # H = -(1/m) Σ p·log2(p+eps) with p = v/(Σ_axis v + 1): dH/dv = -(1/m)·inv·(h - Σ_axis h·p)
            slope = _entropy_slope(p)
            n_other = v.shape[1 - axis]  # the mean is over the other axis
            grad_v -= lamb_entropy / n_other * inv * (slope - (slope * p).sum(axis, keepdims=True))
    grad_edge = edge_std.new_tensor(grad_v * inv_scale)
    grad_input = input_std.new_tensor(-(grad_v * v * inv_scale).sum(1))
    return float(total), grad_edge, grad_input


def penalty_and_gradients(edge_std: torch.Tensor, input_std: torch.Tensor, lamb_l1: float, lamb_entropy: float):
    """(total, d total/d edge_std, d total/d input_std) of :func:`scale_penalty` without a graph:
    the compiled kernel's, else numpy's."""
    penalty = native.scale_penalty if native.compiled_for(edge_std, input_std) else _penalty_and_gradients
    return penalty(edge_std, input_std, lamb_l1, lamb_entropy)


class _ScalePenalty(torch.autograd.Function):
    # The gradients are formed with the value (both are (in, out)-sized): backward only scales them.
    @staticmethod
    def forward(ctx, edge_std, input_std, lamb_l1, lamb_entropy):
        total, grad_edge, grad_input = penalty_and_gradients(edge_std, input_std, lamb_l1, lamb_entropy)
        ctx.kept = (grad_edge, grad_input)
        return edge_std.new_tensor(total)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_total):
        grad_edge, grad_input = ctx.kept
        return grad_edge * grad_total, grad_input * grad_total, None, None


def scale_penalty(edge_std: torch.Tensor, input_std: torch.Tensor, lamb_l1: float, lamb_entropy: float) -> torch.Tensor:
    """The sparsity penalty of one layer from its numeric edges' spreads (in, out) and its
    inputs' spreads (in,): ``lamb_l1·Σv + lamb_entropy·(H_out + H_in)`` with
    ``v = edge_std / (input_std + 0.1)`` and the entropies (in bits) of v normalised over inputs
    per output and over outputs per input (each by its sum + 1), averaged over the other side."""
    return _ScalePenalty.apply(edge_std, input_std, float(lamb_l1), float(lamb_entropy))
