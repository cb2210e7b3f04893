"""KAN 2.0 attribution scores and pruning.

Scores start at the outputs (one query per output) and flow backwards: for layer l with edge
output spreads E (in × subnodes) and subnode spreads N, the score of subnode j is its node's
score (a multiplication node hands its score to each factor), edge (i, j) gets
A_j·E_ij/(N_j + 1e-4) and input node i the sum over j. Input scores are the scores of node
layer 0. Statistics come from the rows the caller passes (a declared split), never a cache.

Pruning masks nodes, edges and inputs under thresholds, then :func:`subset` builds the smaller
model that computes exactly what the masked one computes and keeps every other setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kandisc.defaults import PruneSettings
from kandisc.model import ModelSpec, MultKAN
from kandisc.model.stats import layer_stats


@dataclass
class Attribution:
    node_scores: list[torch.Tensor]  # per node layer 0..depth: (nodes(l),)
    edge_scores: list[torch.Tensor]  # per layer 0..depth-1: (in, subnodes(l+1))
    subnode_scores: list[torch.Tensor]  # per layer 0..depth-1: (subnodes(l+1),)

    @property
    def input_scores(self) -> torch.Tensor:
        return self.node_scores[0]


@torch.no_grad()
def attribute(model: MultKAN, x: torch.Tensor) -> Attribution:
    """Node, subnode and edge scores of ``model`` on the rows ``x`` (model input space)."""
    _, traces = model.forward_traced(x)
    stats = [layer_stats(t) for t in traces]
    spec = model.spec
    n_out = spec.n_outputs
    node = torch.eye(n_out, dtype=x.dtype, device=x.device)  # (queries, nodes of the last layer)
    node_scores = [node.mean(0)]
    edge_scores, subnode_scores = [], []
    for layer in reversed(range(model.depth)):
        owner = torch.tensor(spec.subnode_owner(layer + 1), device=x.device)
        sub = node[:, owner]  # (q, subnodes)
        st = stats[layer]
        edge = st.edge_std.unsqueeze(0) * (sub / (st.subnode_std + 1e-4)).unsqueeze(1)  # (q, in, sub)
        node = edge.sum(-1)
        edge_scores.insert(0, edge.mean(0))
        subnode_scores.insert(0, sub.mean(0))
        node_scores.insert(0, node.mean(0))
    return Attribution(node_scores, edge_scores, subnode_scores)


def mask_node(model: MultKAN, node_layer: int, node: int) -> None:
    """Remove every edge into and out of a node (all subnodes of a mult node)."""
    spec = model.spec
    if node_layer > 0:
        kan = model.layers[node_layer - 1]
        owner = torch.tensor(spec.subnode_owner(node_layer), device=kan.sym_mask.device)
        kan.remove_edges((owner == node).unsqueeze(0).expand(kan.in_dim, -1))
    if node_layer < model.depth:
        kan = model.layers[node_layer]
        rows = torch.zeros(kan.in_dim, 1, dtype=torch.bool, device=kan.sym_mask.device)
        rows[node] = True
        kan.remove_edges(rows.expand(-1, kan.out_dim))


def _alive_nodes(model: MultKAN) -> list[list[int]]:
    """Nodes of each layer that still have an active edge in (or are inputs) and out (or are outputs)."""
    spec = model.spec
    alive = []
    for nl in range(spec.depth + 1):
        has_out = (
            torch.ones(spec.nodes(nl), dtype=torch.bool) if nl == spec.depth else model.layers[nl].active().any(1).cpu()
        )
        if nl == 0:
            has_in = torch.ones(spec.nodes(0), dtype=torch.bool)
        else:
            sub_in = model.layers[nl - 1].active().any(0).cpu()
            owner = torch.tensor(spec.subnode_owner(nl))
            has_in = torch.zeros(spec.nodes(nl), dtype=torch.bool).index_put((owner,), sub_in, accumulate=True)
        alive.append([i for i in range(spec.nodes(nl)) if (has_in[i] and has_out[i]) or nl == spec.depth])
    return alive


def subset(model: MultKAN, keep: list[list[int]]) -> MultKAN:
    """A new, smaller model keeping nodes ``keep[l]`` of every node layer (outputs must all stay)."""
    spec = model.spec
    width, arity, sub_keep = [], [], []
    for nl, nodes in enumerate(keep):
        n_sum = spec.width[nl][0]
        kept_sum = [n for n in nodes if n < n_sum]
        kept_mult = [n - n_sum for n in nodes if n >= n_sum]
        width.append([len(kept_sum), len(kept_mult)])
        arity.append([spec.mult_arity[nl][m] for m in kept_mult])
        owner = spec.subnode_owner(nl) if nl > 0 else []
        sub_keep.append([s for s, o in enumerate(owner) if o in set(nodes)])
    new_spec = ModelSpec.from_dict({**spec.to_dict(), "width": width, "mult_arity": arity})
    new = MultKAN(new_spec, dtype=model.dtype, device=model.device)
    new_state = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        layer = int(parts[1])
        rows = torch.tensor(keep[layer], dtype=torch.long, device=value.device)
        cols = torch.tensor(sub_keep[layer + 1], dtype=torch.long, device=value.device)
        if parts[0] == "layers":
            value = value.index_select(0, rows)
            if parts[2] != "grid":  # coef is (in, K, out); every other edge tensor is (in, out, ...)
                value = value.index_select(2 if parts[2] == "coef" else 1, cols)
        elif parts[0].startswith("subnode"):
            value = value.index_select(0, cols)
        elif parts[0].startswith("node"):
            value = value.index_select(0, torch.tensor(keep[layer + 1], dtype=torch.long, device=value.device))
        new_state[key] = value.clone()
    new.load_state_dict(new_state)
    return new


@dataclass
class PruneResult:
    model: MultKAN
    kept_inputs: list[int]  # indices into the previous model's inputs
    removed_edges: int
    shape_before: list
    shape_after: list
    input_scores: list[float]  # every previous input's score when the inputs were judged


def prune(
    model: MultKAN,
    x: torch.Tensor,
    node_threshold: float = PruneSettings.node_threshold,
    edge_threshold: float = PruneSettings.edge_threshold,
    input_threshold: float = PruneSettings.input_threshold,
    prune_inputs: bool = PruneSettings.prune_inputs,
) -> PruneResult:
    """Mask weak hidden nodes, then weak edges, then weak inputs; return the smaller model.

    ``model`` itself is left untouched; the result computes what ``model`` with those nodes,
    edges and inputs masked computes.
    """
    shape_before = model.spec.display_width()
    work = subset(model, [list(range(model.spec.nodes(nl))) for nl in range(model.depth + 1)])  # a copy
    edges_before = work.n_edges()
    scores = attribute(work, x)
    for nl in range(1, work.depth):
        for node in (scores.node_scores[nl] <= node_threshold).nonzero().flatten().tolist():
            mask_node(work, nl, node)
    scores = attribute(work, x)
    for layer, kan in enumerate(work.layers):
        kan.remove_edges((scores.edge_scores[layer] <= edge_threshold).to(kan.sym_mask.device))
    if prune_inputs:
        scores = attribute(work, x)
        n_inputs = work.spec.n_inputs
        weak_inputs = (scores.input_scores <= input_threshold).nonzero().flatten().tolist()
        if len(weak_inputs) == n_inputs:  # never remove every input: keep the strongest
            weak_inputs.remove(int(scores.input_scores.argmax()))
        for node in weak_inputs:
            mask_node(work, 0, node)
    keep = _alive_nodes(work)
    if not keep[0]:
        keep[0] = [0]
    for nl in range(1, work.depth):  # a network needs at least one node per layer
        if not keep[nl]:
            keep[nl] = [0]
    for nl in range(work.depth + 1):  # mask whatever is dropped, so the subset is exact
        for node in set(range(work.spec.nodes(nl))) - set(keep[nl]):
            mask_node(work, nl, node)
    pruned = subset(work, keep)
    input_scores = [float(v) for v in scores.input_scores]
    return PruneResult(
        pruned, keep[0], edges_before - pruned.n_edges(), shape_before, pruned.spec.display_width(), input_scores
    )
