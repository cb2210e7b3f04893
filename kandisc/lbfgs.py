"""L-BFGS with a strong-Wolfe line search, on every parameter as one float64 numpy vector.

The same method as ``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` (the two-loop recursion,
the bracketing and zoom phases with cubic interpolation, the same stopping rules and state kept
from one ``step`` to the next), so a fit takes the same path up to rounding; only where torch's
interpolation overflows to a NaN step this one bisects instead. What differs is
where the arithmetic happens: torch's version keeps the search direction and its history as
tensors and runs a few dozen tensor operations per iteration, plus a copy into and out of every
parameter tensor per trial point. On the small networks of a typical fit (a few hundred
parameters) each of those costs several microseconds of dispatch: about a third of a
regularised evaluation once the model itself runs in a compiled kernel. Here the vector
arithmetic is numpy on one array, the loss and slopes are Python floats, and the parameters are
written once per trial point.

CPU parameters only (the vector lives in host memory); :func:`kandisc.train` keeps torch's
optimiser for parameters on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

C1, C2 = 1e-4, 0.9  # sufficient decrease and curvature constants of the strong Wolfe conditions
CURVATURE_FLOOR = 1e-10  # a pair (s, y) with yᵀs below this does not enter the history
BRACKET_TOLERANCE = 1e-9  # the line search stops when its bracket is this narrow (times max |d|)


class FlatLBFGS:
    """``step(closure)`` as ``torch.optim.LBFGS`` with ``line_search_fn="strong_wolfe"``.

    ``closure()`` clears the gradients (:meth:`zero_grad`), evaluates the objective, calls
    ``backward()`` on it and returns it; it runs with gradients enabled.
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
    ):
        self.params = [p for p in params]
        if any(p.device.type != "cpu" for p in self.params):
            raise ValueError("FlatLBFGS keeps its vectors in host memory: every parameter must be on the CPU")
        self.lr, self.max_iter = float(lr), int(max_iter)
        self.max_eval = int(max_eval) if max_eval is not None else self.max_iter * 5 // 4
        self.tolerance_grad, self.tolerance_change = float(tolerance_grad), float(tolerance_change)
        self.history_size = int(history_size)
        self._sizes = [p.numel() for p in self.params]
        self.state: dict = {"func_evals": 0, "n_iter": 0}
        # A trial point is written into one float64 buffer, then copied into each parameter
        # from a view of it made here once (not a new view per parameter and trial point).
        self._trial = np.empty(sum(self._sizes))
        bounds = np.cumsum([0, *self._sizes])
        spans = zip(self.params, bounds[:-1], bounds[1:], strict=True)
        self._views = [torch.from_numpy(self._trial[a:b]).view(p.shape) for p, a, b in spans]

    # ----- the parameters as one vector ------------------------------------------------------
    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _vector(self) -> np.ndarray:
        return np.concatenate([p.detach().reshape(-1).numpy().astype(np.float64) for p in self.params])

    def _gradient(self) -> np.ndarray:
        parts = [
            np.zeros(n) if p.grad is None else p.grad.detach().reshape(-1).numpy()
            for p, n in zip(self.params, self._sizes, strict=True)
        ]
        return np.concatenate(parts, dtype=np.float64)

    @torch.no_grad()
    def _write(self, vector: np.ndarray) -> None:
        if vector is not self._trial:
            np.copyto(self._trial, vector)
        for p, view in zip(self.params, self._views, strict=True):
            p.copy_(view)

    def _evaluate(self, closure: Callable, x: np.ndarray, t: float, d: np.ndarray) -> tuple[float, np.ndarray]:
        """(loss, gradient) at x + t·d."""
        self._write(np.add(x, t * d, out=self._trial))
        with torch.enable_grad():
            loss = float(closure().detach())
        return loss, self._gradient()

    # ----- one step ----------------------------------------------------------------------------
    def step(self, closure: Callable):
        """Up to ``max_iter`` iterations (``max_eval`` evaluations); returns the first loss."""
        state = self.state
        with torch.enable_grad():
            first = closure()
        loss = float(first.detach())
        evals = 1
        state["func_evals"] += 1
        grad = self._gradient()
        if np.abs(grad).max(initial=0.0) <= self.tolerance_grad:
            return first
        d, t = state.get("d"), state.get("t")
        dirs, steps, rho = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        h_diag, prev_grad, prev_loss = state.get("H_diag"), state.get("prev_flat_grad"), state.get("prev_loss")
        x = self._vector()
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d, dirs, steps, rho, h_diag = -grad, [], [], [], 1.0
            else:
                y, s = grad - prev_grad, d * t
                ys = float(y @ s)
                if ys > CURVATURE_FLOOR:
                    if len(dirs) == self.history_size:
                        dirs.pop(0), steps.pop(0), rho.pop(0)
                    dirs.append(y), steps.append(s), rho.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                d = _two_loop(grad, dirs, steps, rho, h_diag)
            prev_grad, prev_loss = grad.copy(), loss
            t = min(1.0, 1.0 / float(np.abs(grad).sum())) * self.lr if state["n_iter"] == 1 else self.lr
            slope = float(grad @ d)
            if slope > -self.tolerance_change:
                break
            loss, grad, t, ls_evals = _strong_wolfe(
                lambda step, x=x, d=d: self._evaluate(closure, x, step, d), t, d, loss, grad, slope,
                max_evals=self.max_eval - evals,
            )  # fmt: skip
            x = x + t * d
            self._write(x)
            evals += ls_evals
            state["func_evals"] += ls_evals
            if n_iter == self.max_iter or evals >= self.max_eval:
                break
            if np.abs(grad).max(initial=0.0) <= self.tolerance_grad:
                break
            if np.abs(d * t).max(initial=0.0) <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change:
                break
        state.update(d=d, t=t, old_dirs=dirs, old_stps=steps, ro=rho, H_diag=h_diag)
        state.update(prev_flat_grad=prev_grad, prev_loss=prev_loss)
        return first


def _two_loop(grad: np.ndarray, dirs: list, steps: list, rho: list, h_diag: float) -> np.ndarray:
    """The L-BFGS direction -H·grad from the (s, y) history (newest last)."""
    q = -grad
    alphas = [0.0] * len(dirs)
    for i in range(len(dirs) - 1, -1, -1):
        alphas[i] = float(steps[i] @ q) * rho[i]
        q = q - alphas[i] * dirs[i]
    r = q * h_diag
    for i in range(len(dirs)):
        beta = float(dirs[i] @ r) * rho[i]
        r = r + (alphas[i] - beta) * steps[i]
    return r


def _cubic_minimum(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """Minimiser of the cubic through (x1, f1, slope g1) and (x2, f2, g2), kept within ``bounds``
    (default: between the two points); their midpoint where the cubic has no minimum, or where
    it overflows (the 1e300 a closure returns for a non-finite objective: torch's version then
    gives a NaN step, and NaN parameters)."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    square = d1 * d1 - g1 * g2
    if not square >= 0 or not math.isfinite(square):
        return (low + high) / 2.0
    d2 = math.sqrt(square)
    if x1 <= x2:
        point = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        point = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(point, low), high) if math.isfinite(point) else (low + high) / 2.0


def _strong_wolfe(evaluate, t, d, f, g, slope, max_evals=25):
    """A step t along d satisfying the strong Wolfe conditions: (loss, gradient, t, evaluations).

    ``evaluate(t)`` gives (loss, gradient) at x + t·d; f, g and slope are the loss, gradient and
    directional derivative at t = 0. Bracketing, then zoom by safeguarded cubic interpolation."""
    d_norm = float(np.abs(d).max(initial=0.0))
    f_new, g_new = evaluate(t)
    evals = 1
    slope_new = float(g_new @ d)
    t_prev, f_prev, g_prev, slope_prev = 0.0, f, g, slope
    done, bracket = False, None
    iteration = 0
    while iteration < max_evals:
        if f_new > f + C1 * t * slope or (iteration > 1 and f_new >= f_prev):
            bracket = [[t_prev, f_prev, g_prev, slope_prev], [t, f_new, g_new, slope_new]]
            break
        if abs(slope_new) <= -C2 * slope:
            bracket, done = [[t, f_new, g_new, slope_new]], True
            break
        if slope_new >= 0:
            bracket = [[t_prev, f_prev, g_prev, slope_prev], [t, f_new, g_new, slope_new]]
            break
        previous = t
        t = _cubic_minimum(t_prev, f_prev, slope_prev, t, f_new, slope_new, bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, slope_prev = previous, f_new, g_new, slope_new
        f_new, g_new = evaluate(t)
        evals += 1
        slope_new = float(g_new @ d)
        iteration += 1
    if iteration == max_evals:
        bracket = [[0.0, f, g, None], [t, f_new, g_new, None]]
    # zoom: shrink the bracket [low, high] around a point that satisfies the conditions
    low, high = (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)
    stuck = False
    while not done and iteration < max_evals:
        (t0, f0, _, s0), (t1, f1, _, s1) = bracket
        if abs(t1 - t0) * d_norm < BRACKET_TOLERANCE:
            break
        t = _cubic_minimum(t0, f0, s0, t1, f1, s1)
        top, bottom = max(t0, t1), min(t0, t1)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:  # too close to an end of the bracket
            if stuck or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                stuck = False
            else:
                stuck = True
        else:
            stuck = False
        f_new, g_new = evaluate(t)
        evals += 1
        slope_new = float(g_new @ d)
        iteration += 1
        if f_new > f + C1 * t * slope or f_new >= bracket[low][1]:
            bracket[high] = [t, f_new, g_new, slope_new]
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if abs(slope_new) <= -C2 * slope:
                done = True
            elif slope_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = list(bracket[low])
            bracket[low] = [t, f_new, g_new, slope_new]
    t, f_best, g_best, _ = bracket[low]
    return f_best, g_best, t, evals
