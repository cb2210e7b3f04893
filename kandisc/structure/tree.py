"""The modular structure of f as a tree of input groups.

Owns the recursion that applies the hypothesis tests to smaller and smaller groups of inputs.
Top down: the whole input set is split, if it can be, into the finest additive partition, else
the finest multiplicative one, else the finest general (f = h(Σ p_g)) one; each part is split
again with the tests that still mean something inside it. Inside an additive block f is known
only up to an added constant, so only the general test applies (a product there reads as
``general``); inside a multiplicative block f is known up to a factor, which leaves the additive
test valid on f itself (a zero cross derivative stays zero) and the general one; inside a general
part or a module only the general one. A group that splits no further is searched bottom up for
modules, proper subgroups A with f = g(h(x_A), ...) found by merging the pair whose union is most
symmetric while one passes (pairs only, as pykan's ``get_molecule``: a module none of whose pairs
is symmetric stays unfound), and becomes a ``compose`` node over them. Every split carries its
score; every inner group its symmetry score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from kandisc.structure.hessian import Jet
from kandisc.structure.separability import (
    THRESHOLD,
    general_cross_score,
    general_pair_scores,
    pair_scores,
    partition,
    separation,
)
from kandisc.structure.symmetry import symmetry_score

# The splits tried, in order, in each context (the kind of the node a group belongs to).
_SPLITS = {"root": ("add", "mul", "general"), "mul": ("add", "general")}
_DEFAULT_SPLITS = ("general",)


@dataclass
class TreeNode:
    """``kind``: "input" (a leaf), "add", "mul", "general" (h(p_1 + p_2 + ...)) or "compose" (no
    separable split; its children are the modules found inside). ``score``: the split's score
    (the largest cross-group score; None for leaves and compose nodes); ``symmetry``: the score of
    f = g(h(x_inputs), x_rest) for this node's inputs (None at the root and at leaves)."""

    kind: str
    inputs: list[int]
    children: list[TreeNode] = field(default_factory=list)
    score: float | None = None
    symmetry: float | None = None

    def nested(self, names: list[str]):
        """Input names as nested lists: a leaf is its name, a node the list of its children."""
        return names[self.inputs[0]] if self.kind == "input" else [c.nested(names) for c in self.children]

    def to_dict(self, names: list[str]) -> dict:
        out = {"kind": self.kind, "inputs": [names[i] for i in self.inputs]}
        if self.score is not None:
            out["score"] = self.score
        if self.symmetry is not None:
            out["symmetry"] = self.symmetry
        if self.children:
            out["children"] = [c.to_dict(names) for c in self.children]
        return out

    def groups(self) -> list[TreeNode]:
        """Every inner node below the root holding at least two inputs (depth first)."""
        found = []
        for child in self.children:
            if len(child.inputs) > 1:
                found.append(child)
            found += child.groups()
        return found


class _Scores:
    """The pairwise score matrices of one jet, computed when first asked for."""

    def __init__(self, jet: Jet):
        self.jet, self._cache = jet, {}

    def matrix(self, kind: str) -> torch.Tensor:
        """The score matrix of a split kind: "add" (on f), "mul" (on log|f|) or "general"."""
        if kind not in self._cache:
            builders = {
                "add": lambda: pair_scores(self.jet),
                "mul": lambda: pair_scores(self.jet.log()),
                "general": lambda: general_pair_scores(self.jet),
            }
            self._cache[kind] = builders[kind]()
        return self._cache[kind]

    def modules(self, members: list[int], threshold: float) -> list[list[int]]:
        key = ("modules", tuple(members), threshold)
        if key not in self._cache:
            self._cache[key] = _modules(self.jet, members, threshold)
        return self._cache[key]


def _split(scores: _Scores, kind: str, members: list[int], threshold: float):
    """(parts, score) of the finest ``kind`` split of ``members``, or None when there is none."""
    if kind != "general":
        parts, score = separation(scores.matrix(kind), members, threshold)
        return (parts, score) if len(parts) > 1 else None
    # Pairwise links (i, j) are necessary but not sufficient, and may cut too finely (in
    # sin(x + y·z) no pair of y, z is linked, yet the parts are x | {y, z}): verify the candidate,
    # then try the modules, whose grouping is the other natural candidate.
    for parts in (partition(scores.matrix(kind), members, threshold), scores.modules(members, threshold)):
        if len(parts) > 1:
            score = general_cross_score(scores.jet, parts, stop_at=threshold)
            if score < threshold:
                return parts, score
    return None


def _modules(jet: Jet, members: list[int], threshold: float) -> list[list[int]]:
    """Greedy bottom-up merging of ``members`` into symmetric proper subgroups (at least two)."""
    groups = [[m] for m in members]
    while len(groups) > 2:
        trials = [
            (symmetry_score(jet, groups[i] + groups[j]), i, j)
            for i in range(len(groups))
            for j in range(i + 1, len(groups))
        ]
        score, i, j = min(trials)
        if score >= threshold:
            break
        groups = [g for pos, g in enumerate(groups) if pos not in (i, j)] + [sorted(groups[i] + groups[j])]
    return sorted(groups)


def _grow(scores: _Scores, members: list[int], context: str, threshold: float) -> TreeNode:
    if len(members) == 1:
        return TreeNode("input", members)
    for kind in _SPLITS.get(context, _DEFAULT_SPLITS):
        found = _split(scores, kind, members, threshold)
        if found is not None:
            parts, score = found
            return TreeNode(kind, members, [_child(scores, p, kind, threshold) for p in parts], score)
    modules = scores.modules(members, threshold)  # never one group: merging stops at two
    return TreeNode("compose", members, [_child(scores, m, "compose", threshold) for m in modules])


def _child(scores: _Scores, members: list[int], context: str, threshold: float) -> TreeNode:
    node = _grow(scores, members, context, threshold)
    if len(members) > 1:
        node.symmetry = symmetry_score(scores.jet, members)
    return node


def build_tree(jet: Jet, threshold: float = THRESHOLD) -> TreeNode:
    """The modular structure of the function behind ``jet`` (module docstring)."""
    return _grow(_Scores(jet), list(range(jet.n)), "root", threshold)
