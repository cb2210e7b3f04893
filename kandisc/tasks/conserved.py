"""Conserved-quantity task: learn H(x) that stays constant along the measured flow ẋ.

H is conserved when ∇H·ẋ = 0. The residual of a row is the cosine of the angle between ∇H and ẋ,
(∇H·ẋ)/(|∇H||ẋ|): it does not change when H is scaled, so the optimiser cannot approach the
trivial constant H by shrinking it. The guard term in the denominator (a millionth of the mean of
|∇H|²|ẋ|² over the rows, scale-free too) keeps rows where ∇H happens to vanish from dividing by
zero; an H whose gradient vanishes on every row is a :class:`TaskError`.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from kandisc.tasks.base import PhysicsTask, Scalar, TaskError, gradient

GUARD = 0.1  # share of the mean |∇H|²|ẋ|² added to every row's denominator


def grad_h(fn: Scalar, x: torch.Tensor) -> torch.Tensor:
    """∇H (B, n) at rows x, the graph kept."""
    with torch.enable_grad():
        rows = x.detach().requires_grad_()
        return gradient(fn(rows).sum(), rows)


def cosines(g: torch.Tensor, xdot: torch.Tensor) -> torch.Tensor:
    """(B,) cosine of the angle between ∇H and ẋ at every row (the guard keeps it finite)."""
    xdot = xdot.to(g.dtype)
    norms = (g * g).sum(1) * (xdot * xdot).sum(1)
    return (g * xdot).sum(1) / torch.sqrt(norms + GUARD * norms.mean())


def pooled(g: torch.Tensor, xdot: torch.Tensor) -> torch.Tensor:
    """(B,) residuals (∇H·ẋ)_b / sqrt(mean |∇H|²|ẋ|²): their mean square is the ratio of the means
    of the issue's numerator and denominator. Scale-free like the cosine, but rows where ∇H is
    small (near the minimum of an energy) weigh by their share of |∇H|, not as a full cosine."""
    xdot = xdot.to(g.dtype)
    norms = (g * g).sum(1) * (xdot * xdot).sum(1)
    return (g * xdot).sum(1) / torch.sqrt(norms.mean())


class ConservedTask(PhysicsTask):
    kind = "conserved"
    output = "H"

    def __init__(self, x: list[str], xdot: list[str]):
        self.x, self.xdot = list(x), list(xdot)
        self.inputs, self.targets = list(x), list(xdot)

    def residuals(self, fn: Scalar, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return cosines(grad_h(fn, x), y).unsqueeze(1)

    def check(self, model, x: torch.Tensor) -> None:
        if not bool((grad_h(self.scalar(model), x).detach() != 0).any()):
            raise TaskError(
                "task.conserved: H has zero gradient on every training row (a constant), so it conserves "
                "nothing; train from a fresh model (another seed) or drop the stage that removed its edges"
            )

    def metrics(self, fn: Scalar, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """RMS cosine between ∇H and ẋ, and 1 − n·mean(cos²): 0 for a random H (E cos² = 1/n), 1 if conserved."""
        if x.shape[0] == 0:
            return float("nan"), float("nan")
        rows = torch.as_tensor(x, dtype=torch.float64)
        cos = cosines(grad_h(fn, rows), torch.as_tensor(y, dtype=torch.float64)).detach().numpy()
        mean_sq = float(np.mean(cos**2))
        return float(np.sqrt(mean_sq)), 1.0 - len(self.x) * mean_sq

    def formula_record(self, expr, x: np.ndarray, y: np.ndarray) -> dict:
        """How well the formula H itself is conserved on rows (x, y): max |cos(∇H, ẋ)|, and whether H is constant."""
        from kandisc.tasks.base import formula_scalar

        constant = not (expr.free_symbols & {sp.Symbol(n) for n in self.x})
        if constant or not len(x):
            return {"constant": constant, "max_abs_cosine": None}
        rows = torch.as_tensor(x, dtype=torch.float64)
        g = grad_h(formula_scalar(expr, self.x), rows).detach()
        cos = (g * torch.as_tensor(y)).sum(1).abs() / (g.norm(dim=1) * torch.as_tensor(y).norm(dim=1)).clamp(min=1e-300)
        return {"constant": False, "max_abs_cosine": float(cos.max())}

    def to_dict(self) -> dict:
        return {"conserved": {"x": self.x, "xdot": self.xdot}}
