"""Separability: is f = g(x_A) + h(x_B) (additive), g(x_A)·h(x_B) (multiplicative) or
h(p(x_A) + q(x_B)) (general)? Owns the pairwise interaction scores, the grouping of inputs into
the finest separable partition, and the answers to one stated hypothesis.

The score. f = g(x_A) + h(x_B) exactly when every cross entry ∂²f/∂x_i∂x_j (i in A, j in B) of the
Hessian vanishes; multiplicative separability is the same on log|f|. How small is "vanishes"? We
measure each input in its own spread (x_i/σ_i), which removes the inputs' units, and compare the
interaction of a pair with the effect of the weaker of the two on f:

    S_ij = med|H_ij σ_i σ_j| / (min(a_i, a_j) + 0.01·max_k a_k),   a_i = med|g_i σ_i| + med|H_ii σ_i²|

(medians over rows): roughly, by what fraction a 1σ change of one input changes the effect of the
other. Numerator and denominator are both in f's units, so S is unchanged when f or any input is
rescaled, and other inputs do not enter: a real product x·y beside a large z (all inputs of size
1e-2) keeps S of order 1, where dividing by a global scale of f would call x and y separable. The
1% floor stops an input that f hardly uses from turning model noise into a large ratio. Medians
rather than means keep rows where f or a gradient crosses zero (log|f| is singular there) from
deciding.

General separability, f = h(p(x_A) + q(x_B)) with h unknown, is tested on the ratio of two partial
derivatives: for a in A and b in B, log|f_b/f_a| = log|q_b(x_B)| - log|p_a(x_A)| whatever h is, so
it must be additively separable between A and B (the score above on its jet) and must not depend
on any other input c: med|σ_c ∂_c log|f_b/f_a||, the fraction by which a 1σ change of x_c changes
the ratio, is already dimensionless. Every score here reads "a 1σ change changes an effect by this
fraction", so one :data:`THRESHOLD` serves all: 0 means separable, a genuine interaction gives
order 1, and 5% sits above the curvature noise of a fitted spline model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kandisc.structure.hessian import Jet

THRESHOLD = 0.05  # one threshold for every score in this package: all are dimensionless ratios
FLOOR = 0.01  # inputs weaker than 1% of the strongest are measured against that 1%


@dataclass
class HypothesisResult:
    """The answer to one hypothesis: ``holds`` iff ``score`` < ``threshold``."""

    hypothesis: str  # "additive", "multiplicative", "general", "symmetric"
    groups: list[list[int]]
    holds: bool
    score: float
    threshold: float

    def to_dict(self, names: list[str] | None = None) -> dict:
        label = (lambda i: names[i]) if names else (lambda i: i)
        return {
            "hypothesis": self.hypothesis,
            "groups": [[label(i) for i in group] for group in self.groups],
            "holds": self.holds,
            "score": self.score,
            "threshold": self.threshold,
        }


def _median(values: torch.Tensor) -> torch.Tensor:
    """Median over rows (dim 0) ignoring NaN; all-NaN gives NaN."""
    return torch.nanmedian(values, dim=0).values


def strengths(jet: Jet) -> torch.Tensor:
    """a_i (n,): how strongly f moves with input i, first and second order, in f's units."""
    if "strengths" not in jet.cache:
        g, h = jet.scaled()
        jet.cache["strengths"] = _median(g.abs()) + _median(h.diagonal(dim1=1, dim2=2).abs())
    return jet.cache["strengths"]


def pair_scores(jet: Jet) -> torch.Tensor:
    """S (n, n): the normalised interaction of every pair of inputs (module docstring); 0 on the
    diagonal, +inf where no row gave a finite value (nothing is claimed there)."""
    _, h = jet.scaled()
    a = strengths(jet).nan_to_num(nan=0.0)
    scale = torch.minimum(a[:, None], a[None, :]) + FLOOR * a.max()
    raw = _median(h.abs())
    scores = torch.where(raw == 0, torch.zeros_like(raw), raw / scale)
    return _tidy(scores)


def _tidy(scores: torch.Tensor) -> torch.Tensor:
    """+inf where no row was finite; symmetric (H_ij and H_ji differ by rounding, and a partition
    must not depend on which one is read): a pair is as coupled as its larger estimate."""
    scores = torch.where(scores.isnan(), torch.full_like(scores, float("inf")), scores)
    return torch.maximum(scores, scores.T).fill_diagonal_(0.0)


def cross_score(scores: torch.Tensor, groups: list[list[int]]) -> float:
    """The largest score between inputs of different groups (0 with one group)."""
    label = torch.full((scores.shape[0],), -1, dtype=torch.long)
    for g, members in enumerate(groups):
        label[members] = g
    used = label >= 0
    cross = (label[:, None] != label[None, :]) & used[:, None] & used[None, :]
    return float(scores[cross].max()) if bool(cross.any()) else 0.0


def partition(scores: torch.Tensor, members: list[int], threshold: float = THRESHOLD) -> list[list[int]]:
    """The finest partition of ``members`` whose cross-group scores all lie below ``threshold``:
    the connected components of the graph joining pairs scoring at or above it (single linkage),
    found by squaring the reachability matrix. Groups are ordered by their first member."""
    index = torch.tensor(members, dtype=torch.long)
    linked = scores[index][:, index] >= threshold
    linked = linked | linked.T | torch.eye(len(members), dtype=torch.bool)
    reach = linked.to(torch.float64)
    for _ in range(max(1, len(members)).bit_length()):
        reach = ((reach @ reach) > 0).to(torch.float64)
    groups: list[list[int]] = []
    seen: set[int] = set()
    for pos, member in enumerate(members):
        if member not in seen:
            group = [members[q] for q in reach[pos].nonzero().flatten().tolist()]
            seen.update(group)
            groups.append(group)
    return groups


def separation(scores: torch.Tensor, members: list[int], threshold: float = THRESHOLD):
    """(finest partition of ``members``, its score). The score is below ``threshold`` exactly when
    the partition splits: then the largest cross-group score; otherwise the weakest link that holds
    the group together (the largest threshold at which it would still be one group), and +inf for
    a single input, which nothing can split."""
    scores = torch.maximum(scores, scores.T)  # as :func:`_tidy` does, for matrices from elsewhere
    parts = partition(scores, members, threshold)
    if len(parts) > 1:
        return parts, cross_score(scores, parts)
    if len(members) < 2:
        return parts, float("inf")
    values = sorted({float(scores[i, j]) for pos, i in enumerate(members) for j in members[pos + 1 :]})
    joined = [t for t in values if len(partition(scores, members, t)) == 1]
    return parts, (joined[-1] if joined else 0.0)


def with_rest(groups: list[list[int]], n: int) -> list[list[int]]:
    """``groups`` plus one group of the inputs none of them names (a hypothesis about some inputs
    says nothing of how the others combine among themselves)."""
    named = {i for group in groups for i in group}
    rest = [i for i in range(n) if i not in named]
    return [list(group) for group in groups] + ([rest] if rest else [])


def check_separability(
    jet: Jet, groups: list[list[int]], mode: str = "add", threshold: float = THRESHOLD
) -> HypothesisResult:
    """Does f split additively (``mode="add"``) or multiplicatively (``"mul"``) into ``groups``?"""
    if mode not in ("add", "mul"):
        raise ValueError(f"mode must be 'add' or 'mul', got {mode!r}")
    full = with_rest(groups, jet.n)
    score = cross_score(pair_scores(jet if mode == "add" else jet.log()), full)
    name = "additive" if mode == "add" else "multiplicative"
    return HypothesisResult(name, full, score < threshold, score, threshold)


def general_pair_scores(jet: Jet) -> torch.Tensor:
    """S (n, n): for every pair (i, j), the score above of log|f_j/f_i| between i and j, all pairs
    at once from :meth:`Jet.log_partials` (diagonal 0, +inf where no row is finite)."""
    if "general" in jet.cache:
        return jet.cache["general"]
    R, L, X = jet.log_partials()
    s = jet.sigma
    # pair (i, j) on axes 1, 2; the ratio's derivative along input c on axis 3
    slope = (R[:, None, :, :] - R[:, :, None, :]) * s
    curve = (L[:, None, :, :] - L[:, :, None, :]) * s * s
    a = (_median(slope.abs()) + _median(curve.abs())).nan_to_num(nan=0.0)  # (i, j, c)
    own = torch.minimum(a.diagonal(dim1=0, dim2=2).T, a.diagonal(dim1=1, dim2=2))  # min(a_i, a_j) per pair
    cross = _median(((X.transpose(1, 2) - X) * s[:, None] * s[None, :]).abs())
    scores = torch.where(cross == 0, torch.zeros_like(cross), cross / (own + FLOOR * a.amax(dim=2)))
    jet.cache["general"] = _tidy(scores)
    return jet.cache["general"]


def ratio_dependence(jet: Jet, a: int, b: int, inputs: list[int]) -> torch.Tensor:
    """med|σ_c ∂_c log|f_b/f_a|| for each c in ``inputs``: by what fraction a 1σ change of x_c
    changes the ratio of the two partial derivatives (second derivatives only)."""
    index = torch.tensor(inputs, dtype=torch.long)
    if not inputs:
        return torch.zeros(0, dtype=jet.g.dtype)
    ga, gb = (torch.where(jet.g[:, k] == 0, float("nan"), jet.g[:, k])[:, None] for k in (a, b))
    slope = jet.H[:, b, index] / gb - jet.H[:, a, index] / ga
    return torch.nanmedian((slope * jet.sigma[index]).abs(), dim=0).values.nan_to_num(nan=float("inf"))


def leads(jet: Jet, groups: list[list[int]]) -> list[int]:
    """Each group's strongest input: the least noisy representative of the group."""
    a = strengths(jet).nan_to_num(nan=0.0)
    return [max(group, key=lambda i: float(a[i])) for group in groups]


def general_cross_score(jet: Jet, groups: list[list[int]], stop_at: float = float("inf")) -> float:
    """The worst score of f = h(Σ_g p_g(x_g)) over pairs of groups (module docstring), through the
    groups' strongest inputs (if f has that form, any choice gives zero; the strongest are the
    least noisy). Two one-input groups read the pairwise matrix; a larger group needs the third
    derivatives of its lead (one backward pass). Stops once the score reaches ``stop_at``."""
    heads, worst = leads(jet, groups), 0.0
    pairwise = None
    for first in range(len(groups)):
        for second in range(first + 1, len(groups)):
            a, b = heads[first], heads[second]
            pair = [groups[first], groups[second]]
            others = [c for c in range(jet.n) if c not in set(pair[0]) | set(pair[1])]
            if others:
                worst = max(worst, float(ratio_dependence(jet, a, b, others).max()))
            if len(pair[0]) == len(pair[1]) == 1:
                pairwise = general_pair_scores(jet) if pairwise is None else pairwise
                worst = max(worst, float(pairwise[a, b]))
            elif worst < stop_at:
                worst = max(worst, cross_score(pair_scores(jet.log_ratio(a, b)), pair))
            if worst >= stop_at:
                return worst
    return worst


def check_general_separability(jet: Jet, groups: list[list[int]], threshold: float = THRESHOLD) -> HypothesisResult:
    """Is f = h(p_1(x_A1) + p_2(x_A2) + ...) for the named groups (plus the rest as one more)?"""
    full = with_rest([list(group) for group in groups if group], jet.n)
    score = general_cross_score(jet, full) if len(full) > 1 else 0.0
    return HypothesisResult("general", full, score < threshold, score, threshold)
