"""A law of one dimensionless group is a curve: ``y = P·g(π)``, fitted straight from the rows.

With ``units:`` and a single group π the dimensionless problem is one-dimensional, and a curve
needs no network: the rows are fitted by every library function at once
(:func:`kandisc.symbolic.curves.library_curves`), as

    y / (P·π^k) ≈ c·f(a·h(π) + b) + d,   h in π, π², 1/π, √π, log π;  k in -1, 0, 1.

The inner maps reach ``1/sqrt(1 - (v/c)**2)`` (f = 1/sqrt of π²) and ``1/sqrt(1 + m2/m1)``
(of 1/π) in one function; the powers undo a prefactor chosen one power of π away from the
law's (``c·m·v`` where the law has ``m·c²``). For sine and cosine of π the slope search is wide
(±40 on the rows mapped to [-1, 1]), so a curve of many periods is found where a spline of 10
intervals cannot follow it (``2·U·(1 - cos(k·d))`` for k·d in 1–25, ``sin(2π·E·t/h)**2``). The best fits by r² are
written in the columns, snapped and scored on the held-out rows like every other formula.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from kandisc.io.data import Table
from kandisc.knowledge.buckingham import Analysis, dimensionless_problem
from kandisc.symbolic.curves import library_curves, spread_rows
from kandisc.symbolic.scorer import Candidate, Scorer
from kandisc.symbolic.simplify import build_candidates

_INNER = (  # h: its values and its expression, of the group's values / expression
    (lambda u: u, lambda g: g),
    (lambda u: u**2, lambda g: g**2),
    (lambda u: 1 / u, lambda g: 1 / g),
    (np.sqrt, sp.sqrt),
    (np.log, sp.log),
)
_POWERS = (0, -1, 1)
_POINTS = 256  # rows the library is fitted to (spread over the group's range)
_FITS = 4  # best (h, k, f) fits written out and snapped (sympy's simplify: 1-3 s each)
_CLOSE = 100.0  # ... of those whose unexplained variance 1 - r² is within this factor of the best's
# Many periods need many slopes (steps of 1 over ±40, so a period's worth of r² is never stepped
# over): only for the periodic functions of π and 1/π (the group is turned to a median below 1,
# so k·d over 1-25 is 1/π), where the whole library would cost 10 s.
_PERIODIC = ("sin", "cos")
_WIDE = {"a_range": (-40.0, 40.0), "mesh": 81}


def curve_law(analysis: Analysis, table: Table, scorer: Scorer, train_idx) -> list[Candidate]:
    """The formulas ``P·π^k·(c·f(a·h(π) + b) + d)`` of the best fits, snapped and scored."""
    columns = {name: table.X[train_idx, i] for i, name in enumerate(table.input_names)}
    _, values, ratio = dimensionless_problem(analysis, columns, scorer.y_train)
    u = values[:, 0]
    rows = spread_rows(u, _POINTS)
    u, ratio = u[rows], ratio[rows]
    group = analysis.groups[0].expr
    xs, ys, inner, powers = [], [], [], []
    with np.errstate(all="ignore"):
        for values_of, expr_of in _INNER:
            h = values_of(u)
            for k in _POWERS:
                t = ratio / u**k
                if np.all(np.isfinite(h)) and np.all(np.isfinite(t)) and np.ptp(h) > 0:
                    xs.append(h), ys.append(t), inner.append(expr_of(group)), powers.append(k)
    if not xs:
        return []
    x, y = np.array(xs), np.array(ys)
    fits = library_curves(x, y, inner, _FITS)
    plain = [e for e, expr in enumerate(inner) if expr in (group, 1 / group)]
    if plain:
        wide = library_curves(x[plain], y[plain], [inner[e] for e in plain], _FITS, library=_PERIODIC, **_WIDE)
        fits += [(plain[e], r2, expr) for e, r2, expr in wide]
    fits.sort(key=lambda fit: -fit[1])
    # Only the fits about as good as the best are worth snapping: on exact rows that is the law
    # (and its sine-for-cosine twin), not a dozen near misses at 2 s of sympy each.
    unexplained = _CLOSE * (1 - fits[0][1]) + 1e-12
    out: list[Candidate] = []
    for row, _, expr in [fit for fit in fits if 1 - fit[1] <= unexplained][:_FITS]:
        out += build_candidates(analysis.prefactor * group ** powers[row] * expr, scorer)
    return out
