"""R² and RMSE: one convention (NaN where R² is undefined) for every caller."""

import math

import numpy as np
import sympy as sp

from kandisc.metrics import r2_score, rmse


def test_r2_is_one_minus_sse_over_sst():
    t = np.array([1.0, 2.0, 3.0, 4.0])
    p = t + np.array([0.1, -0.1, 0.1, -0.1])
    assert math.isclose(r2_score(t, p), 1 - 0.04 / 5.0)
    assert r2_score(t, t) == 1.0
    assert math.isclose(rmse(t, p), 0.1)


def test_r2_is_nan_where_undefined():
    assert math.isnan(r2_score([], []))
    assert math.isnan(r2_score([2.0, 2.0, 2.0], [2.0, 2.0, 2.0]))  # constant target: 0/0
    assert math.isnan(r2_score([2.0, 2.0], [1.0, 3.0]))
    assert math.isnan(rmse([], []))


def test_non_finite_predictions_never_look_like_a_fit():
    t = np.array([1.0, 2.0, 3.0])
    assert not math.isfinite(r2_score(t, [1.0, np.inf, 3.0]))
    assert math.isnan(r2_score(t, [1.0, np.nan, 3.0]))
    assert rmse(t, [1.0, np.nan, 3.0]) == math.inf


def test_every_caller_uses_it():
    """The summary, predict, the pred-vs-true plot and formula candidates report the same R²."""
    from kandisc.pipeline.finalize import regression_metrics
    from kandisc.symbolic.scorer import Scorer

    x = np.linspace(-1, 1, 20)[:, None]
    y = x[:, 0] ** 2
    summary = regression_metrics(y[:, None], (y + 0.01)[:, None], ["f"])
    assert summary["r2"]["f"] == r2_score(y, y + 0.01)
    s = sp.Symbol("x")
    scorer = Scorer([s], x, y, x, y)
    assert math.isclose(scorer.candidate(s**2 + 0.01, "test").test_r2, r2_score(y, y + 0.01))
    constant = Scorer([s], x, np.ones(20), x, np.ones(20))
    assert math.isnan(constant.candidate(s * 0 + 1, "test").test_r2)
