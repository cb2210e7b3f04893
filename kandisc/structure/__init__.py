"""Hypothesis tests on any torch callable f: (B, n) -> (B,), a fitted MultKAN being the surrogate
of the data: additive, multiplicative and general separability, generalized symmetry, the
automatic grouping of inputs and the modular tree (:func:`detect_structure` runs them all), plus
anatomical modularity of a model (:func:`swap`, :func:`auto_swap`).

    from kandisc.structure import detect_structure, jet, check_separability
    structure = detect_structure(lambda x: model(x)[:, 0], x_rows, ["a", "b", "c"])
    structure.to_dict()["additive"]                 # [["a", "b"], ["c"]]
    check_separability(jet(f, x_rows), [[0, 1], [2]], "mul").holds

Modules: ``hessian`` (derivatives), ``separability``, ``symmetry``, ``tree``, ``detect``,
``anatomy`` (node swaps). Every score is dimensionless and one :data:`THRESHOLD` serves all.
"""

from kandisc.structure.anatomy import auto_swap, connection_cost, swap
from kandisc.structure.detect import Structure, detect_structure
from kandisc.structure.hessian import Jet, jet, third_derivatives, value_gradient_hessian
from kandisc.structure.separability import (
    THRESHOLD,
    HypothesisResult,
    check_general_separability,
    check_separability,
    pair_scores,
)
from kandisc.structure.symmetry import check_symmetry, symmetry_score
from kandisc.structure.tree import TreeNode, build_tree

__all__ = [
    "THRESHOLD",
    "HypothesisResult",
    "Jet",
    "Structure",
    "TreeNode",
    "auto_swap",
    "build_tree",
    "check_general_separability",
    "check_separability",
    "check_symmetry",
    "connection_cost",
    "detect_structure",
    "jet",
    "pair_scores",
    "swap",
    "symmetry_score",
    "third_derivatives",
    "value_gradient_hessian",
]
