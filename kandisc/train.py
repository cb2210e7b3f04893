"""Training a MultKAN: LBFGS, Adam or Levenberg–Marquardt, KAN sparsity penalty, grid updates,
NaN guard, callbacks.

LBFGS is :class:`kandisc.lbfgs.FlatLBFGS` for parameters on the CPU (torch's method with its
vectors in numpy) and ``torch.optim.LBFGS`` elsewhere. The objective evaluates the model with
``first_order=True``: it is differentiated once, so the layers may run their compiled kernel.

``train`` runs one fit stage with :class:`~kandisc.defaults.TrainSettings` (re-exported here).
It never seeds global RNGs (mini-batches come from the caller's ``torch.Generator``), reports
every step through a callback (progress bars, metrics files), and keeps the last parameters
whose loss was finite: a non-finite loss rolls the model back and
restarts the optimiser; repeated failures end the stage with status ``"nonfinite"``.

The loss is the mean squared residual, ``model(x) - y`` unless the caller passes ``residual``
(a physics task's: residuals of derivatives of the model, :mod:`kandisc.tasks`); train.py stays
generic and knows no task.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from kandisc.defaults import TrainSettings, lm_conflict
from kandisc.lbfgs import FlatLBFGS
from kandisc.lm import LevenbergMarquardt
from kandisc.model import MultKAN, direct
from kandisc.model import stats as model_stats
from kandisc.torch_optim import optimizer

__all__ = ["Dataset", "StepRecord", "TrainResult", "TrainSettings", "rmse", "train"]

MAX_CONSECUTIVE_ROLLBACKS = 3
NONFINITE_LOSS = 1e300  # what the optimiser sees for a non-finite loss


@dataclass
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass
class StepRecord:
    step: int
    train_loss: float  # RMSE of the prediction (regulariser excluded)
    test_loss: float
    reg: float


def plateaued(objectives: list[float], window: int, rtol: float) -> bool:
    """True when the objective fell by at most ``rtol`` (relative) over the last ``window`` steps.

    ``objectives`` holds the steps since the last grid update only: a grid update changes the
    function being minimised, so losses across one do not compare.
    """
    if rtol <= 0 or len(objectives) <= window:
        return False
    old, new = objectives[-window - 1], objectives[-1]
    return old - new <= rtol * abs(old)


@dataclass
class TrainResult:
    status: str = "ok"  # "ok" | "nonfinite"
    steps_done: int = 0
    rollbacks: int = 0
    history: list[StepRecord] = field(default_factory=list)
    message: str = ""
    plateaued: bool = False  # stopped before its step budget by the plateau rule


StepCallback = Callable[[StepRecord], None]
Residual = Callable[[MultKAN, torch.Tensor, torch.Tensor], torch.Tensor]  # (model, x, y) -> (B, k)


def regression_residual(model: MultKAN, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # Differentiated once at most (gradients, LM's Jacobian): the layers may use their kernel.
    return model(x, first_order=True) - y


def _objective(
    model: MultKAN, x, y, s: TrainSettings, residual: Residual | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(objective, mse, reg): reg statistics are only computed when the penalty is on."""
    needs_stats = s.lamb > 0 and (s.lamb_l1 > 0 or s.lamb_entropy > 0)
    if needs_stats:
        pred, traces = model.forward_traced(x)
        reg = model_stats.sparsity_penalty(traces, s.lamb_l1, s.lamb_entropy)
    else:
        pred = model(x, first_order=True) if residual is None else None
        reg = x.new_zeros((), dtype=model.dtype)
    if s.lamb > 0 and (s.lamb_coef or s.lamb_coefdiff):
        reg = reg + model_stats.coefficient_penalty(model.layers, s.lamb_coef, s.lamb_coefdiff)
    mse = torch.mean((pred - y) ** 2) if residual is None else torch.mean(residual(model, x, y) ** 2)
    return mse + s.lamb * reg, mse, reg


def _direct(model: MultKAN, x: torch.Tensor, s: TrainSettings, residual: Residual | None) -> bool:
    """Whether :mod:`kandisc.model.direct` evaluates this objective and its gradient (without autograd)."""
    penalty = s.lamb > 0
    spread = penalty and (s.lamb_l1 > 0 or s.lamb_entropy > 0)
    coefficients = (s.lamb_coef, s.lamb_coefdiff) if penalty else (0.0, 0.0)
    return residual is None and direct.covers(model, x, spread, *coefficients)


def _direct_objective(model: MultKAN, x, y, s: TrainSettings, residual: Residual | None) -> direct.Objective | None:
    """The step's objective without autograd where :mod:`kandisc.model.direct` covers it, else None."""
    return direct.Objective(model, x, y, s.lamb, s.lamb_l1, s.lamb_entropy) if _direct(model, x, s, residual) else None


def _values(model: MultKAN, x, y, s: TrainSettings, residual, evaluate) -> tuple[float, float, float]:
    """(objective, mse, reg) as numbers, without a gradient (by ``evaluate``, the direct
    objective, where there is one)."""
    if evaluate is not None:
        return evaluate(gradient=False)
    with torch.no_grad():
        return tuple(float(v) for v in _objective(model, x, y, s, residual))


def _make_optimizer(model: MultKAN, params, s: TrainSettings) -> torch.optim.Optimizer | LevenbergMarquardt | FlatLBFGS:
    if s.opt == "lm":
        return LevenbergMarquardt(params, live=model.live_entries())
    if s.opt == "adam":
        return optimizer(torch.optim.Adam, params, lr=s.lr)
    lbfgs = dict(lr=s.lr, max_iter=s.lbfgs_iterations, history_size=10, tolerance_grad=1e-32, tolerance_change=1e-32)
    if all(p.device.type == "cpu" for p in params):  # the same method, its vectors in numpy
        return FlatLBFGS(params, **lbfgs)
    return optimizer(torch.optim.LBFGS, params, line_search_fn="strong_wolfe", **lbfgs)


def _make_closure(model, optimizer, params, xb, yb, s: TrainSettings, residual: Residual | None, evaluate):
    """The loss closure an optimiser step calls (possibly several times, for line searches);
    ``evaluate``: the direct objective, which sets the gradients itself (None: autograd's)."""

    def closure():
        optimizer.zero_grad()
        if evaluate is not None:
            objective = torch.tensor(evaluate()[0], dtype=model.dtype)
        else:
            objective = _objective(model, xb, yb, s, residual)[0]
        if not torch.isfinite(objective):
            # A huge finite value with zero gradient makes the line search back off; NaN would break it.
            for p in params:
                p.grad = torch.zeros_like(p)
            return objective.new_tensor(NONFINITE_LOSS)
        if evaluate is None:
            objective.backward()
            for p in params:  # LBFGS flattens gradients with .view(), which needs contiguity
                if p.grad is not None and not p.grad.is_contiguous():
                    p.grad = p.grad.contiguous()
        return objective

    return closure


def _all_finite(params) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


def rmse(model: MultKAN, x: torch.Tensor, y: torch.Tensor, residual: Residual | None = None) -> float:
    """Root mean squared residual; a task's residual needs autograd (derivatives of the model)."""
    if x.shape[0] == 0:
        return float("nan")
    if residual is not None:
        return float(torch.sqrt(torch.mean(residual(model, x, y).detach() ** 2)))
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


def train(
    model: MultKAN,
    data: Dataset,
    s: TrainSettings,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    residual: Residual | None = None,
) -> TrainResult:
    """Run ``s.steps`` optimiser steps on ``data``; the model is updated in place.

    ``residual(model, x, y)``: the per-row residuals whose mean square is the loss (None: model(x) - y).
    """
    generator = generator or torch.Generator().manual_seed(0)
    result = TrainResult()
    n_train = data.x_train.shape[0]
    use_batches = 0 < s.batch < n_train
    conflict = lm_conflict(s.opt, s.lamb, not use_batches, s.batch)
    if conflict:
        raise ValueError(conflict)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _make_optimizer(model, params, s)
    consecutive = 0
    since_update: list[float] = []
    for step in range(s.steps):
        if s.update_grid and step % s.grid_update_every == 0 and step < s.stop_grid_update_step:
            since_update = []
            model.update_grid(data.x_train)
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = _make_optimizer(model, params, s)
        if use_batches:
            idx = torch.randperm(n_train, generator=generator)[: s.batch].to(data.x_train.device)
            xb, yb = data.x_train[idx], data.y_train[idx]
        else:
            xb, yb = data.x_train, data.y_train
        snapshot = [p.detach().clone() for p in params]
        evaluate = _direct_objective(model, xb, yb, s, residual)
        if isinstance(optimizer, LevenbergMarquardt):
            optimizer.step(lambda xb=xb, yb=yb: (residual or regression_residual)(model, xb, yb).reshape(-1))
        else:
            optimizer.step(_make_closure(model, optimizer, params, xb, yb, s, residual, evaluate))
        # Judge the parameters the step ended at, not its last trial point.
        objective, mse, reg = _values(model, xb, yb, s, residual, evaluate)
        finite = _all_finite(params) and math.isfinite(objective)
        if not finite:
            with torch.no_grad():
                for p, saved in zip(params, snapshot, strict=True):
                    p.copy_(saved)
            optimizer = _make_optimizer(model, params, s)
            result.rollbacks += 1
            consecutive += 1
            if consecutive >= MAX_CONSECUTIVE_ROLLBACKS:
                result.status = "nonfinite"
                result.message = (
                    f"loss became non-finite {consecutive} steps in a row at step {step}; "
                    "kept the last finite parameters (check the data for NaN/inf or lower lr)"
                )
                break
            continue
        consecutive = 0
        # Full batch: the check above already evaluated the training loss at these parameters.
        train_loss = rmse(model, data.x_train, data.y_train, residual) if use_batches else math.sqrt(mse)
        record = StepRecord(step, train_loss, rmse(model, data.x_test, data.y_test, residual), reg)
        result.history.append(record)
        result.steps_done = step + 1
        if callback is not None:
            callback(record)
        since_update.append(objective)
        if plateaued(since_update, s.plateau_window, s.plateau_rtol):
            result.plateaued = True
            break
    return result
