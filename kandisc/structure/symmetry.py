"""Generalized symmetry: is f = g(h(x_A), x_rest) for some h? Owns the symmetry score of a group
and the answer to that hypothesis.

f depends on x_A only through one function h exactly when the direction of its gradient within A
does not change with the other inputs, i.e. when every ratio f_b/f_a of partial derivatives inside
A (a the group's strongest input) is independent of every input c outside A. We score the largest
med|σ_c ∂_c log|f_b/f_a|| (medians over rows): the fraction by which a 1σ change of x_c changes that
ratio. It needs second derivatives only, is dimensionless (neither f's nor the inputs' units
enter) and, being relative per ratio, is not fooled by a weak member of A: for x·y + z with large x
and y, {x, z} stays non-symmetric although z barely tilts the gradient. A one-input group, or one
holding every input, is trivially symmetric.
"""

from __future__ import annotations

from kandisc.structure.hessian import Jet
from kandisc.structure.separability import THRESHOLD, HypothesisResult, leads, ratio_dependence


def symmetry_score(jet: Jet, group: list[int]) -> float:
    """How much the other inputs change the gradient direction within ``group`` (0: not at all)."""
    members = set(group)
    rest = [i for i in range(jet.n) if i not in members]
    if len(group) < 2 or not rest:
        return 0.0
    (a,) = leads(jet, [list(group)])
    return max(float(ratio_dependence(jet, a, b, rest).max()) for b in group if b != a)


def check_symmetry(jet: Jet, group: list[int], threshold: float = THRESHOLD) -> HypothesisResult:
    """Is f = g(h(x_group), x_rest) for some h?"""
    score = symmetry_score(jet, group)
    return HypothesisResult("symmetric", [list(group)], score < threshold, score, threshold)
