"""What every physics task shares: the scalar the network learns and a loss on its derivatives.

A physics task trains a MultKAN with one output (the Lagrangian L, the conserved quantity H) whose
*derivatives* meet the data, not its values. A task owns the columns it reads (model inputs, then
the derivative columns that play the targets' part), turns the network into the scalar function
of the rows (plus a known term such as a kinetic energy), gives per-row residuals for the trainer
(``train(..., residual=task.residual)``) and the metrics of a finished fit. It never does I/O.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from kandisc.errors import KandiscError

if TYPE_CHECKING:
    import sympy as sp

Scalar = Callable[[torch.Tensor], torch.Tensor]  # rows (B, n) -> values (B,), differentiable in the rows


class TaskError(KandiscError):
    """A physics task that cannot train: a singular Hessian of L, a constant H."""


def gradient(total: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """d total/dx with the graph kept (losses differentiate it again); zero where total ignores x."""
    if not total.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(total, x, create_graph=True, allow_unused=True, materialize_grads=True)
    return g


def formula_scalar(expr: sp.Expr, names: list[str]) -> Scalar:
    """A sympy formula of the input columns as a differentiable (B, n) -> (B,) function."""
    from kandisc.knowledge.formula import to_torch_function

    if not expr.free_symbols:  # a constant: zero derivatives everywhere
        value = float(expr)
        return lambda x: x[:, 0] * 0 + value
    evaluate = to_torch_function(expr, names)
    return lambda x: evaluate(x) + x[:, 0] * 0  # broadcast formulas that ignore some columns


class PhysicsTask(ABC):
    """Base of the tasks; subclasses set ``kind``, ``output``, ``inputs``, ``targets``, ``known``."""

    kind = ""
    output = ""  # the name of the network's single output
    inputs: list[str]
    targets: list[str]  # the data columns the residuals compare with
    known: str | None = None  # a formula added to the network's output (the kinetic energy)

    def known_expr(self) -> sp.Expr:
        if not self.known:
            import sympy as sp  # here, not at import: a regression fit must not wait for sympy

            return sp.Integer(0)
        from kandisc.knowledge.formula import parse_formula

        return parse_formula(self.known, self.inputs)

    def scalar(self, model) -> Scalar:
        """The learnt scalar: the network's output plus the known term (compiled once per task)."""
        if not hasattr(self, "_known_fn"):
            known = self.known_expr()
            self._known_fn = formula_scalar(known, self.inputs) if known != 0 else None
        extra = self._known_fn
        if extra is None:
            return lambda x: model(x)[:, 0]
        return lambda x: model(x)[:, 0] + extra(x)

    def total_expr(self, network_expr: sp.Expr) -> sp.Expr:
        """The formula of the scalar from the formula of the network's output, in its plain form.

        The data fix the scalar only up to a constant (L, H) and a factor (H, and L without a known
        term): the constant is dropped, and without a known term to set the scale the largest
        coefficient becomes 1, so the formula reads -vx*y + vy*x rather than 0.42*vx*y - 0.42*vy*x.
        """
        import sympy as sp

        known = self.known_expr()
        terms = [t for t in sp.Add.make_args(sp.expand(network_expr + known, deep=False)) if t.free_symbols]
        if not terms:
            return network_expr + known
        lead = max((t.as_coeff_Mul()[0] for t in terms), key=lambda c: abs(float(c)))
        scale = lead if known == 0 and lead != 0 else 1
        return sp.Add(*(t / scale for t in terms))

    @abstractmethod
    def residuals(self, fn: Scalar, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, k) residuals of the scalar ``fn`` on rows ``x`` against the derivative columns ``y``."""

    def residual(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, k) residuals of the model on rows ``x`` with derivative columns ``y``: the trainer's loss."""
        return self.residuals(self.scalar(model), x, y)

    @abstractmethod
    def check(self, model, x: torch.Tensor) -> None:
        """Raise :class:`TaskError` when the model cannot train on these rows."""

    @abstractmethod
    def metrics(self, fn: Scalar, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """(rmse, r2) of the task's prediction on raw rows; see the subclasses for their meaning."""

    @abstractmethod
    def formula_record(self, expr: sp.Expr, x: np.ndarray, y: np.ndarray) -> dict:
        """What the run reports about a formula of the scalar on raw rows (x, y): JSON-able."""

    @abstractmethod
    def to_dict(self) -> dict:
        """The task as JSON-able data (the config's form), stored in model files."""
