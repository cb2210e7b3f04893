"""A fit stage's objective and its gradient written out by hand, for networks the layer kernel covers.

A full-batch fit evaluates ``mse + lamb·penalty`` and its gradient a few thousand times. With the
layer kernel (:mod:`kandisc.model.fused`) the arithmetic of a small network is a few tens of
microseconds, and autograd's graph around it (the kernel's node per layer, the affines and
product nodes, the penalty, the loss, and the engine that walks them) costs several times that.
Here the forward runs each layer's kernel and the node affines and products as plain tensor
operations, and the backward is their chain rule written out: the loss's gradient goes back
through each layer's node affine, its product nodes and its subnode affine into the layer
kernel's backward, which also takes the sparsity penalty's gradients with respect to the edges'
and inputs' spreads.

Symbolic edges c·f(a·x+b)+d (the symbolic stage's retrains) are added to their layer's kernel
output; their backward asks autograd for f's derivative only, on the group's (B, edges) slice.

It covers what fit stages and retrains train (:func:`covers`): a regression loss (no task
residual) on a network every layer of which the kernel evaluates, no coefficient penalty, and
with the sparsity penalty, no symbolic edge (its statistics take the tensor path). Everything
else goes through autograd. The numbers are the autograd path's up to rounding
(``tests/test_direct.py``).
"""

from __future__ import annotations

import math

import torch

from kandisc.model import fused, native
from kandisc.model.functions import FUNCTIONS
from kandisc.model.spread import penalty_and_gradients


def covers(model, x: torch.Tensor, spread: bool, lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0) -> bool:
    """Whether :class:`Objective` can evaluate ``model`` on rows ``x``: every layer on the
    kernel (CPU, one float dtype, the shapes it takes), no coefficient penalty, and with the
    sparsity penalty (``spread``) no symbolic edge."""
    if lamb_coef or lamb_coefdiff or x.requires_grad or x.dim() != 2:
        return False
    # Each layer is asked with rows of its own input width (the kernel checks the shapes).
    rows = [x] + [x.new_empty(0, layer.in_dim) for layer in model.layers[1:]]
    return all(fused.usable(h, layer, trace=spread) for h, layer in zip(rows, model.layers, strict=True))


def _layer_forward(layer, h: torch.Tensor, first: bool, spread: bool, want_x: bool) -> dict:
    """The kernel's forward of ``layer`` at ``h``, its record kept for the backward; the first
    layer's rows do not change between evaluations, so their bases come from the layer's cache."""
    params = (layer.coef, layer.scale_base, layer.scale_sp, layer.num_mask)
    cache = layer.constant_input_cache(h) if first else None
    table = layer.row_table()
    return fused.kernel_forward(h, params, layer.grid, table, layer.k, layer.base_fun, spread, True, want_x, cache)


class _SymbolicGroup:
    """The edges of one layer that compute c·f(a·x+b)+d with one function f: their forward, kept
    for their backward."""

    def __init__(self, name: str, ins: torch.Tensor, outs: torch.Tensor, flat: torch.Tensor):
        self.fn, self.ins, self.outs, self.flat = FUNCTIONS[name].torch_fn, ins, outs, flat

    def forward(self, layer, h: torch.Tensor, gradient: bool) -> tuple[torch.Tensor, tuple]:
        """(values (B, E_f), what the backward needs), in the order of the layer's tensor path."""
        p = layer.sym_params.detach().reshape(-1, 4)[self.flat]
        inputs = h[:, self.ins]
        with torch.set_grad_enabled(gradient):
            u = (p[:, 0] * inputs + p[:, 1]).requires_grad_(gradient)
            fu = self.fn(u)
        return p[:, 2] * fu.detach() + p[:, 3], (p, inputs, u, fu)

    def backward(self, grad_values: torch.Tensor, kept: tuple, grad_params: torch.Tensor, grad_h):
        """Adds the group's share to ``grad_params`` (in·out, 4) and, where wanted, ``grad_h`` (B, in)."""
        p, inputs, u, fu = kept
        grad_fu = grad_values * p[:, 2]
        (grad_u,) = torch.autograd.grad(fu, u, grad_fu)
        columns = ((grad_u * inputs).sum(0), grad_u.sum(0), (grad_values * fu.detach()).sum(0), grad_values.sum(0))
        grad_params[self.flat] = torch.stack(columns, dim=1)
        if grad_h is not None:
            grad_h.index_add_(1, self.ins, grad_u * p[:, 0])


def _products(sub: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(factors (B, n_mult, arity), their products (B, n_mult)) of the product nodes; ``index``
    pads short nodes with the index of a column of ones."""
    padded = torch.cat([sub, torch.ones_like(sub[:, :1])], dim=1)
    factors = padded[:, index]
    return factors, factors.prod(dim=-1)


def _product_gradient(factors: torch.Tensor, grad_prods: torch.Tensor, index: torch.Tensor, n_sub: int):
    """(B, n_sub) gradient of the subnodes from the products' gradient: each factor's is the
    product of the node's other factors (prefix times suffix products, exact at zeros)."""
    ones = torch.ones_like(factors[..., :1])
    prefix = torch.cat([ones, factors[..., :-1]], dim=-1).cumprod(dim=-1)
    suffix = torch.cat([factors[..., 1:], ones], dim=-1).flip(-1).cumprod(dim=-1).flip(-1)
    grad_factors = (grad_prods[..., None] * prefix * suffix).reshape(factors.shape[0], -1)
    padded = grad_factors.new_zeros(factors.shape[0], n_sub + 1)
    padded.index_add_(1, index.reshape(-1), grad_factors)
    return padded[:, :n_sub]


class _Affine:
    """v·scale + bias over the columns of v; an untrained identity (ones and zeros, the default
    for a network's affines) is skipped, which is exact."""

    def __init__(self, scale: torch.Tensor, bias: torch.Tensor):
        self.scale, self.bias = scale, bias
        self.trained = scale.requires_grad or bias.requires_grad
        self.identity = not self.trained and bool((scale == 1).all()) and bool((bias == 0).all())

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.identity else v * self.scale.detach() + self.bias.detach()

    def backward(self, grad: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The gradient of v from the result's ``grad``; sets the trained parameters' gradients."""
        if self.scale.requires_grad:
            self.scale.grad = (grad * v).sum(0)
        if self.bias.requires_grad:
            self.bias.grad = grad.sum(0)
        return grad if self.identity else grad * self.scale.detach()


class Objective:
    """``mse + lamb·reg`` of ``model`` on (x, y) and its gradient, as
    :func:`kandisc.train._objective` defines them (reg, the sparsity penalty, is 0 unless ``lamb``
    and a penalty weight are on). Made once per optimiser step: it holds the layers' parameters
    and the network's affines as it finds them, which the optimiser then updates in place."""

    def __init__(self, model, x: torch.Tensor, y: torch.Tensor, lamb: float, lamb_l1: float, lamb_entropy: float):
        self.x, self.y = x, y
        self.lamb, self.lamb_l1, self.lamb_entropy = lamb, lamb_l1, lamb_entropy
        self.spread = lamb > 0 and (lamb_l1 > 0 or lamb_entropy > 0)
        self.layers = []
        for position, layer in enumerate(model.layers):
            subnodes = _Affine(model.subnode_scale[position], model.subnode_bias[position])
            nodes = _Affine(model.node_scale[position], model.node_bias[position])
            index = getattr(model, f"_mult_index_{position}")
            n_sum = model.spec.width[position + 1][0]
            symbolic = [_SymbolicGroup(*group) for group in layer.symbolic_groups()]
            # A layer with no numeric edge (all snapped or removed) skips the kernel: its part is 0.
            numeric = self.spread or bool(layer.num_mask.any())
            self.layers.append((layer, numeric, symbolic, subnodes, nodes, index if index.numel() else None, n_sum))

    def __call__(self, gradient: bool = True) -> tuple[float, float, float]:
        """(objective, mse, reg); with ``gradient`` and a finite objective, each trainable
        parameter's ``.grad`` is set to the objective's gradient (None where the objective does
        not depend on it, as autograd leaves it)."""
        saved, h, reg = [], self.x, 0.0
        for position, (layer, numeric, symbolic, subnodes, nodes_affine, index, n_sum) in enumerate(self.layers):
            if numeric:
                kept = _layer_forward(layer, h, position == 0, self.spread, gradient and position > 0)
                sub = kept["out"]
            else:
                kept, sub = None, h.new_zeros(h.shape[0], layer.out_dim)
            symbolic_kept = []
            for group in symbolic:
                values, group_kept = group.forward(layer, h, gradient)
                sub = sub.index_add(1, group.outs, values)
                symbolic_kept.append(group_kept)
            scaled = subnodes(sub)
            factors = None
            if index is not None:
                factors, prods = _products(scaled, index)
                nodes = torch.cat([scaled[:, :n_sum], prods], dim=1)
            else:
                nodes = scaled
            penalty = None
            if self.spread:
                penalty = penalty_and_gradients(kept["std"], kept["in_std"], self.lamb_l1, self.lamb_entropy)
                reg += penalty[0]
            saved.append((h, kept, symbolic_kept, sub, factors, nodes, penalty))
            h = nodes_affine(nodes)
        residual = h - self.y
        mse = float(residual.pow(2).mean())
        total = mse + self.lamb * reg
        if gradient and math.isfinite(total):
            self._backward(saved, residual * (2.0 / residual.numel()))
        return total, mse, reg

    def _backward(self, saved: list, grad: torch.Tensor) -> None:
        """The chain rule from the outputs' gradient ``grad`` back through every layer of ``saved``."""
        for position in reversed(range(len(self.layers))):
            layer, numeric, symbolic, subnodes, nodes_affine, index, n_sum = self.layers[position]
            h, kept, symbolic_kept, sub, factors, nodes, penalty = saved[position]
            grad_nodes = nodes_affine.backward(grad, nodes)
            if factors is not None:
                grad_scaled = _product_gradient(factors, grad_nodes[:, n_sum:], index, sub.shape[1])
                grad_scaled[:, :n_sum] += grad_nodes[:, :n_sum]
            else:
                grad_scaled = grad_nodes
            grad_sub = subnodes.backward(grad_scaled, sub)
            grad_std = grad_in_std = None
            if penalty is not None:
                grad_std, grad_in_std = penalty[1] * self.lamb, penalty[2] * self.lamb
            inner = position > 0  # the first layer's input, the data, has no gradient
            if numeric:
                params = (layer.coef, layer.scale_base, layer.scale_sp, layer.num_mask)
                grad_x, grad_coef, grad_base, grad_sp = native.layer_backward(
                    kept, params, layer.k, grad_sub, grad_std, h if inner else None, grad_in_std if inner else None
                )
                for param, value in ((layer.coef, grad_coef), (layer.scale_base, grad_base), (layer.scale_sp, grad_sp)):
                    if param.requires_grad:
                        param.grad = value
            else:  # the spline parameters do not enter: no gradient, as autograd leaves them
                grad_x = torch.zeros_like(h) if inner else None
            if symbolic:
                grad_params = torch.zeros_like(layer.sym_params).reshape(-1, 4)
                for group, group_kept in zip(symbolic, symbolic_kept, strict=True):
                    group.backward(grad_sub[:, group.outs], group_kept, grad_params, grad_x)
                if layer.sym_params.requires_grad:
                    layer.sym_params.grad = grad_params.view(layer.sym_params.shape)
            grad = grad_x
