"""Anatomical modularity: reorder a model's hidden nodes so that modules sit side by side.

Owns :func:`swap` (exchange two hidden nodes), :func:`connection_cost` and :func:`auto_swap`.
Nodes of each node layer sit at slots (p + ½)/n across a unit-wide row; an edge costs its weight
times its horizontal length, the weight being the edge's attribution score on given rows, or,
without rows, a weight proxy (|base scale| + |spline scale|·mean|coef| for numeric edges, |c| for
symbolic ones). A node's cost depends only on its own slot once its neighbour layers are fixed,
so a swap's gain is read off one (node × slot) cost matrix for every pair at once; auto_swap
applies the best gaining swap until none gains, sweeping the hidden layers in turn. The model
changes only by :meth:`MultKAN.permute_nodes`, so its function is unchanged (up to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kandisc.attribution import attribute
from kandisc.model import MultKAN

_MAX_SWAPS = 10_000  # every swap lowers the cost, so this only bounds pathological ties


def swap(model: MultKAN, node_layer: int, i: int, j: int) -> None:
    """Exchange nodes ``i`` and ``j`` of hidden node layer ``node_layer`` (both sum or both mult)."""
    order = list(range(model.spec.nodes(node_layer)))
    order[i], order[j] = order[j], order[i]
    model.permute_nodes(node_layer, order)


def edge_weights(model: MultKAN, x: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Per layer, (in, subnodes) non-negative edge weights: attribution on ``x``, else the proxy."""
    if x is not None:
        return [score.detach().abs() for score in attribute(model, x).edge_scores]
    weights = []
    for kan in model.layers:
        numeric = (kan.scale_base.abs() + kan.scale_sp.abs() * kan.coef.abs().mean(dim=1)) * kan.num_mask
        symbolic = kan.sym_params[..., 2].abs() * kan.sym_mask
        weights.append((numeric + symbolic).detach())
    return weights


def _node_weights(model: MultKAN, weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Edge weights summed over each target node's subnodes: (nodes(l), nodes(l+1)) per layer."""
    out = []
    for layer, w in enumerate(weights):
        owner = torch.tensor(model.spec.subnode_owner(layer + 1), device=w.device)
        out.append(torch.zeros(w.shape[0], model.spec.nodes(layer + 1), dtype=w.dtype).index_add_(1, owner, w))
    return out


def _slots(n: int, dtype=torch.float64) -> torch.Tensor:
    return (torch.arange(n, dtype=dtype) + 0.5) / n


def _cost(weights: list[torch.Tensor], positions: list[torch.Tensor]) -> float:
    """Σ over layers and edges of weight × |position difference|."""
    total = 0.0
    for layer, w in enumerate(weights):
        total += float((w * (positions[layer][:, None] - positions[layer + 1][None, :]).abs()).sum())
    return total


def connection_cost(model: MultKAN, x: torch.Tensor | None = None) -> float:
    """The model's connection cost as it is laid out now (module docstring)."""
    weights = _node_weights(model, edge_weights(model, x))
    return _cost(weights, [_slots(model.spec.nodes(layer)) for layer in range(model.depth + 1)])


def _slot_costs(weights, positions, layer: int, slots: torch.Tensor) -> torch.Tensor:
    """C[node, slot]: what node-layer ``layer``'s node would cost at each slot (neighbours fixed)."""
    into, out_of = weights[layer - 1], weights[layer]
    left = (into[:, :, None] * (positions[layer - 1][:, None, None] - slots[None, None, :]).abs()).sum(0)
    right = (out_of[:, :, None] * (slots[None, None, :] - positions[layer + 1][None, :, None]).abs()).sum(1)
    return left + right


def _best_swap(costs: torch.Tensor, slot_of: torch.Tensor, same_kind: torch.Tensor):
    """(gain, a, b) of the best exchange of two nodes' slots (gain <= 0: none helps)."""
    at = costs[:, slot_of]  # at[a, b]: node a placed at node b's slot
    here = at.diagonal()
    gain = (here[:, None] + here[None, :] - at - at.T).masked_fill(~same_kind, float("-inf"))
    best = int(gain.argmax())
    return float(gain.flatten()[best]), best // gain.shape[0], best % gain.shape[0]


@dataclass
class SwapResult:
    orders: dict[int, list[int]]  # node layer -> the order applied (new node p was node order[p])
    cost_before: float
    cost_after: float


def _best_move(spec, weights, positions, slots, slot_of) -> tuple[float, int, int, int]:
    """(gain, a, b, node layer) of the best swap over all hidden layers."""
    moves = [(0.0, 0, 0, 0)]
    for layer in range(1, spec.depth):
        kind = torch.arange(spec.nodes(layer)) >= spec.width[layer][0]  # mult nodes come after sum nodes
        same = (kind[:, None] == kind[None, :]) & ~torch.eye(len(kind), dtype=torch.bool)
        costs = _slot_costs(weights, positions, layer, slots[layer])
        moves.append((*_best_swap(costs, slot_of[layer], same), layer))
    return max(moves)


def auto_swap(model: MultKAN, x: torch.Tensor | None = None, tol: float = 1e-12) -> SwapResult:
    """Permute hidden nodes to lower the connection cost; the function stays the same."""
    spec = model.spec
    weights = _node_weights(model, edge_weights(model, x))
    slots = [_slots(spec.nodes(layer)) for layer in range(model.depth + 1)]
    slot_of = [torch.arange(spec.nodes(layer)) for layer in range(model.depth + 1)]
    positions = [s.clone() for s in slots]
    before = _cost(weights, positions)
    for _ in range(_MAX_SWAPS):
        gain, a, b, layer = _best_move(spec, weights, positions, slots, slot_of)
        if gain <= tol * max(before, 1e-300):
            break
        slot_of[layer][[a, b]] = slot_of[layer][[b, a]]
        positions[layer] = slots[layer][slot_of[layer]]
    orders = {}
    for layer in range(1, model.depth):
        order = torch.argsort(slot_of[layer]).tolist()  # the node placed at each slot, left to right
        if order != sorted(order):
            model.permute_nodes(layer, order)
            orders[layer] = order
    return SwapResult(orders, before, _cost(weights, positions))
