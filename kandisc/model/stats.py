"""Per-edge and per-node spread statistics, computed on request from layer traces.

The spread of each numeric edge comes from the layer's traced forward
(:mod:`kandisc.model.spread`: wᵀΣw from the feature covariance Σ when the features are the
constant data rows, else from the edges' values). Symbolic edges are measured directly from
their (B, E_f) values. These feed the sparsity penalty and attribution scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kandisc.model.layer import LayerTrace
from kandisc.model.spread import scale_penalty


@dataclass
class LayerStats:
    edge_std: torch.Tensor  # (in, out) std of each edge's output (numeric + symbolic)
    numeric_edge_std: torch.Tensor  # (in, out) std of the numeric part only
    input_std: torch.Tensor  # (in,) std of the layer's inputs
    subnode_std: torch.Tensor  # (out,) std of each subnode before the subnode affine


def _std(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    n = values.shape[dim]
    return values.std(dim=dim, correction=1 if n > 1 else 0)


def input_std(trace: LayerTrace) -> torch.Tensor:
    """(in,) std over the batch of the layer's inputs: the traced forward's, else taken from x."""
    return trace.input_std if trace.input_std is not None else _std(trace.x)


def layer_stats(trace: LayerTrace) -> LayerStats:
    numeric = trace.numeric_std  # measured by the layer's traced forward
    edge = numeric.clone()
    for ins, outs, values in trace.sym_values:
        # An edge can be symbolic and numeric at once (priors): measure the sum of both parts.
        numeric_part = torch.einsum("bek,ek->be", trace.features[:, ins, :], trace.weights[ins, :, outs])
        edge = edge.index_put((ins, outs), _std(values + numeric_part))
    return LayerStats(edge, numeric, input_std(trace), _std(trace.out))


def sparsity_penalty(traces: list[LayerTrace], lamb_l1: float, lamb_entropy: float) -> torch.Tensor:
    """The KAN sparsity penalty: L1 + entropy of the edge activation scales, as in KAN 2.0 (pykan).

    v_ij = std(numeric phi_ij) / (std(x_i) + 0.1); l1 = Σ v; entropies over rows and columns
    of v normalised by (sum + 1), in bits (:func:`kandisc.model.spread.scale_penalty`).
    """
    total = traces[0].x.new_zeros(())
    for trace in traces:
        total = total + scale_penalty(trace.numeric_std, input_std(trace), lamb_l1, lamb_entropy)
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
