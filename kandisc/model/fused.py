"""A layer's numeric part, and each edge's spread, in one compiled pass each way.

Written as tensor code, the numeric part of a layer is a dozen autograd nodes: the feature
matrix (B, in, G+k+1), the weights assembled from scales, coefficients and mask, one GEMM, and
for the sparsity penalty the (in, B, out) edge values and their spread; their backwards are as
many again. On the small networks and batches of a typical fit each node costs more in
dispatch than in arithmetic. Here the whole of it is one node whose forward and backward are
one call each into ``_layer_native_impl.h`` (built with the feature kernel, loaded by
:mod:`kandisc.model.native`). The kernel visits only the k+1 non-zero bases of each input, so
nothing (B, in, G+k+1)-sized is made either.

Same numbers as :meth:`kandisc.model.layer.KANLayer.forward`'s tensor path up to rounding
(``tests/test_fused.py``). First-order only (``once_differentiable``): the training objective
differentiates it once; anything that differentiates a model twice (physics residuals, Hessians)
goes through the tensor path, which is what :func:`usable` leaves to the caller to choose.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from kandisc.model import native


def usable(x: torch.Tensor, layer, trace: bool = False) -> bool:
    """Whether the kernel can evaluate the numeric part of ``layer`` (a
    :class:`~kandisc.model.layer.KANLayer`) at ``x``: the library is built, every operand on the
    CPU in one float dtype, and the shapes the feature kernel takes. A ``trace`` also needs a
    layer without symbolic edges: the statistics of an edge that is symbolic and numeric at once
    (a prior's) take the tensor path's features."""
    return (
        native.usable(x, layer.grid, layer._table, layer.k)
        and layer.coef.dtype == x.dtype
        and not (trace and layer.symbolic_groups())
    )


def kernel_forward(x, params, grid, table_rows, k: int, base_fun: str, spread: bool, keep: bool, want_x: bool, cache):
    """One call of the layer kernel's forward (:func:`kandisc.model.native.layer_forward`) on
    ``params`` (coef, scale_base, scale_sp, mask); with a ``cache`` (the layer's
    :meth:`~kandisc.model.layer.KANLayer.constant_input_cache` for rows that do not change), the
    bases are read from it when an earlier call kept them, and kept there otherwise."""
    reuse = cache.get("record") if cache is not None else None
    sigma = torch.sigmoid(x.detach()) if base_fun == "silu" and reuse is None else None
    keep = keep or cache is not None
    kept = native.layer_forward(x, sigma, grid, table_rows, params, k, base_fun, spread, keep, want_x, reuse)
    if cache is not None and reuse is None:
        cache["record"] = (kept["record"], kept["first"])
    return kept


class _FusedNumeric(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_sp, mask, grid, table_rows, k, base_fun, spread, cache):
        needs = ctx.needs_input_grad
        want_x, want_params = needs[0], any(needs[1:4])
        params = (coef, scale_base, scale_sp, mask)
        kept = kernel_forward(x, params, grid, table_rows, k, base_fun, spread, want_x or want_params, want_x, cache)
        out, weights = kept.pop("out"), kept.pop("weights")
        std, in_std = kept.pop("std"), kept.pop("in_std")
        # The outputs go through save_for_backward: kept on ctx directly they would make a
        # reference cycle (output -> its node -> ctx -> output) that only the garbage collector frees.
        ctx.kept, ctx.k, ctx.want_x = kept, k, want_x
        ctx.save_for_backward(*params, weights, std, in_std, x if want_x else None)
        if not spread:
            std, in_std = x.new_zeros(0), x.new_zeros(0)
        ctx.mark_non_differentiable(weights, *([] if spread else [std, in_std]))
        return out, std, in_std, weights

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_std, grad_in_std, _grad_weights):
        *params, weights, std, in_std, x = ctx.saved_tensors
        kept = {**ctx.kept, "weights": weights, "std": std, "in_std": in_std}
        if grad_out is None:
            grad_out = weights.new_zeros(kept["record"].shape[0], weights.shape[2])
        spread = kept["phi"] is not None
        grad_x, grad_coef, grad_base, grad_sp = native.layer_backward(
            kept, tuple(params), ctx.k, grad_out, grad_std if spread else None, x, grad_in_std if spread else None
        )
        return grad_x, grad_coef, grad_base, grad_sp, None, None, None, None, None, None, None


def numeric_output(layer, x: torch.Tensor, spread: bool):
    """(out (B, out), std (in, out), in_std (in,), weights (in, G+k+1, out)): the numeric part of
    ``layer`` at ``x`` through the kernel, with ``spread`` each edge's and each input's standard
    deviation over the batch (else None), and the effective weights (without a gradient).
    Check :func:`usable` first."""
    out, std, in_std, weights = _FusedNumeric.apply(
        x, layer.coef, layer.scale_base, layer.scale_sp, layer.num_mask, layer.grid, layer.row_table(), layer.k,
        layer.base_fun, spread, layer.constant_input_cache(x),
    )  # fmt: skip
    return out, (std if spread else None), (in_std if spread else None), weights
