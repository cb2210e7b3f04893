"""A law of one dimensionless variable is a curve: ``y = P·g(w)``, fitted straight from the rows.

With ``units:`` and a single group π the dimensionless problem is one-dimensional, and a curve
needs no network: the rows are fitted by every library function at once
(:func:`kandisc.symbolic.curves.library_curves`), as

    y / (P·w^k) ≈ c·f(a·h(w) + b) + d,   h in w, w², 1/w, √w, log w;  k in -1, 0, 1,

with w = π. With two groups the law may still be a curve of one combination of them (Snell's
``asin(lambd/(n*d))`` is one of w = π1/π2 for the groups n and lambd/d): then w is π1·π2 or
π1/π2, both tried, with k = 0 only. The inner maps reach ``1/sqrt(1 - (v/c)**2)`` (f = 1/sqrt of w²) and
``1/sqrt(1 + m2/m1)`` (of 1/w) in one function; the powers undo a prefactor chosen one power of
w away from the law's (``c·m·v`` where the law has ``m·c²``). For sine and cosine of w and 1/w
the slope search is wide (±40 on the rows mapped to [-1, 1]), so a curve of many periods is
found where a spline of 10 intervals cannot follow it (``2·U·(1 - cos(k·d))`` for k·d in 1–25,
``sin(2π·E·t/h)**2``). The best fits by r² are written in the columns, snapped and scored on the
held-out rows like every other formula.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from kandisc.io.data import Table
from kandisc.knowledge.buckingham import Analysis, dimensionless_problem
from kandisc.symbolic.curves import library_curves, spread_rows
from kandisc.symbolic.scorer import Candidate, Scorer
from kandisc.symbolic.simplify import build_candidates, round_significant

MAX_GROUPS = 2  # beyond two groups, one combination of them is one guess among too many
_INNER = (  # h: its values and its expression, of the variable's values / expression
    (lambda w: w, lambda g: g),
    (lambda w: w**2, lambda g: g**2),
    (lambda w: 1 / w, lambda g: 1 / g),
    (np.sqrt, sp.sqrt),
    (np.log, sp.log),
)
_POWERS = (0, -1, 1)
_POINTS = 256  # rows the library is fitted to (spread over the variable's range)
_FITS = 4  # best (w, h, k, f) fits written out and snapped (sympy's simplify: 1-3 s each)
_CLOSE = 100.0  # ... of those whose unexplained variance 1 - r² is within this factor of the best's
# Below this r² on the rows (search.accept_r2's default; 1 % noise leaves 0.9999) no curve is the
# law, and its snapped variants would only cost seconds.
_LAW_R2 = 0.999
# Many periods need many slopes (steps of 1 over ±40, so a period's worth of r² is never stepped
# over): only for the periodic functions of w and 1/w (a group is turned to a median below 1,
# so k·d over 1-25 is 1/π), where the whole library would cost 10 s.
_PERIODIC = ("sin", "cos")
_WIDE = {"a_range": (-40.0, 40.0), "mesh": 81}


def curve_law(analysis: Analysis, table: Table, scorer: Scorer, train_idx) -> list[Candidate]:
    """The formulas ``P·w^k·(c·f(a·h(w) + b) + d)`` of the best fits, snapped and scored."""
    columns = {name: table.X[train_idx, i] for i, name in enumerate(table.input_names)}
    _, values, ratio = dimensionless_problem(analysis, columns, scorer.y_train)
    rows: list[tuple[np.ndarray, np.ndarray, sp.Expr, sp.Expr, int]] = []  # (h(w), target, h expr, w, k)
    variables = _variables(values, [g.expr for g in analysis.groups])
    # A combination of two groups has its own prefactor already: no powers of it (a third of the rows).
    powers = _POWERS if len(analysis.groups) == 1 else (0,)
    for w, w_expr in variables:
        spread = spread_rows(w, _POINTS)
        w, target = w[spread], ratio[spread]
        with np.errstate(all="ignore"):
            for values_of, expr_of in _INNER:
                h = values_of(w)
                for k in powers:
                    t = target / w**k
                    if np.all(np.isfinite(h)) and np.all(np.isfinite(t)) and np.ptp(h) > 0:
                        rows.append((h, t, expr_of(w_expr), w_expr, k))
    if not rows:
        return []
    x, y = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    inner = [r[2] for r in rows]
    fits = library_curves(x, y, inner, _FITS)
    plain = [e for e, r in enumerate(rows) if r[2] in (r[3], 1 / r[3])]  # h(w) = w or 1/w
    if plain:
        wide = library_curves(x[plain], y[plain], [inner[e] for e in plain], _FITS, library=_PERIODIC, **_WIDE)
        fits += [(plain[e], r2, expr) for e, r2, expr in wide]
    fits.sort(key=lambda fit: -fit[1])

    def law(row: int, expr: sp.Expr) -> sp.Expr:
        _, _, _, w_expr, k = rows[row]
        return analysis.prefactor * w_expr**k * expr

    if fits[0][1] < _LAW_R2:  # no curve of w is the law: its best fit as it is, for the front
        return [scorer.candidate(round_significant(law(fits[0][0], fits[0][2])), "curve")]
    # Only the fits about as good as the best are worth snapping: on exact rows that is the law
    # (and its sine-for-cosine twin), not a dozen near misses at 2 s of sympy each.
    unexplained = _CLOSE * (1 - fits[0][1]) + 1e-12
    out: list[Candidate] = []
    for row, _, expr in [fit for fit in fits if 1 - fit[1] <= unexplained][:_FITS]:
        out += build_candidates(law(row, expr), scorer)
    return out


def _variables(values: np.ndarray, exprs: list[sp.Expr]) -> list[tuple[np.ndarray, sp.Expr]]:
    """The one-variable candidates: the group itself, or the product and the ratio of two."""
    if len(exprs) == 1:
        return [(values[:, 0], exprs[0])]
    (a, b), (ea, eb) = values.T, exprs
    return [(a * b, ea * eb), (a / b, ea / eb)]
