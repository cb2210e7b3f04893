"""Levenberg–Marquardt for unregularised least-squares fits of small models (``opt: lm``).

Gradient methods crawl on the flat valleys of a KAN's parametrisation: the base function and the
spline both represent a linear edge, and a multiplication node trades scale between its factors.
LBFGS stalls there around 1e-4 RMSE on x·y, where an exact fit exists. Levenberg–Marquardt uses the
Jacobian of the residuals, solves the damped Gauss–Newton system (JᵀJ + μ·diag(JᵀJ)) δ = −Jᵀr, and
converges quadratically on such zero-residual problems.

The Jacobian is taken by central finite differences, one parameter entry at a time (2·P forward
passes of the whole batch), with steps of ε^(1/3)·max(1, |θ|): relative error about 1e-11 in
float64. That keeps it model-agnostic (spline, symbolic and mult-node parameters alike) and exact
enough that the damped steps still converge to machine precision, because the residual itself is
exact. Cost per iteration is O(P·forward + P³), hence :data:`MAX_PARAMETERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from kandisc.errors import ConfigError

MAX_PARAMETERS = 3000
MAX_DAMPING_TRIES = 12
MIN_DAMPING, MAX_DAMPING = 1e-12, 1e12
SHRINK, GROW = 3.0, 4.0  # damping after a successful / failed trial step


class LevenbergMarquardt:
    """One damped Gauss–Newton iteration per :meth:`step`; ``damping`` carries over between steps."""

    def __init__(self, params: list[torch.Tensor], damping: float = 1e-3, live: dict | None = None):
        """``live``: parameter -> boolean mask of the entries the residuals depend on (the model
        knows: :meth:`kandisc.model.network.MultKAN.live_entries`); the Jacobian's other columns
        are exactly zero, so they are not differenced (two residual evaluations each saved)."""
        self.params = [p for p in params if p.requires_grad]
        for p in self.params:  # entries are perturbed in place through a flat view
            if not p.is_contiguous():
                p.data = p.data.contiguous()
        self.n_parameters = sum(p.numel() for p in self.params)
        if self.n_parameters > MAX_PARAMETERS:
            raise ConfigError(
                f"opt: lm solves a dense {self.n_parameters}×{self.n_parameters} system per step; it is meant "
                f"for models with at most {MAX_PARAMETERS} trainable parameters (use opt: lbfgs, or a smaller "
                "width or grid)"
            )
        self.damping = damping
        live = live or {}
        self._live = [live[p].reshape(-1).nonzero()[:, 0].tolist() if p in live else None for p in self.params]

    @torch.no_grad()
    def step(self, residuals: Callable[[], torch.Tensor]) -> float:
        """Take one iteration; ``residuals()`` evaluates the model at the current parameters.

        Returns the sum of squared residuals at the parameters it ends on (unchanged if no damped
        step reduced it).
        """
        r = residuals().reshape(-1)
        cost = float(r @ r)
        jac = self._jacobian(residuals, r.numel())
        grad = jac.T @ r
        gram = jac.T @ jac
        scale = gram.diagonal().clone()
        scale = torch.where(scale > 0, scale, scale.max().clamp(min=1.0) * 1e-12)  # inert entries
        start = [p.detach().clone() for p in self.params]
        for _ in range(MAX_DAMPING_TRIES):
            try:
                delta = torch.linalg.solve(gram + torch.diag(self.damping * scale), -grad)
            except torch.linalg.LinAlgError:  # numerically singular: more damping makes it definite
                self.damping = min(self.damping * GROW, MAX_DAMPING)
                continue
            self._add(start, delta)
            trial = residuals().reshape(-1)
            trial_cost = float(trial @ trial)
            if trial_cost < cost:  # NaN compares False: a failed trial
                self.damping = max(self.damping / SHRINK, MIN_DAMPING)
                return trial_cost
            self.damping = min(self.damping * GROW, MAX_DAMPING)
        self._add(start, None)
        return cost

    def _add(self, start: list[torch.Tensor], delta: torch.Tensor | None) -> None:
        """Set the parameters to ``start + delta`` (``delta`` None: back to ``start``)."""
        offset = 0
        for p, p0 in zip(self.params, start, strict=True):
            n = p.numel()
            p.copy_(p0 if delta is None else p0 + delta[offset : offset + n].view_as(p0))
            offset += n

    def _jacobian(self, residuals: Callable[[], torch.Tensor], n_rows: int) -> torch.Tensor:
        """d residuals / d parameters, (n_rows, P), by central differences."""
        first = self.params[0]
        jac = torch.zeros(n_rows, self.n_parameters, dtype=first.dtype, device=first.device)
        cube_root_eps = torch.finfo(first.dtype).eps ** (1.0 / 3.0)
        offset = 0
        for p, live in zip(self.params, self._live, strict=True):
            flat = p.view(-1)
            for i in range(flat.numel()) if live is None else live:
                column = offset + i
                original = float(flat[i])
                h = cube_root_eps * max(1.0, abs(original))
                flat[i] = original + h
                up = float(flat[i])  # the step actually taken, after rounding to the dtype
                plus = residuals().reshape(-1)
                flat[i] = original - h
                down = float(flat[i])
                minus = residuals().reshape(-1)
                flat[i] = original
                jac[:, column] = (plus - minus) / (up - down)
            offset += flat.numel()
        # A parameter whose nudge leaves a function's domain (log of a negative, ...) is held
        # still this iteration rather than poisoning the whole system with NaN.
        jac[:, ~torch.isfinite(jac).all(0)] = 0.0
        return jac
