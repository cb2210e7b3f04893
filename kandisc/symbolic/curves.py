"""One-variable laws fitted straight from their rows: the library's best ``c·f(a·u + b) + d``.

Where a problem is one curve (a separable part of one input, the dimensionless problem of a
single group) the rows themselves can be fitted by every library function at once, with no
network and no spline between: the spline of a network is what limits a curve of several
periods (``2·(1 - cos(k·d))`` for k·d in 1–25). :func:`library_curves` fits every row pair
``(x[e], y[e])`` (the vectorised :func:`kandisc.symbolic.edge_fit.fit_edges_rescaled`, rows as
edges) and returns the best fits by r² as sympy expressions of each row's own ``inner``
expression, full precision, for the caller to snap and score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import sympy as sp
import torch

from kandisc.model.functions import DEFAULT_LIBRARY, FUNCTIONS
from kandisc.symbolic.edge_fit import fit_edges_rescaled

LIBRARY = [n for n in DEFAULT_LIBRARY if n != "0"]


def spread_rows(x: np.ndarray, most: int) -> np.ndarray:
    """Indices of at most about ``most`` rows spread evenly over the sorted ``x``."""
    return np.argsort(x, kind="stable")[:: max(1, len(x) // most)]


def library_curves(
    x: np.ndarray,
    y: np.ndarray,
    inner: Sequence[sp.Expr],
    most: int,
    always: Sequence[str] = (),
    library: Sequence[str] = LIBRARY,
    **search,
) -> list[tuple[int, float, sp.Expr]]:
    """The ``most`` best fits over all rows and functions, then those of ``always`` on each row,
    as ``(row, r², c·f(a·inner[row] + b) + d)``, best r² first.

    ``x``, ``y``: (rows, samples). ``search``: the slope search of ``fit_edges`` on x mapped to
    [-1, 1] (its default a_range ±10 reaches about three periods across the rows).
    """
    xs, ys = (torch.as_tensor(np.atleast_2d(v), dtype=torch.float64) for v in (x, y))
    fits = fit_edges_rescaled(xs, ys, library, **search)
    r2 = torch.nan_to_num(fits.r2, nan=-math.inf)
    order = torch.argsort(r2.flatten(), descending=True)
    picked = [divmod(int(k), len(library)) for k in order[:most]]
    picked += [(e, list(library).index(n)) for e in range(len(inner)) for n in always if n in library]
    out, seen = [], set()
    for e, f in picked:
        if (e, f) in seen or not math.isfinite(float(r2[e, f])):
            continue
        seen.add((e, f))
        a, b, c, d = (sp.Float(float(v), 15) for v in fits.params[e, f])
        out.append((e, float(r2[e, f]), c * FUNCTIONS[library[f]].sympy(a * inner[e] + b) + d))
    return out
