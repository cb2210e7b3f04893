"""Lagrangian task: learn L(q, q̇) whose Euler–Lagrange equations reproduce the measured q̈.

From d/dt ∂L/∂q̇ = ∂L/∂q: A q̈ = ∇_q L − B q̇ with A = ∇_q̇∇_q̇ᵀ L and B_kj = ∂²L/∂q̇_k∂q_j.
Both blocks are the q̇-rows of the Hessian of L, taken for every row at once: the batch is
replicated n times and copy k seeds the k-th q̇ component of the gradient, so one double backward
gives them all (and the graph stays differentiable for the optimiser). The system is solved per
row with ``torch.linalg.solve_ex``; a row whose A is singular gets an infinite residual (the
trainer's NaN guard backs off), and a model singular on its training rows is a :class:`TaskError`.

``equations_of_motion`` does the same symbolically on a formula of L (sympy), for the report.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from kandisc import metrics
from kandisc.tasks.base import PhysicsTask, Scalar, TaskError, gradient

SINGULAR_RTOL = 1e-10  # |det A| below this times max|A|^n (over the rows) counts as singular


def q_hessian_rows(fn: Scalar, x: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(∇_q L (B, n), A (B, n, n), B (B, n, n)) at rows x = [q, q̇] (B, 2n), graphs kept."""
    rows = x.shape[0]
    with torch.enable_grad():
        copies = x.detach().repeat(n, 1).requires_grad_()
        g = gradient(fn(copies).sum(), copies)
        seed = torch.eye(n, dtype=x.dtype, device=x.device).repeat_interleave(rows, dim=0)
        second = gradient((g[:, n:] * seed).sum(), copies)  # copy k: ∇(∂L/∂q̇_k)
    per_row = second.view(n, rows, 2 * n).transpose(0, 1)  # [b, k, :] = ∇(∂L/∂q̇_k) at row b
    return g[:rows, :n], per_row[:, :, n:], per_row[:, :, :n]


def singular_rows(a: torch.Tensor) -> torch.Tensor:
    """(B,) bool: rows whose ∂²L/∂q̇² is singular relative to the largest entry over all rows."""
    scale = a.detach().abs().amax().clamp(min=1e-300) ** a.shape[-1]
    return ~(torch.linalg.det(a.detach()).abs() > SINGULAR_RTOL * scale)


def accelerations(fn: Scalar, x: torch.Tensor, n: int) -> torch.Tensor:
    """q̈ (B, n) from the Euler–Lagrange equations of L = fn at rows [q, q̇]; inf where A is singular."""
    grad_q, a, b = q_hessian_rows(fn, x, n)
    qdot = x[:, n:].to(a.dtype)
    rhs = grad_q - (b @ qdot.unsqueeze(-1)).squeeze(-1)
    solution, info = torch.linalg.solve_ex(a, rhs)
    bad = (info != 0) | singular_rows(a)
    return torch.where(bad.unsqueeze(-1), torch.full_like(solution, float("inf")), solution)


def _whole_numbers(expr: sp.Expr) -> sp.Expr:
    """Floats within rounding of a whole number (the ratio of two equal constants of L) as integers."""
    whole = {
        f: sp.Integer(round(float(f)))
        for f in expr.atoms(sp.Float)
        if abs(float(f)) < 1e12 and abs(float(f) - round(float(f))) <= 1e-12 * max(1.0, abs(float(f)))
    }
    return expr.xreplace(whole) if whole else expr


class LagrangianTask(PhysicsTask):
    kind = "lagrangian"
    output = "L"

    def __init__(self, q: list[str], qdot: list[str], qddot: list[str], kinetic: str | None = None):
        self.q, self.qdot, self.qddot, self.known = list(q), list(qdot), list(qddot), kinetic
        self.inputs, self.targets = self.q + self.qdot, list(qddot)

    @property
    def n(self) -> int:
        return len(self.q)

    def residuals(self, fn: Scalar, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return accelerations(fn, x, self.n) - y

    def check(self, model, x: torch.Tensor) -> None:
        _, a, _ = q_hessian_rows(self.scalar(model), x, self.n)
        bad = int(singular_rows(a).sum())
        if bad:
            raise TaskError(
                f"task.lagrangian: the Hessian of L in {', '.join(self.qdot)} is singular at {bad} of "
                f"{x.shape[0]} training rows, so q̈ is undefined there; give task.lagrangian.kinetic "
                "(e.g. qdot**2/2) so that L is quadratic in the velocities, or try another seed"
            )

    def predict(self, fn: Scalar, x: np.ndarray) -> np.ndarray:
        rows = torch.as_tensor(x, dtype=torch.float64)
        return accelerations(fn, rows, self.n).detach().cpu().numpy()

    def metrics(self, fn: Scalar, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """RMSE and R² (mean over the coordinates) of the predicted q̈."""
        if x.shape[0] == 0:
            return float("nan"), float("nan")
        pred = self.predict(fn, x)
        r2 = float(np.mean([metrics.r2_score(y[:, k], pred[:, k]) for k in range(self.n)]))
        return metrics.rmse(y.ravel(), pred.ravel()), r2

    def equations_of_motion(self, lagrangian: sp.Expr) -> dict[str, sp.Expr] | None:
        """q̈_k as formulas of q and q̇ from a formula of L; None when ∂²L/∂q̇² is singular."""
        q = [sp.Symbol(n) for n in self.q]
        v = [sp.Symbol(n) for n in self.qdot]
        a = sp.Matrix(self.n, self.n, lambda i, j: sp.diff(lagrangian, v[i], v[j]))
        b = sp.Matrix(self.n, self.n, lambda i, j: sp.diff(lagrangian, v[i], q[j]))
        rhs = sp.Matrix([sp.diff(lagrangian, qk) for qk in q]) - b * sp.Matrix(v)
        if sp.simplify(a.det()) == 0:
            return None
        solved = a.LUsolve(rhs)
        return {name: _whole_numbers(sp.simplify(solved[k])) for k, name in enumerate(self.qddot)}

    def formula_record(self, expr: sp.Expr, x: np.ndarray, y: np.ndarray) -> dict:
        """The equations of motion of the formula L and their error on the measured q̈ (rows x, y)."""
        from kandisc.knowledge.formula import evaluate_rows

        eom = self.equations_of_motion(expr)
        if eom is None:
            return {"equations_of_motion": None, "eom_test_rmse": None, "eom_max_relative_error": None}
        pred = np.column_stack([evaluate_rows(e, self.inputs, x) + 0 * x[:, 0] for e in eom.values()])
        err = np.abs(pred - y)
        scale = max(float(np.max(np.abs(y))), 1e-300) if len(y) else 1.0
        return {
            "equations_of_motion": {k: str(e) for k, e in eom.items()},
            "eom_test_rmse": float(np.sqrt(np.mean(err**2))) if len(y) else None,
            "eom_max_relative_error": float(np.max(err)) / scale if len(y) else None,
        }

    def to_dict(self) -> dict:
        return {"lagrangian": {"q": self.q, "qdot": self.qdot, "qddot": self.qddot, "kinetic": self.known}}
