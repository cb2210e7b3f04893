"""``detect_structure``: every structure test on one callable, in one call, as one result.

Owns :class:`Structure` (the finest additive and multiplicative partitions of the inputs, the
symmetric groups and the tree, each with its score and the threshold) and the choice of rows:
at most ``max_rows`` of them, evenly spaced, since the scores are medians and gain little from more.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kandisc.structure.hessian import Fn, Jet, jet
from kandisc.structure.separability import THRESHOLD, pair_scores, separation
from kandisc.structure.tree import TreeNode, build_tree


@dataclass
class Structure:
    names: list[str]
    additive: list[list[int]]
    additive_score: float
    multiplicative: list[list[int]]
    multiplicative_score: float
    tree: TreeNode
    threshold: float
    n_rows: int

    def _named(self, groups: list[list[int]]) -> list[list[str]]:
        return [[self.names[i] for i in group] for group in groups]

    @property
    def symmetries(self) -> list[dict]:
        """Groups A (2 <= |A| < n) of the tree with f = g(h(x_A), x_rest), with their scores."""
        nodes = [node for node in self.tree.groups() if node.symmetry is not None and node.symmetry < self.threshold]
        return [{"group": [self.names[i] for i in node.inputs], "score": node.symmetry} for node in nodes]

    def to_dict(self) -> dict:
        return {
            "additive": self._named(self.additive),
            "multiplicative": self._named(self.multiplicative),
            "symmetries": self.symmetries,
            "tree": self.tree.nested(self.names),
            "threshold": self.threshold,
            "scores": {"additive": self.additive_score, "multiplicative": self.multiplicative_score},
            "tree_detail": self.tree.to_dict(self.names),
            "rows": self.n_rows,
        }


def spread_rows(x: torch.Tensor, max_rows: int) -> torch.Tensor:
    """At most ``max_rows`` rows of ``x``, evenly spaced (deterministic)."""
    if x.shape[0] <= max_rows:
        return x
    return x[torch.linspace(0, x.shape[0] - 1, max_rows).round().long()]


def structure_of(jet_: Jet, names: list[str], threshold: float = THRESHOLD) -> Structure:
    """The :class:`Structure` of an already computed jet."""
    members = list(range(jet_.n))
    additive, add_score = separation(pair_scores(jet_), members, threshold)
    multiplicative, mul_score = separation(pair_scores(jet_.log()), members, threshold)
    tree = build_tree(jet_, threshold)
    return Structure(list(names), additive, add_score, multiplicative, mul_score, tree, threshold, jet_.x.shape[0])


def detect_structure(
    fn: Fn, x: torch.Tensor, names: list[str] | None = None, threshold: float = THRESHOLD, max_rows: int = 1000
) -> Structure:
    """Separability, symmetries and the modular tree of ``fn``: (B, n) -> (B,) on the rows ``x``.

    ``fn`` is any torch callable treating rows independently (a fitted MultKAN as the surrogate of
    the data, or a closed-form function); ``names`` default to x0, x1, ...
    """
    names = list(names) if names is not None else [f"x{i}" for i in range(x.shape[1])]
    if len(names) != x.shape[1]:
        raise ValueError(f"{len(names)} names for {x.shape[1]} inputs")
    return structure_of(jet(fn, spread_rows(x, max_rows)), names, threshold)
