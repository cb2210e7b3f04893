"""How a candidate formula is scored: its complexity, its RMSE and R² on held-out rows, and its
constants refitted on the training rows (with their standard errors, for snapping).

Complexity is the number of nodes of the sympy tree, a fitted decimal constant counting as two
(so 5/12 is simpler than 0.416667), an exact constant however written as one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from kandisc import metrics
from kandisc.knowledge.formula import evaluate_rows
from kandisc.lbfgs import FlatLBFGS
from kandisc.lm import LevenbergMarquardt

POLISH_ITERATIONS = 8  # Levenberg–Marquardt iterations after a refit's LBFGS (see Scorer._polish)
POLISH_MAX_CONSTANTS = 40  # each iteration differentiates by 2 evaluations per constant


@dataclass
class Candidate:
    expr: sp.Expr
    complexity: int
    test_rmse: float
    test_r2: float
    origin: str
    is_best: bool = False

    def to_row(self, target: str) -> dict:
        return {
            "target": target,
            "complexity": self.complexity,
            "test_rmse": self.test_rmse,
            "test_r2": self.test_r2,
            "sympy": str(self.expr),
            "latex": sp.latex(self.expr),
            "origin": self.origin,
            "is_best": self.is_best,
        }


def complexity(expr: sp.Expr) -> int:
    """Nodes of the sympy tree, a fitted (Float) constant counting twice and an exact constant
    (3/(20π), π²/2) once however it is written: exact constants are simpler than fitted ones."""
    if isinstance(expr, sp.Float):
        return 2
    if expr.is_number:
        return 2 if expr.has(sp.Float) else 1
    if isinstance(expr, sp.Mul):  # the numeric factors (1/2, π**-1) are one coefficient
        numbers = [a for a in expr.args if a.is_number]
        rest = [a for a in expr.args if not a.is_number]
        coefficient = (2 if any(a.has(sp.Float) for a in numbers) else 1) if numbers else 0
        return 1 + coefficient + sum(complexity(arg) for arg in rest)
    return 1 + sum(complexity(arg) for arg in expr.args)


@dataclass
class _ConstantsProblem:
    """What refitting the Float constants of a formula on the training rows needs."""

    floats: list[sp.Float]  # the constants, in a fixed order
    template: sp.Expr  # the formula with a symbol in each constant's place
    params: list[sp.Symbol]  # those symbols, in the order of ``floats``
    evaluate: object  # (columns, values) -> the formula with the constants set to ``values``
    columns: dict
    x: torch.Tensor
    y: torch.Tensor


class Scorer:
    """Test RMSE / R² of expressions on fixed rows; refits constants on training rows."""

    def __init__(self, symbols, x_train, y_train, x_test, y_test):
        self.symbols = symbols
        self.names = [str(s) for s in symbols]
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.y_scale = float(np.std(y_train)) or 1.0

    def rmse(self, expr: sp.Expr, test: bool = True) -> float:
        x, y = (self.x_test, self.y_test) if test else (self.x_train, self.y_train)
        return metrics.rmse(y, evaluate_rows(expr, self.names, x))

    def candidate(self, expr: sp.Expr, origin: str) -> Candidate:
        pred = evaluate_rows(expr, self.names, self.x_test)
        r2 = metrics.r2_score(self.y_test, pred)
        return Candidate(expr, complexity(expr), metrics.rmse(self.y_test, pred), r2, origin)

    def refit_residuals(self, evaluate, columns: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The residuals whose mean square ``refit`` minimises: ``evaluate(columns) - y`` (scorers of
        other tasks override it; ``x`` holds the same rows as ``columns``, as one tensor)."""
        return evaluate(columns) - y

    def refit_loss(self, evaluate, columns: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.mean(self.refit_residuals(evaluate, columns, x, y) ** 2)

    def _constants_problem(self, expr: sp.Expr) -> _ConstantsProblem | None:
        """The refit problem of ``expr``'s Float constants; None without constants, with more than
        80 (no symbolic formula of a pruned network has them) or when ``expr`` divides by zero
        (sympy's zoo: nothing to refit, and it scores NaN)."""
        from kandisc.knowledge.formula import to_torch_function

        floats = sorted(expr.atoms(sp.Float), key=str)
        if not floats or len(floats) > 80 or expr.has(sp.zoo):
            return None
        params = [sp.Symbol(f"_refit_c{k}") for k in range(len(floats))]
        template = expr.xreplace(dict(zip(floats, params, strict=True)))
        fn = to_torch_function(template, self.names + [str(p) for p in params])
        x, y = torch.as_tensor(np.asarray(self.x_train)), torch.as_tensor(np.asarray(self.y_train))
        columns = {name: x[:, k] for k, name in enumerate(self.names)}

        def evaluate(cols: dict, values: torch.Tensor) -> torch.Tensor:
            return fn({**cols, **{str(p): values[k] for k, p in enumerate(params)}})

        return _ConstantsProblem(floats, template, params, evaluate, columns, x, y)

    def constant_errors(self, expr: sp.Expr) -> dict[sp.Float, float]:
        """The standard error of each Float constant of ``expr`` refitted to the training rows: the
        noise of the data (and what the formula misses) seen through the loss's curvature,
        σ² = loss, cov = 2σ²/n · H⁻¹ (a pseudo-inverse: a constant the others can stand in for
        is known to no precision at all). Empty when the loss or its curvature is not finite."""
        problem = self._constants_problem(expr)
        if problem is None:
            return {}
        floats, x, y = problem.floats, problem.x, problem.y

        def loss(values: torch.Tensor) -> torch.Tensor:
            return self.refit_loss(lambda cols: problem.evaluate(cols, values), problem.columns, x, y)

        start = torch.tensor([float(f) for f in floats], dtype=torch.float64)
        try:
            hessian = torch.autograd.functional.hessian(loss, start)
            value = float(loss(start).detach())  # a task's residuals carry a graph
        except RuntimeError:  # a task's loss solves a linear system, which may be singular here
            return {}
        if not (math.isfinite(value) and bool(torch.isfinite(hessian).all())):
            return {}
        variance = torch.linalg.pinv(hessian, hermitian=True).diagonal().clamp(min=0.0) * 2 * value / len(y)
        return {f: math.sqrt(float(v)) for f, v in zip(floats, variance, strict=True)}

    def refit(self, expr: sp.Expr, steps: int = 30) -> sp.Expr:
        """Jointly refit every Float constant of ``expr`` on the training rows (LBFGS, autograd)."""
        problem = self._constants_problem(expr)
        if problem is None:
            return expr
        columns, x, y = problem.columns, problem.x, problem.y
        values = torch.tensor([float(f) for f in problem.floats], dtype=torch.float64, requires_grad=True)

        def evaluate(cols: dict) -> torch.Tensor:
            return problem.evaluate(cols, values)

        def loss() -> torch.Tensor:
            return self.refit_loss(evaluate, columns, x, y)

        with torch.no_grad():
            start_loss = float(loss())
        opt = FlatLBFGS([values], lr=1.0, max_iter=steps, tolerance_grad=1e-20, tolerance_change=1e-24)

        def closure():
            opt.zero_grad()
            value = loss()
            if not torch.isfinite(value):  # e.g. log of a negative argument: make the line search back off
                values.grad = torch.zeros_like(values)
                return torch.tensor(1e300, dtype=torch.float64)
            value.backward()
            return value

        opt.step(closure)
        with torch.no_grad():
            end_loss = float(loss())
        if math.isfinite(end_loss):
            end_loss = self._polish(values, lambda: self.refit_residuals(evaluate, columns, x, y), end_loss)
        if not (math.isfinite(end_loss) and end_loss <= start_loss):
            return expr
        fitted = values.detach().tolist()
        return problem.template.xreplace({p: sp.Float(v, 15) for p, v in zip(problem.params, fitted, strict=True)})

    @staticmethod
    def _polish(values: torch.Tensor, residuals, loss: float) -> float:
        """Levenberg–Marquardt iterations on ``values`` after the LBFGS refit; returns the mean
        squared residual it ends at (never above ``loss``).

        LBFGS stops near 1e-11·var(y) on a formula whose constants trade against each other
        (c·exp(a·x + b) + d), where Gauss–Newton converges quadratically to rounding: without this an
        exact formula looks 1e-11 off and the in-context check spends seconds on runners-up that
        cannot beat it. Stops when an iteration gains under 1 %.
        """
        if values.numel() > POLISH_MAX_CONSTANTS:
            return loss

        n_rows = 1

        def rows() -> torch.Tensor:
            nonlocal n_rows
            with torch.enable_grad():  # a task's residuals differentiate the formula
                r = residuals().detach().reshape(-1)
            n_rows = r.numel()
            return r

        solver = LevenbergMarquardt([values])
        for _ in range(POLISH_ITERATIONS):
            if loss <= 0.0:
                break
            try:
                cost = solver.step(rows)
            except RuntimeError:  # a task's linear solve may be singular at a trial point
                break
            new_loss = cost / n_rows
            gained = new_loss < loss * 0.99
            loss = min(loss, new_loss)
            if not gained:
                break
        return loss
