"""Defaults and rules that the engine and the config schema share: one home for each.

The engine (:mod:`kandisc.model.spec`, :mod:`kandisc.train`, :mod:`kandisc.attribution`) takes
these as its keyword defaults and the config schema (:mod:`kandisc.io.config_schema`) shows and
validates the same values, so a default changes in one place. Plain Python (no torch), so that
reading a config stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

# ----- the model's B-spline grids (ModelSpec, model: in the config)
GRID = 5
ORDER = 3  # the B-spline order k
BASE_FUNCTIONS = ("silu", "identity", "zero")
BASE_FUN = "silu"
GRID_EPS = 0.02
GRID_RANGE = (-1.0, 1.0)
NOISE_SCALE = 0.3


# ----- the symbolic stage's retrains (retrain_opt: auto)
# Once every edge is a function, a retrain fits a few constants (c·f(a·x + b) + d per edge):
# Levenberg–Marquardt converges those to rounding in a few iterations, where LBFGS crawls (1e-5
# RMSE after 40 steps on the quickstart's exp(sin + square)). It differentiates by 2 forward
# passes per parameter, so it is taken up to a few hundred; while splines remain, LBFGS.
LM_AUTO_PARAMETERS = 300


def retrain_optimizer(opt: str, n_parameters: int, lm_limit: int, all_symbolic: bool) -> str:
    """The optimiser of a symbolic retrain: ``auto`` is lm once ``all_symbolic`` and up to
    ``LM_AUTO_PARAMETERS`` trainable parameters, else lbfgs; an explicit lm beyond what LM
    takes (``lm_limit``) runs as lbfgs."""
    if opt == "auto":
        return "lm" if all_symbolic and n_parameters <= LM_AUTO_PARAMETERS else "lbfgs"
    return "lbfgs" if opt == "lm" and n_parameters > lm_limit else opt


@dataclass
class TrainSettings:
    """One fit stage (``fit:`` in the config; ``lbfgs_iterations`` is internal)."""

    steps: int = 50
    opt: str = "lbfgs"
    lr: float = 1.0
    lamb: float = 0.0
    lamb_l1: float = 1.0
    lamb_entropy: float = 2.0
    lamb_coef: float = 0.0
    lamb_coefdiff: float = 0.0
    batch: int = -1
    update_grid: bool = True
    grid_update_every: int = 5
    stop_grid_update_step: int = 50
    plateau_rtol: float = 1e-3  # 0 = run every step (see kandisc.train.plateaued)
    plateau_window: int = 3
    lbfgs_iterations: int = 20


@dataclass(frozen=True)
class PruneSettings:
    """Attribution thresholds of one prune stage (``prune:`` in the config)."""

    node_threshold: float = 1e-2
    edge_threshold: float = 3e-2
    input_threshold: float = 1e-2
    prune_inputs: bool = True


def lm_conflict(opt: str, lamb: float, full_batch: bool, batch: int) -> str | None:
    """Why ``opt`` cannot run with these settings, or None.

    Levenberg–Marquardt minimises the plain squared error of every training row at once, so it
    takes neither a penalty nor mini-batches.
    """
    if opt == "lm" and (lamb > 0 or not full_batch):
        return (
            f"opt lm minimises the squared error on the full batch (got lamb {lamb}, batch {batch}); "
            "set lamb: 0 and batch: -1, or use opt: lbfgs"
        )
    return None
