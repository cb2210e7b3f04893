"""Which candidate fits the search tries, in order of promise and cost.

Families (each a width, a target transform and a staged pipeline):

- ``log-additive``: for one-signed targets, ``log|y|`` as a sum of one-variable functions, a
  ``[n, 1]`` network. A product of powers and of factors such as ``(1 + x)`` becomes a sum of
  logs, which the symbolic stage snaps exactly: most laws of physics are of this kind.
- ``log-ratio``: ``log-additive`` with the ratios ``a/b`` of positive inputs as further inputs,
  so that a factor of a dimensionless ratio (``1/(1 - v/c)``, ``sqrt((1 + v/c)/(1 - v/c))``) is
  one edge: ``c·log(1 - u)``, ``atanh(u)``. Up to ``MAX_RATIO_INPUTS`` inputs.
- ``log-ratio-sq``: the same with the squared ratios ``(a/b)**2`` (``1/sqrt(1 - v**2/c**2)`` is
  ``-log(1 - u)/2``). Not both in one network: ``g(r) + h(r²)`` has no unique split, and the
  penalty leaves both edges half a factor each.
- ``log-sq``: for data of one column, ``log-additive`` with its square as a further input: the
  dimensionless problem of a single group u (``units:``) is often ``1/sqrt(1 - u**2)``, which is
  ``-log(1 - w)/2`` of w = u², one edge.
- ``sum``: ``[n, 5, 1]`` sum nodes on the standardised target (sums, compositions).
- ``log-additive-accurate``: the same with each edge's function chosen by accuracy alone (no
  "powers first" rule: over a narrow window log(x) fits a parabola to spline accuracy).
- ``product``: one multiplication node of arity n whose k-th factor is a function of input k
  alone, ``f1(x1)·f2(x2)···`` (a diagonal first layer, identity base functions): products whose
  factors change sign (``r·F·sin(θ)``), which a log cannot reach. Without the diagonal each factor
  would be a sum over every input, and the cross terms leak into the formula.
- ``mult``: ``[n, [2, 2], 1]``, two multiplication nodes beside two sum nodes, with a warm-up fit
  without the sparsity penalty so the factors do not shrink together before they are useful.
- ``log-deep``: for one-signed targets, ``[n, 3, 1]`` on ``log|y|`` (a product of functions of
  sums, e.g. ``m/sqrt(1 - v**2/c**2)``).

The families that rewire the network are skipped when the user fixed the structure
(``model.width``, ``modules`` or a prior); the log families are skipped when a target changes
sign or a prior is given (a prior is a formula of ``y`` itself). ``search.seeds`` repeats the
network families with further seeds; ``search.candidates`` restricts the families.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from kandisc.io.config_schema import DEFAULT_PIPELINE, SEARCH_CANDIDATES, KandiscConfig
from kandisc.io.scaling import log_sign

_PLATEAU = {"plateau_rtol": 1e-3, "plateau_window": 3}  # every candidate stage stops once it stalls


def _with_plateau(pipeline: list) -> list:
    """Every fit stage stops once it stalls; the symbolic stage retrains by LM (``_lm_retrain``)."""
    return _lm_retrain([{"fit": {**item["fit"], **_PLATEAU}} if "fit" in item else item for item in pipeline])


def _lm_retrain(pipeline: list) -> list:
    """The symbolic stage's retraining by Levenberg–Marquardt (no penalty there): a few steps
    where 20 LBFGS steps took most of a candidate's time (27 of 37 s on a [3, 1] network)."""
    return [
        {"symbolic": {**item["symbolic"], "retrain_opt": "lm", "retrain_steps": 8}} if "symbolic" in item else item
        for item in pipeline
    ]


def _accurate(pipeline: list) -> list:
    return [
        {"symbolic": {**item["symbolic"], "power_first": False}} if "symbolic" in item else item for item in pipeline
    ]


_LOG_ADDITIVE_PIPELINE = [  # no penalty: Levenberg–Marquardt, a few steps where LBFGS takes dozens
    {"fit": {"steps": 30, "opt": "lm"}},
    {"prune": {}},
    {"refine": {"grid": 10}},
    {"fit": {"steps": 20, "opt": "lm"}},
    {"symbolic": {}},
]
_PRODUCT_PIPELINE = [  # one factor per input and no cross edges: nothing to sparsify, nothing to prune
    # The worker starts the network at the separable least-squares fit (search/factorize.py);
    # Levenberg–Marquardt then polishes it: LBFGS stalls on products, whose factors trade scale.
    {"fit": {"steps": 20, "opt": "lm", "lamb": 0.0, "update_grid": False}},
    {"refine": {"grid": 10}},
    {"fit": {"steps": 30, "opt": "lm", "lamb": 0.0, "update_grid": False}},
    {"symbolic": {}},
]
_LOG_RATIO_PIPELINE = [  # the ratios are redundant with the columns: sparsify so one edge carries each factor
    {"fit": {"steps": 30}},
    {"fit": {"steps": 40, "lamb": 0.001}},
    {"prune": {}},
    {"fit": {"steps": 40}},
    {"refine": {"grid": 10}},
    {"fit": {"steps": 30}},
    {"symbolic": {}},
]
_MULT_PIPELINE = [
    {"fit": {"steps": 30}},  # warm-up: the factors grow before the penalty acts on them
    {"fit": {"steps": 40, "lamb": 0.002}},
    {"prune": {}},
    {"fit": {"steps": 30, "lamb": 0.002}},
    {"prune": {}},
    {"fit": {"steps": 50}},
    {"refine": {"grid": 10}},
    {"fit": {"steps": 50}},
    {"symbolic": {}},
]


@dataclass(frozen=True)
class Candidate:
    """One fit of the search: a network, a target transform, a pipeline and a seed."""

    name: str
    family: str
    width: list
    pipeline: list
    seed: int
    y_log: tuple[int, ...]  # per target: 0 = raw target, ±1 = log(±y)
    model: dict = field(default_factory=dict)  # further model keys (mult_arity, base_fun)
    auxiliary: dict = field(default_factory=dict)  # extra input features, name -> formula of columns
    masks: tuple | None = None  # per layer, (in nodes, out subnodes) booleans: the edges allowed

    def describe(self) -> dict:
        return {"name": self.name, "family": self.family, "width": self.width, "seed": self.seed}


def _families(n_in: int, n_out: int, user_width: list | None) -> dict[str, tuple[list, list, dict]]:
    """family -> (width, pipeline, model keys)."""
    default = _with_plateau(DEFAULT_PIPELINE)
    if user_width is not None:  # the user fixed the structure: vary only transform and seed
        return {"sum": (user_width, default, {}), "log-deep": (user_width, default, {})}
    families = {
        "log-additive": ([n_in, n_out], _with_plateau(_LOG_ADDITIVE_PIPELINE), {}),
        "product": (
            [n_in, [0, n_out], n_out],
            _with_plateau(_PRODUCT_PIPELINE),
            {"mult_arity": n_in, "base_fun": "identity"},
        ),
        "sum": ([n_in, 5, n_out], default, {}),
        "mult": ([n_in, [2, 2], n_out], _with_plateau(_MULT_PIPELINE), {}),
        "log-deep": ([n_in, 3, n_out], default, {}),
    }
    if n_in < 2:
        del families["product"]  # a product of one factor is the sum family's job
    return families


# [n, 1] on log|y| has one optimum; the product starts at its least-squares fit: a seed changes nothing
_ONE_SEED = ("log-additive", "log-additive-accurate", "log-ratio", "log-ratio-sq", "log-sq", "product")
MAX_RATIO_INPUTS = 5  # 10 pairs, 10 ratio features: beyond that the log-ratio network gets too wide


DEEP_FAMILIES = ("sum", "mult", "log-deep")  # networks with a hidden layer: the slow end of the plan


def first_deep(candidates: list) -> int:
    """The index of the first candidate of a deep family (the length when there is none)."""
    return next((k for k, c in enumerate(candidates) if c.family in DEEP_FAMILIES), len(candidates))


def _diagonal_product_masks(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``[n, [0, n_out], n_out]`` with arity n: input k feeds factor k of every product node only."""
    first = np.zeros((n_in, n_out * n_in), dtype=bool)
    for node in range(n_out):
        first[:, node * n_in : (node + 1) * n_in] = np.eye(n_in, dtype=bool)
    return first, np.eye(n_out, dtype=bool)


def square_features(names: list[str]) -> dict[str, str]:
    """``a**2`` of each column ``a``, named ``a_sq`` (made unique against the columns)."""
    features: dict[str, str] = {}
    for a in names:
        base = f"{a}_sq"
        while base in names or base in features:
            base += "_"
        features[base] = f"{a}**2"
    return features


def ratio_features(x_train: np.ndarray, names: list[str], squared: bool = False) -> dict[str, str]:
    """``a/b`` for every pair of strictly positive columns, named ``a_over_b`` (or ``(a/b)**2``,
    named ``a_over_b_sq``, when ``squared``).

    The column with the smaller median is the numerator, so a ratio such as v/c (below 1, as in
    ``1 - v/c``) appears the way physics writes it; its inverse would need another function.
    """
    positive = [k for k in range(len(names)) if bool(np.all(x_train[:, k] > 0))]
    median = np.median(x_train, axis=0) if len(x_train) else np.zeros(len(names))
    features: dict[str, str] = {}
    for i, p in enumerate(positive):
        for q in positive[i + 1 :]:
            a, b = (names[p], names[q]) if median[p] <= median[q] else (names[q], names[p])
            base = f"{a}_over_{b}"
            while base in names or base in features:
                base += "_"
            if squared:
                features[base + "_sq"] = f"({a}/{b})**2"
            else:
                features[base] = f"{a}/{b}"
    return features


def plan(
    cfg: KandiscConfig, y_train: np.ndarray, x_train: np.ndarray, names: list[str], width: list
) -> list[Candidate]:
    """The candidates for this config and data (``width`` is the resolved default/user width;
    ``x_train``/``names`` the model's raw training inputs)."""
    n_in, n_out = len(names), y_train.shape[1]
    fixed = cfg.model.width is not None or bool(cfg.modules) or cfg.prior.active
    signs = tuple(log_sign(y_train[:, t]) for t in range(n_out))
    log_ok = all(signs) and not cfg.prior.active
    wanted = cfg.search.candidates or list(SEARCH_CANDIDATES)
    families = _families(n_in, n_out, width if fixed else None)
    if cfg.auxiliary and "log-additive" in families:
        # The user's features are functions of the columns: the sum of logs is not unique until
        # the penalty picks one edge per factor.
        families["log-additive"] = ([n_in, n_out], _with_plateau(_LOG_RATIO_PIPELINE), {})
    columns = n_in - len(cfg.auxiliary)  # ratios of the data's own columns, not of the user's features
    ratios: dict[str, dict[str, str]] = {}
    if not fixed and 2 <= columns <= MAX_RATIO_INPUTS:
        for family, squared in (("log-ratio", False), ("log-ratio-sq", True)):
            ratios[family] = ratio_features(x_train[:, :columns], names[:columns], squared)
    if not fixed and columns == 1:
        ratios["log-sq"] = square_features(names[:1])
    # The same network with edges chosen by accuracy alone: log(x) over [1, 2.3] fits a parabola
    # to spline accuracy, which the power-first rule would take; the merged front decides.
    if "log-additive" in families:
        width_la, pipeline_la, _ = families["log-additive"]
        families["log-additive-accurate"] = (width_la, _accurate(pipeline_la), {})
    for family, features in ratios.items():
        families[family] = ([n_in + len(features), n_out], _accurate(_with_plateau(_LOG_RATIO_PIPELINE)), {})
    out: list[Candidate] = []
    for repeat in range(cfg.search.seeds):
        for family in SEARCH_CANDIDATES:
            if family not in families or family not in wanted:
                continue
            is_log = family.startswith("log")
            if (is_log and not log_ok) or (family in _ONE_SEED and repeat > 0):
                continue  # a [n, 1] network on log|y| has one optimum; a second seed finds it again
            fam_width, pipeline, model = families[family]
            seed = cfg.seed + repeat
            name = family if repeat == 0 else f"{family}-s{seed}"
            y_log = signs if is_log else (0,) * n_out
            aux = ratios.get(family, {})
            masks = _diagonal_product_masks(n_in, n_out) if family == "product" else None
            out.append(
                Candidate(
                    name,
                    family,
                    copy.deepcopy(fam_width),
                    copy.deepcopy(pipeline),
                    seed,
                    y_log,
                    dict(model),
                    aux,
                    masks,
                )
            )
    return out
