"""Rating formulas of a physics task's scalar for the symbolic stage's Pareto front.

A formula of L or H is not compared with data values: :class:`TaskScorer` scores it, as the
trainer scores the network, by the task's residuals (the q̈ its Euler–Lagrange equations predict,
the cosine between ∇H and ẋ) on the same rows, and refits its constants on that loss. It is a
:class:`kandisc.symbolic.scorer.Scorer`, so snapping and term dropping work unchanged.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from kandisc.symbolic.scorer import Candidate, Scorer, complexity
from kandisc.tasks.base import PhysicsTask, formula_scalar


class TaskScorer(Scorer):
    """Test RMSE / R² of a task's residuals for formulas of its scalar (see :meth:`PhysicsTask.metrics`)."""

    def __init__(self, task: PhysicsTask, symbols, x_train, y_train, x_test, y_test):
        super().__init__(symbols, x_train, y_train, x_test, y_test)
        self.task = task
        self.y_scale = (float(np.std(y_train)) or 1.0) if task.kind == "lagrangian" else 1.0

    def _metrics(self, expr: sp.Expr, test: bool) -> tuple[float, float]:
        x, y = (self.x_test, self.y_test) if test else (self.x_train, self.y_train)
        rmse, r2 = self.task.metrics(formula_scalar(expr, self.names), x, y)
        return (rmse, r2) if np.isfinite(rmse) else (float("inf"), float("-inf"))

    def rmse(self, expr: sp.Expr, test: bool = True) -> float:
        return self._metrics(expr, test)[0]

    def candidate(self, expr: sp.Expr, origin: str) -> Candidate:
        rmse, r2 = self._metrics(expr, True)
        return Candidate(expr, complexity(expr), rmse, r2, origin)

    def refit_residuals(self, evaluate, columns: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        def fn(rows: torch.Tensor) -> torch.Tensor:
            return evaluate({name: rows[:, k] for k, name in enumerate(self.names)}) + rows[:, 0] * 0

        return self.task.residuals(fn, x, y)
