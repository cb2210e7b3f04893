"""The explicit rule that picks one library function per edge from its fits (issue 5, point 2).

For each edge, with w = ``weight_simple`` and C a function's complexity:

1. Candidates are the fitted functions other than '0' with a valid fit and r² ≥ ``r2_threshold``.
   '0' never competes on fit: zeroing an edge is the attribution stage's decision. (pykan scored
   '0' like any function, at r² = 0 and complexity 0, so it beat every function with r² below
   0.94 for x or 0.996 for complexity 2 and silently deleted edges; pykan-study §1.8, B3.)
2. Each candidate scores (lower is better)

       score = w·C + (1 − w)·log2(1 − r² + 1e-6)

   One unit of complexity must buy w/(1 − w) bits of fit, i.e. divide the unexplained variance
   1 − r² by 2^(w/(1−w)): 16 at the default w = 0.8, 2 at w = 0.5; w = 1 picks the simplest
   candidate, w = 0 the most accurate. Below the 1e-6 floor a misfit is spline noise and buys
   nothing, so at w = 0.8 a fit with 1 − r² ≤ 1.5e-5 never loses to a more complex function.
   Complexity is not divided by the library's largest one, so adding an exotic function to the
   library never changes the choice among the others.
3. Ties: candidates of the winner's complexity whose misfit 1 − r² + 1e-6 is within a factor 4
   of the winner's explain the edge equally well, and the first of them in library order wins:
   sin, not cos, for a sinusoid (equal up to a phase). A misfit 60 times larger is no tie: 1/sqrt
   at 1 − r² = 9e-5 does not take a log edge fitted to 5e-7.
4. Power laws first: if x, x^2, ... x^5 of no more complexity than the winner fits the edge to
   spline accuracy (1 − r² ≤ 1e-4), the first such power wins. A trained spline is rarely known
   better than that, and a cos crest or a gaussian top that matches its last digits (1 − r² of
   5e-7 against 7e-5 for x^2 on the y² edge of exp(sin(πx)+y²)) is no evidence against the
   parabola; a narrow window of exp or log that a power fits that well is equally a power.
5. An edge without candidates gets name None and stays numeric; the reason gives its best fit.
6. Noise: an edge judged on noisy data rows has a misfit no function can go below, the noise's
   share of the rows' variance (``noise_misfit``, per edge). Misfits count above it (1 − r² −
   noise). The caller sets that edge's floor to what fitting 4 constants to M noisy rows gains
   by chance, 4·noise/M (``noise_floor``). Without this every function's misfit is the noise's,
   no function buys its complexity, and a noisy log edge becomes a line.

Examples at w = 0.8 (score in brackets):

- x^2 at r² = 0.99999 (-1.69) beats x^4 at r² = 0.999999 (-1.39): ten times less misfit is not
  worth one more unit of complexity.
- sin at r² = 0.9999 (-1.05) beats x at r² = 0.93 (+0.03): a sine edge does not lose to a line.
- on exp data over [-1, 1] exp fits exactly (-2.39) and beats x (r² = 0.938, -0.00) and the
  imitations by power laws, which are less accurate or more complex.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from kandisc.model.functions import FUNCTIONS

if TYPE_CHECKING:
    from kandisc.symbolic.edge_fit import EdgeFits

_MISFIT_FLOOR = 1e-6
_TIE_RATIO = 4.0  # misfits within this factor of the winner's (same complexity) are ties
_SPLINE_ACCURACY = 1e-4  # 1 - r² below which a power law is preferred (rule 4)
_ALTERNATIVES = 2  # runners-up kept per edge for the in-context check
_ALWAYS_ALTERNATIVE = ("x", "log")  # and these, the power laws of a log target
_POWERS = ("x", "x^2", "x^3", "x^4", "x^5")
_ZERO = "0"


@dataclass
class Choice:
    """The function chosen for one edge, or ``name=None`` (the edge stays numeric) and why.

    For ``name=None``, ``params`` and ``complexity`` are NaN and ``r2`` is the best r² any
    non-zero function reached (-inf when none had a valid fit).
    """

    edge: int
    name: str | None
    params: tuple[float, float, float, float]
    r2: float
    complexity: float
    reason: str
    # The next functions by score that also pass the threshold, (name, params) each: what an
    # in-context check may try in this edge's place (pipeline/in_context.py).
    alternatives: tuple = ()


def score_candidates(
    fits: EdgeFits, complexities: Mapping[str, float], weight_simple: float = 0.8, misfit_floor=_MISFIT_FLOOR
) -> torch.Tensor:
    """Scores (E, F) of the module's rule, lower is better; inf for '0' and for invalid fits.

    ``complexities`` overrides the library's complexity by name; missing names use the library's.
    The r² threshold is not applied here (see ``choose``). ``misfit_floor``: a number or one per
    edge (E,), the misfit below which fits are equal (lower for an edge fitted to data rows).
    """
    if not 0.0 <= weight_simple <= 1.0:
        raise ValueError(f"weight_simple must be in [0, 1]; got {weight_simple}")
    comp = _complexities(fits.names, complexities).to(fits.r2.dtype)
    floor = torch.as_tensor(misfit_floor, dtype=fits.r2.dtype).reshape(-1, 1)
    misfit = torch.log2((1.0 - fits.r2).clamp(min=0.0) + floor)
    score = weight_simple * comp + (1.0 - weight_simple) * misfit
    usable = torch.isfinite(fits.r2) & torch.tensor([n != _ZERO for n in fits.names])
    return torch.where(usable, score, math.inf)


def choose(
    fits: EdgeFits,
    complexities: Mapping[str, float],
    weight_simple: float = 0.8,
    r2_threshold: float = 0.9,
    power_first: bool = True,
    misfit_floor=_MISFIT_FLOOR,
    noise_misfit=None,
) -> list[Choice]:
    """One ``Choice`` per edge by the module's rule; '0' is never chosen. ``power_first=False``
    drops rule 4 (the discovery search tries both: a narrow window of log is also a parabola).
    ``noise_misfit`` (E,): the misfit of the noise on each edge's rows (rule 6; 0 for none)."""
    floors = torch.as_tensor(misfit_floor, dtype=torch.float64).expand(fits.r2.shape[0])
    if noise_misfit is not None:
        noise = torch.as_tensor(noise_misfit, dtype=torch.float64).clamp(min=0.0)
        fits = dataclasses.replace(fits, r2=(fits.r2 + noise[:, None].to(fits.r2.dtype)).clamp(max=1.0))
    score = score_candidates(fits, complexities, weight_simple, floors)
    eligible = torch.isfinite(score) & (fits.r2 >= r2_threshold)
    score = torch.where(eligible, score, math.inf)
    comp = _complexities(fits.names, complexities)
    return [
        _choose_edge(fits, e, score[e], comp, r2_threshold, power_first, float(floors[e]))
        for e in range(fits.r2.shape[0])
    ]


def _complexities(names: list[str], overrides: Mapping[str, float]) -> torch.Tensor:
    return torch.tensor([float(overrides.get(n, FUNCTIONS[n].complexity)) for n in names], dtype=torch.float64)


def _choose_edge(
    fits, e: int, score: torch.Tensor, comp: torch.Tensor, threshold: float, power_first: bool, floor: float
) -> Choice:
    n_candidates = int(torch.isfinite(score).sum())
    if n_candidates == 0:
        return _numeric(fits, e, threshold)
    k = _pick(fits, e, score, comp, power_first, floor)
    order = torch.argsort(score, stable=True)
    runner = [int(j) for j in order[:2] if int(j) != k and torch.isfinite(score[j])]
    reason = f"best score of {n_candidates} with r2 >= {threshold:g}"
    if runner:
        reason += f" (runner-up: {fits.names[runner[0]]} r2={float(fits.r2[e, runner[0]]):.6g})"
    params = tuple(float(v) for v in fits.params[e, k])
    others = [int(j) for j in order[: _ALTERNATIVES + 1] if int(j) != k and torch.isfinite(score[j])]
    # The plain laws too, when they pass: a noisy log edge may rank below four of its imitations.
    others += [
        j
        for j, n in enumerate(fits.names)
        if n in _ALWAYS_ALTERNATIVE and j != k and j not in others and torch.isfinite(score[j])
    ]
    alternatives = tuple((fits.names[j], tuple(float(v) for v in fits.params[e, j])) for j in others)
    return Choice(e, fits.names[k], params, float(fits.r2[e, k]), float(comp[k]), reason, alternatives)


def _pick(
    fits: EdgeFits, e: int, score: torch.Tensor, comp: torch.Tensor, power_first: bool = True, floor=_MISFIT_FLOOR
) -> int:
    """Index of the chosen function: rules 2-4 of the module docstring."""
    winner = int(score.argmin())
    eligible = torch.isfinite(score)
    misfit = (1.0 - fits.r2[e].double()).clamp(min=0.0) + floor
    power = torch.tensor([n in _POWERS for n in fits.names])
    powers = eligible & power & (comp <= comp[winner]) & (misfit <= _SPLINE_ACCURACY + floor)
    if power_first and bool(powers.any()):
        return int(powers.nonzero()[0, 0])
    tied = eligible & (comp == comp[winner]) & (misfit <= _TIE_RATIO * misfit[winner])
    return int(tied.nonzero()[0, 0])  # first in library order among the ties


def _numeric(fits: EdgeFits, e: int, threshold: float) -> Choice:
    r2 = fits.r2[e].clone()
    r2[[n == _ZERO for n in fits.names]] = -math.inf
    best = int(r2.argmax()) if r2.numel() else 0
    nan4 = (math.nan,) * 4
    if r2.numel() == 0 or not math.isfinite(float(r2[best])):
        return Choice(e, None, nan4, -math.inf, math.nan, "no valid fit of any library function")
    best_r2 = float(r2[best])
    reason = f"below r2_threshold {threshold:g} (best: {fits.names[best]} r2={best_r2:.4g})"
    return Choice(e, None, nan4, best_r2, math.nan, reason)
