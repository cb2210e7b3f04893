"""Per-edge and per-node spread statistics, computed on request from layer traces.

A numeric edge is linear in its input's features f = [b(x), B_1(x), ..., B_K(x)], so its output
variance over a batch is wᵀ Σ_i w with Σ_i the (K+1)×(K+1) feature covariance of input i: exact,
differentiable, and without any (B, in, out) tensor. Symbolic edges are measured directly from
their (B, E_f) values. These feed the sparsity penalty and attribution scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kandisc.model.layer import LayerTrace, feature_covariance


@dataclass
class LayerStats:
    edge_std: torch.Tensor  # (in, out) std of each edge's output (numeric + symbolic)
    numeric_edge_std: torch.Tensor  # (in, out) std of the numeric part only
    input_std: torch.Tensor  # (in,) std of the layer's inputs
    subnode_std: torch.Tensor  # (out,) std of each subnode before the subnode affine


def _std(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    n = values.shape[dim]
    return values.std(dim=dim, correction=1 if n > 1 else 0)


def numeric_edge_std(trace: LayerTrace) -> torch.Tensor:
    """(in, out) std over the batch of each numeric edge's output.

    Two exact ways, by cost: wᵀ Σ w from the features' covariance Σ (B·in·(K+1)² work, nothing
    (B, in, out)-sized; free when Σ is of constant features, kept by the layer), or the edges'
    values themselves (B·in·(K+1)·out), cheaper for a layer no wider than its K+1 features.
    """
    cov, weights = trace.feature_cov, trace.weights
    if cov is None and weights.shape[2] <= weights.shape[1]:
        values = torch.bmm(trace.features.transpose(0, 1), weights)  # (in, B, out)
        n = values.shape[1]
        var = values.var(dim=1, correction=1 if n > 1 else 0)
    else:
        cov = cov if cov is not None else feature_covariance(trace.features)
        var = (weights * (cov @ weights)).sum(1)
    return var.clamp(min=0).add(1e-30).sqrt()


def layer_stats(trace: LayerTrace) -> LayerStats:
    numeric = numeric_edge_std(trace)
    edge = numeric.clone()
    for ins, outs, values in trace.sym_values:
        # An edge can be symbolic and numeric at once (priors): measure the sum of both parts.
        numeric_part = torch.einsum("bek,ek->be", trace.features[:, ins, :], trace.weights[ins, :, outs])
        edge = edge.index_put((ins, outs), _std(values + numeric_part))
    return LayerStats(edge, numeric, _std(trace.x), _std(trace.out))


def sparsity_penalty(traces: list[LayerTrace], lamb_l1: float, lamb_entropy: float) -> torch.Tensor:
    """The KAN sparsity penalty: L1 + entropy of the edge activation scales, as in KAN 2.0 (pykan).

    v_ij = std(numeric phi_ij) / (std(x_i) + 0.1); l1 = Σ v; entropies over rows and columns
    of v normalised by (sum + 1), in bits.
    """
    total = traces[0].x.new_zeros(())
    for trace in traces:
        v = numeric_edge_std(trace) / (_std(trace.x)[:, None] + 0.1)  # (in, out)
        l1 = v.sum()
        p_out = v / (v.sum(0, keepdim=True) + 1)  # normalised over inputs, per output
        ent_out = -(p_out * torch.log2(p_out + 1e-4)).sum(0).mean()
        p_in = v / (v.sum(1, keepdim=True) + 1)  # normalised over outputs, per input
        ent_in = -(p_in * torch.log2(p_in + 1e-4)).sum(1).mean()
        total = total + lamb_l1 * l1 + lamb_entropy * (ent_out + ent_in)
    return total


def coefficient_penalty(layers, lamb_coef: float, lamb_coefdiff: float) -> torch.Tensor:
    """L1 on spline coefficients and on their first differences (mean over outputs, summed)."""
    total = layers[0].coef.new_zeros(())
    for kan in layers:
        if lamb_coef:
            total = total + lamb_coef * kan.coef.abs().mean(-1).sum()
        if lamb_coefdiff:
            total = total + lamb_coefdiff * kan.coef.diff(dim=1).abs().mean(-1).sum()
    return total
