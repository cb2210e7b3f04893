"""Goodness of fit, computed one way everywhere (run summaries, predict, plots, formula candidates).

R² = 1 − SSE/SST, with SSE the sum of squared errors and SST the sum of squares of the target
about its mean. **Convention: R² is NaN where it is undefined** — no rows, or a constant target
(SST = 0), where every prediction, right or wrong, would divide by zero. JSON files write NaN as
null and tables show it as a dash. Non-finite predictions give a non-finite R² (never a number
that looks like a fit).
"""

from __future__ import annotations

import math

import numpy as np


def r2_score(y_true, y_pred) -> float:
    """R² of ``y_pred`` against ``y_true`` (1-D, same length); NaN for no rows or a constant target."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.size == 0:
        return math.nan
    sst = float(np.sum((t - t.mean()) ** 2))
    if not sst > 0:
        return math.nan
    with np.errstate(all="ignore"):
        return 1.0 - float(np.sum((p - t) ** 2)) / sst


def rmse(y_true, y_pred) -> float:
    """Root mean squared error; NaN for no rows, inf where a prediction is not finite."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.size == 0:
        return math.nan
    with np.errstate(all="ignore"):
        value = float(np.sqrt(np.mean((p - t) ** 2)))
    return value if math.isfinite(value) else math.inf


def reaches(r2: float | None, threshold: float) -> bool:
    """``r2`` is a number at least ``threshold``: the law verdict (a threshold > 0 excludes constants,
    whose R² is at most 0, and a target constant on the rows, whose R² is undefined)."""
    return r2 is not None and math.isfinite(r2) and r2 >= threshold
