"""B-spline bases on per-input knot vectors, and least-squares fits of spline coefficients.

A layer keeps, per input ``i``, an extended knot vector ``grid[i]`` of ``G + 2k + 1`` strictly
increasing knots (G intervals on the data range plus ``k`` on each side). Its ``G + k`` basis
functions of order ``k`` are evaluated *locally*: only ``k + 1`` are non-zero at any x, so we find
the knot interval and evaluate their polynomial pieces from a per-grid table (:func:`basis_table`)
instead of the dense ``(B, in, G + 2k)`` Cox-de Boor recursion. The result is written into a dense
feature tensor (column 0 the base function b(x)) ready for a single GEMM. On the CPU the compiled
kernel of :mod:`kandisc.model.native` does this in one pass; elsewhere the eager torch code below
(``searchsorted``, one table gather, Horner steps) gives the same numbers up to rounding.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from kandisc.model import native
from kandisc.model.spec import BASE_FUNCTIONS


def uniform_grid(low: torch.Tensor, high: torch.Tensor, n_intervals: int, k: int) -> torch.Tensor:
    """Extended uniform knots ``(in, G + 2k + 1)`` for per-input ranges ``low``/``high`` of shape (in,)."""
    steps = torch.arange(-k, n_intervals + k + 1, dtype=low.dtype, device=low.device)
    h = (high - low) / n_intervals
    return low[:, None] + steps[None, :] * h[:, None]


def extend_grid(inner: torch.Tensor, k: int) -> torch.Tensor:
    """Add ``k`` knots on each side of ``inner`` (in, G+1), spaced like the inner grid on average."""
    n_intervals = inner.shape[1] - 1
    h = (inner[:, -1:] - inner[:, :1]) / n_intervals
    steps = torch.arange(1, k + 1, dtype=inner.dtype, device=inner.device)
    left = inner[:, :1] - h * steps.flip(0)
    right = inner[:, -1:] + h * steps
    return torch.cat([left, inner, right], dim=1)


def _padded_knots(grid: torch.Tensor, k: int) -> torch.Tensor:
    """The grid with ``k`` extra phantom knots per side so every local window is defined."""
    h_left = grid[:, 1:2] - grid[:, :1]
    h_right = grid[:, -1:] - grid[:, -2:-1]
    steps = torch.arange(1, k + 1, dtype=grid.dtype, device=grid.device)
    return torch.cat([grid[:, :1] - h_left * steps.flip(0), grid, grid[:, -1:] + h_right * steps], dim=1)


def _cox_de_boor(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """All bases at points ``x`` (in, P) by the dense recursion: (in, P, n_knots-1-k). Build-time only."""
    t = grid.unsqueeze(1)  # (in, 1, n_knots)
    xe = x.unsqueeze(-1)
    b = ((xe >= t[..., :-1]) & (xe < t[..., 1:])).to(grid.dtype)
    for p in range(1, k + 1):
        left = (xe - t[..., : -(p + 1)]) / (t[..., p:-1] - t[..., : -(p + 1)])
        right = (t[..., p + 1 :] - xe) / (t[..., p + 1 :] - t[..., 1:-p])
        b = left * b[..., :-1] + right * b[..., 1:]
    return b


def basis_table(grid: torch.Tensor, k: int) -> torch.Tensor:
    """Per-interval polynomial form of the k+1 non-zero bases, computed once per grid.

    On knot interval ``idx`` = [t_idx, t_idx+1) each basis is a polynomial of degree k in the
    local coordinate s = (x - t_idx)/h. Column ``i·(n_knots+1) + r`` (input i, row r = idx + 1) of
    the (D, in·(n_knots+1)) table holds [t_idx, 1/h, a[p, m] for powers p = k..0 and bases
    m = 0..k (j = idx-k+m), then the x-derivative's coefficients (k-p)·a[p, m]/h for p < k].
    Rows 0 and ``n_knots`` (outside the extended grid) are all zero, as are phantom bases. The
    layout is coefficient-major so that one ``index_select`` yields a contiguous (B, in) plane
    per coefficient, which Horner's scheme then combines with fused multiply-adds.
    """
    n_in, n_knots = grid.shape
    work = grid.to(torch.float64)
    n_int, n_basis = n_knots - 1, n_knots - 1 - k
    lo, hi = work[:, :-1], work[:, 1:]  # (in, n_int)
    nodes = torch.linspace(0.05, 0.95, k + 1, dtype=torch.float64, device=grid.device)
    pts = lo.unsqueeze(-1) + (hi - lo).unsqueeze(-1) * nodes  # (in, n_int, k+1)
    dense = _cox_de_boor(pts.reshape(n_in, -1), work, k).reshape(n_in, n_int, k + 1, n_basis)
    idx = torch.arange(n_int, device=grid.device)
    j = idx[:, None] - k + torch.arange(k + 1, device=grid.device)  # (n_int, k+1) basis ids
    valid = (j >= 0) & (j < n_basis)
    local = torch.gather(
        dense, 3, j.clamp(0, n_basis - 1).expand(n_in, -1, -1).unsqueeze(2).expand(-1, -1, k + 1, -1)
    )  # (in, n_int, point, m)
    local = local * valid.to(local.dtype)[None, :, None, :]
    powers = nodes.unsqueeze(-1) ** torch.arange(k, -1, -1, dtype=torch.float64, device=grid.device)  # (point, p)
    coef = torch.linalg.solve(powers, local)  # (in, n_int, p, m): exact polynomial coefficients
    inv_h = (1.0 / (hi - lo)).unsqueeze(-1)
    factors = torch.arange(k, 0, -1, dtype=torch.float64, device=grid.device)[:, None]  # k - p for p < k
    deriv = coef[:, :, :k, :] * factors * inv_h.unsqueeze(-1)
    body = torch.cat([lo.unsqueeze(-1), inv_h, coef.flatten(2), deriv.flatten(2)], dim=-1)
    outside = torch.zeros(n_in, 1, body.shape[-1], dtype=torch.float64, device=grid.device)
    table = torch.cat([outside, body, outside], dim=1)  # (in, n_knots+1, D)
    return table.reshape(-1, table.shape[-1]).transpose(0, 1).to(grid.dtype).contiguous()


def _local_values(x: torch.Tensor, grid: torch.Tensor, table: torch.Tensor, k: int, with_deriv: bool = True):
    """Non-zero bases and their x-derivatives (or None), each a (B, in, k+1) view, and their columns."""
    n_batch, n_in = x.shape
    n_rows = grid.shape[1] + 1
    row = torch.searchsorted(grid, x.transpose(0, 1).contiguous(), right=True).transpose(0, 1)
    row = row.clamp_(max=grid.shape[1])  # x beyond the last knot -> the "outside" row
    flat = (row + torch.arange(n_in, device=x.device) * n_rows).reshape(-1)  # columns of the table
    consts = torch.index_select(table, 1, flat).view(-1, n_batch, n_in)  # (D, B, in)
    # Local basis m of interval idx is basis j = idx - k + m, feature column j + 1 = row - k + m;
    # outside rows carry zero values, so clamping their columns is harmless.
    n_basis = grid.shape[1] - 1 - k
    col = (row.unsqueeze(-1) + torch.arange(-k, 1, device=x.device)).clamp_(1, n_basis)
    s = (x - consts[0]) * consts[1]
    coefs = consts[2:].view(2 * k + 1, k + 1, n_batch, n_in)  # a[p] then (k-p)·a[p]/h, p highest first
    values = coefs[0]
    for p in range(1, k + 1):  # Horner's scheme, one fused multiply-add per power
        values = torch.addcmul(coefs[p], values, s)
    deriv = None
    if with_deriv:
        deriv = coefs[k + 1]
        for p in range(1, k):
            deriv = torch.addcmul(coefs[k + 1 + p], deriv, s)
        deriv = deriv.permute(1, 2, 0)
    return values.permute(1, 2, 0), deriv, col


def _base_and_slope(x: torch.Tensor, base_fun: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The base function b(x) and its derivative, for the eager path."""
    if base_fun == "silu":
        sig = torch.sigmoid(x)
        return x * sig, sig * (1 + x * (1 - sig))
    if base_fun == "identity":
        return x, torch.ones_like(x)
    return torch.zeros_like(x), torch.zeros_like(x)  # "zero"; basis_features checked the name


class _BasisFeatures(torch.autograd.Function):
    """Dense features with an analytic backward: no autograd graph through de Boor's triangle.

    CPU float32/float64 inputs go through the fused compiled kernel when it was built
    (:mod:`kandisc.model.native`); everything else through the eager torch path below. A
    non-finite x gets NaN spline features on both. First derivatives only (no ``create_graph``).
    """

    @staticmethod
    def forward(ctx, x, grid, table, k, base_fun):
        ctx.k, ctx.base_fun = k, base_fun
        if native.usable(x, grid, table, k):
            ctx.native = True
            sigma = torch.sigmoid(x.detach()) if base_fun == "silu" else None
            table_rows = native.row_table(table)
            out, rows = native.features(x, sigma, grid, table_rows, k, base_fun, keep_rows=ctx.needs_input_grad[0])
            ctx.n_knots = grid.shape[1]
            ctx.save_for_backward(x, sigma, rows, table_rows)
            return out
        ctx.native = False
        with torch.no_grad():
            base, slope = _base_and_slope(x, base_fun)
            values, deriv, col = _local_values(x, grid, table, k, with_deriv=ctx.needs_input_grad[0])
            out = torch.zeros(x.shape[0], x.shape[1], grid.shape[1] - k, dtype=x.dtype, device=x.device)
            out[..., 0] = base
            out.scatter_add_(2, col, values)  # phantom entries are 0 and may share a column
            poison = x * 0  # NaN where x is NaN/±inf: NaN spline features and gradient, as the kernel
            out[..., 1:] += poison.unsqueeze(-1)
            slope = slope + poison
        ctx.save_for_backward(slope, deriv, col)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        if ctx.native:
            x, sigma, rows, table_rows = ctx.saved_tensors
            grad_x = native.grad_input(x, sigma, rows, table_rows, ctx.n_knots, ctx.k, ctx.base_fun, grad_out)
        else:
            slope, deriv, col = ctx.saved_tensors
            grad_x = (torch.gather(grad_out, 2, col) * deriv).sum(-1) + grad_out[..., 0] * slope
        return grad_x, None, None, None, None


def basis_features(
    x: torch.Tensor, grid: torch.Tensor, k: int, base_fun: str = "zero", table: torch.Tensor | None = None
) -> torch.Tensor:
    """Dense features ``(B, in, G + k + 1)``: column 0 the base function b(x), columns 1.. the bases.

    ``base_fun`` is one of :data:`BASE_FUNCTIONS`. Pass ``table`` (from :func:`basis_table`) to
    skip rebuilding it on every call.
    """
    if base_fun not in BASE_FUNCTIONS:
        raise ValueError(f"unknown base function {base_fun!r}; expected one of {BASE_FUNCTIONS}")
    table = table if table is not None else basis_table(grid, k)
    return _BasisFeatures.apply(x, grid, table, k, base_fun)


def local_basis(x: torch.Tensor, grid: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-zero bases (B, in, k+1) and their derivatives at ``x``; zero outside the extended grid."""
    values, deriv, _ = _local_values(x, grid, basis_table(grid, k), k)
    return values, deriv


def dense_basis(x: torch.Tensor, grid: torch.Tensor, k: int) -> torch.Tensor:
    """All ``G + k`` bases at ``x`` (B, in) as (B, in, G + k); used for fits, not the hot path."""
    return basis_features(x, grid, k)[..., 1:]


def fit_coefficients(basis: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-10) -> torch.Tensor:
    """Least squares per input: ``basis`` (in, M, K), ``targets`` (in, M, out) -> coef (in, K, out).

    Solved through ridge-stabilised normal equations in float64 (B-spline Gram matrices are
    well conditioned; the tiny ridge only handles bases no sample touches).
    """
    A = basis.to(torch.float64)
    Y = targets.to(torch.float64)
    gram = A.transpose(1, 2) @ A
    scale = gram.diagonal(dim1=1, dim2=2).mean(-1).clamp(min=1e-30)
    eye = torch.eye(A.shape[2], dtype=A.dtype, device=A.device)
    gram = gram + (ridge * scale)[:, None, None] * eye
    rhs = A.transpose(1, 2) @ Y
    chol = torch.linalg.cholesky(gram)
    # cholesky_solve answers in column-major layout; parameters (and LBFGS's flat views) want rows.
    return torch.cholesky_solve(rhs, chol).to(basis.dtype).contiguous()
