"""Per-row derivatives of a torch callable f: (B, n) -> (B,), as the hypothesis tests use them.

Owns the :class:`Jet` (value, gradient, Hessian and on request third derivatives of f at every
row), the input scales σ that make them dimensionless, and the derived jets of log|f| and of
log|∂f/∂x_b| - log|∂f/∂x_a|. ``f`` must treat rows independently (a MultKAN does; so does any
elementwise formula), since the batch is replicated: the Hessian costs one forward and one double
backward over n copies of the rows, copy i seeding the i-th gradient component, rather than n
separate backward passes, so its Python overhead does not grow with n. Third derivatives reuse
that graph: each slice ∂(H_ik)/∂x, or the gradients of the whole diagonal, is one more backward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

Fn = Callable[[torch.Tensor], torch.Tensor]


def _grad(total: torch.Tensor, x: torch.Tensor, create_graph: bool, retain_graph: bool | None = None) -> torch.Tensor:
    """d total/dx; a total that does not depend on x has a true zero gradient."""
    if not total.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(
        total, x, create_graph=create_graph, retain_graph=retain_graph, allow_unused=True, materialize_grads=True
    )
    return g


def _second_order(fn: Fn, x: torch.Tensor, create_graph: bool):
    """(copies, f, g, rows) over n copies of the rows x (B, n): copy i (rows i·B .. (i+1)·B) holds
    in ``rows`` the derivative of the i-th gradient component, i.e. row i of the Hessian."""
    n_rows, n = x.shape
    copies = x.detach().repeat(n, 1).requires_grad_()
    f = fn(copies)
    if f.shape != (n * n_rows,):
        raise ValueError(f"the callable must map (B, n) rows to (B,) values, got shape {tuple(f.shape)}")
    g = _grad(f.sum(), copies, create_graph=True)
    seed = torch.eye(n, dtype=x.dtype, device=x.device).repeat_interleave(n_rows, dim=0)
    rows = _grad((g * seed).sum(), copies, create_graph=create_graph)
    return copies, f, g, rows


def _per_copy(stacked: torch.Tensor, n_rows: int, n: int) -> torch.Tensor:
    """(n·B, n) with copy i's rows -> (B, n, n) with entry [b, i, :] from copy i."""
    return stacked.view(n, n_rows, n).transpose(0, 1)


def value_gradient_hessian(fn: Fn, x: torch.Tensor):
    """f (B,), its gradient (B, n) and Hessian (B, n, n) at the rows x (B, n)."""
    n_rows, n = x.shape
    with torch.enable_grad():
        _, f, g, rows = _second_order(fn, x, create_graph=False)
    return f[:n_rows].detach(), g[:n_rows].detach(), _per_copy(rows, n_rows, n).detach()


class ThirdOrder:
    """Third derivatives of f at some rows, from one retained second-order graph: every request
    is one more backward pass over it (instead of a Hessian of each gradient component)."""

    def __init__(self, fn: Fn, x: torch.Tensor):
        self.n_rows, self.n = x.shape
        with torch.enable_grad():
            self.copies, _, _, self.rows = _second_order(fn, x, create_graph=True)
        self._cache: dict = {}

    def _pull(self, picked: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            stacked = _grad(picked.sum(), self.copies, create_graph=False, retain_graph=True)
        return _per_copy(stacked, self.n_rows, self.n).detach()

    def diagonal(self) -> torch.Tensor:
        """D (B, n, n) with D[b, i, j] = ∂³f/∂x_i²∂x_j: the gradient of each H_ii."""
        if "diag" not in self._cache:
            seed = torch.eye(self.n, dtype=self.rows.dtype).repeat_interleave(self.n_rows, dim=0)
            self._cache["diag"] = self._pull((self.rows * seed).sum(1))
        return self._cache["diag"]

    def slice(self, k: int) -> torch.Tensor:
        """T_k (B, n, n) with T_k[b, i, j] = ∂³f/∂x_k∂x_i∂x_j: the Hessian of ∂f/∂x_k."""
        if k not in self._cache:
            self._cache[k] = self._pull(self.rows[:, k])
        return self._cache[k]


def third_derivatives(fn: Fn, x: torch.Tensor) -> torch.Tensor:
    """T[b, k, i, j] = ∂³f/∂x_k∂x_i∂x_j (B, n, n, n)."""
    third = ThirdOrder(fn, x.detach())
    return torch.stack([third.slice(k) for k in range(x.shape[1])], dim=1)


def input_scales(x: torch.Tensor) -> torch.Tensor:
    """σ_i: each input's standard deviation over the rows (1 for a constant column)."""
    sigma = x.std(dim=0) if x.shape[0] > 1 else torch.ones(x.shape[1], dtype=x.dtype, device=x.device)
    return torch.where(sigma > 0, sigma, torch.ones_like(sigma))


@dataclass
class Jet:
    """f, its gradient g (B, n) and Hessian H (B, n, n) at rows x; σ (n,) the input scales.

    ``fn`` is kept so that third derivatives (:meth:`third`) are computed only when a test needs
    them, once, on at most ``third_rows`` of the rows.
    """

    x: torch.Tensor
    f: torch.Tensor
    g: torch.Tensor
    H: torch.Tensor
    sigma: torch.Tensor
    fn: Fn | None = None
    third_rows: int = 256
    _third: ThirdOrder | None = field(default=None, repr=False)
    cache: dict = field(default_factory=dict, repr=False)  # scores computed from this jet, by name

    @property
    def n(self) -> int:
        return self.g.shape[1]

    def scaled(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Dimensionless-input derivatives g_i·σ_i and H_ij·σ_i·σ_j (still in f's units)."""
        s = self.sigma
        return self.g * s, self.H * s[:, None] * s[None, :]

    def log(self) -> Jet:
        """The jet of log|f|: g/f and H/f - g gᵀ/f² (NaN where f = 0; the scores skip NaN rows)."""
        f = _nan_at_zero(self.f)
        g = self.g / f[:, None]
        H = self.H / f[:, None, None] - g[:, :, None] * g[:, None, :]
        return Jet(self.x, f.abs().log(), g, H, self.sigma)

    def third(self) -> tuple[ThirdOrder, slice]:
        """Third derivatives on the first ``third_rows`` rows, and the slice of rows they cover."""
        rows = slice(0, min(self.third_rows, self.x.shape[0]))
        if self._third is None:
            if self.fn is None:
                raise ValueError("this jet was built without its function; third derivatives need it")
            self._third = ThirdOrder(self.fn, self.x[rows])
        return self._third, rows

    def log_ratio(self, a: int, b: int) -> Jet:
        """The jet of log|∂f/∂x_b| - log|∂f/∂x_a| (on the rows of :meth:`third`).

        If f = h(p(A) + q(B)) with a in A and b in B, this is log|q_b(B)| - log|p_a(A)|: additively
        separable between A and B whatever h is, which is what general separability tests.
        """
        third, rows = self.third()
        g, H = self.g[rows], self.H[rows]

        def log_partial(k: int) -> tuple[torch.Tensor, torch.Tensor]:
            gk = _nan_at_zero(g[:, k])[:, None]
            grad = H[:, k, :] / gk
            return grad, third.slice(k) / gk[:, :, None] - grad[:, :, None] * grad[:, None, :]

        (grad_b, hess_b), (grad_a, hess_a) = log_partial(b), log_partial(a)
        values = torch.zeros(g.shape[0], dtype=g.dtype, device=g.device)  # not needed by the scores
        return Jet(self.x[rows], values, grad_b - grad_a, hess_b - hess_a, self.sigma)

    def log_partials(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For every pair, the pieces of log|f_k|'s jet the pairwise general scores need (rows of
        :meth:`third`): R[b, k, c] = ∂_c log|f_k|, L[b, k, c] = ∂_c² log|f_k| and
        X[b, i, j] = ∂_i∂_j log|f_i|, all from the Hessian and one backward pass (∂³f/∂x_i²∂x_j)."""
        third, rows = self.third()
        g, H, D = _nan_at_zero(self.g[rows]), self.H[rows], third.diagonal()
        R = H / g[:, :, None]
        diagonal = R.diagonal(dim1=1, dim2=2)  # ∂_k log|f_k|
        L = D.transpose(1, 2) / g[:, :, None] - R * R  # ∂³f/∂x_k∂x_c² is D[b, c, k]
        X = D / g[:, :, None] - diagonal[:, :, None] * R
        return R, L, X


def _nan_at_zero(values: torch.Tensor) -> torch.Tensor:
    """NaN where ``values`` is exactly 0, so that a logarithmic derivative there is skipped."""
    return torch.where(values == 0, torch.full_like(values, float("nan")), values)


def jet(fn: Fn, x: torch.Tensor, third_rows: int = 256) -> Jet:
    """The :class:`Jet` of ``fn`` at the rows ``x`` (B, n); σ from the same rows."""
    x = x.detach()
    f, g, H = value_gradient_hessian(fn, x)
    return Jet(x, f, g, H, input_scales(x), fn, third_rows)
