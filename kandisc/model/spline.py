"""B-spline bases on per-input knot vectors, and least-squares fits of spline coefficients.

A layer keeps, per input ``i``, an extended knot vector ``grid[i]`` of ``G + 2k + 1`` strictly
increasing knots (G intervals on the data range plus ``k`` on each side). Its ``G + k`` basis
functions of order ``k`` are evaluated *locally*: only ``k + 1`` are non-zero at any x, so we find
the knot interval and evaluate their polynomial pieces from a per-grid table (:func:`basis_table`)
instead of the dense ``(B, in, G + 2k)`` Cox-de Boor recursion. The result is written into a dense
feature tensor (column 0 the base function b(x)) ready for a single GEMM. On the CPU the compiled
kernel of :mod:`kandisc.model.native` does this in one pass; elsewhere the eager torch code below
(``searchsorted``, one table gather, Horner steps) gives the same numbers up to rounding. Both
give x-derivatives of the features in closed form, so gradients, Hessians and third derivatives
of a model are exact (up to rounding) on either path.
"""

from __future__ import annotations

import torch

from kandisc.model import basis_layout, native
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
    local coordinate s = (x - t_idx)/h. The table is (``basis_layout.width(k)``, in·(n_knots+1)):
    column ``i·(n_knots+1) + r`` (input i, row r = idx + 1) is the record that
    :mod:`kandisc.model.basis_layout` describes. Rows 0 and ``n_knots`` (outside the extended grid)
    are all zero, as are phantom bases. Coefficient-major, so that one ``index_select`` yields a
    contiguous (B, in) plane per coefficient, which Horner's scheme combines with fused multiply-adds.
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
    body = torch.cat([lo.unsqueeze(-1), inv_h, coef.flatten(2)], dim=-1)
    outside = torch.zeros(n_in, 1, body.shape[-1], dtype=torch.float64, device=grid.device)
    table = torch.cat([outside, body, outside], dim=1)  # (in, n_knots+1, width)
    return table.reshape(-1, table.shape[-1]).transpose(0, 1).to(grid.dtype).contiguous()


def _locate(x: torch.Tensor, grid: torch.Tensor, table: torch.Tensor, k: int):
    """Each x's table record as planes (width, B, in) and the feature columns (B, in, k+1) of its
    k+1 local bases."""
    n_batch, n_in = x.shape
    n_rows = grid.shape[1] + 1
    row = torch.searchsorted(grid, x.transpose(0, 1).contiguous(), right=True).transpose(0, 1)
    row = row.clamp_(max=grid.shape[1])  # x beyond the last knot -> the "outside" row
    flat = (row + torch.arange(n_in, device=x.device) * n_rows).reshape(-1)  # columns of the table
    consts = torch.index_select(table, 1, flat).view(-1, n_batch, n_in)
    # Local basis m of interval idx is basis j = idx - k + m, feature column j + 1 = row - k + m;
    # outside rows carry zero values, so clamping their columns is harmless.
    n_basis = grid.shape[1] - 1 - k
    col = (row.unsqueeze(-1) + torch.arange(-k, 1, device=x.device)).clamp_(1, n_basis)
    return consts, col


def _local_derivative(x: torch.Tensor, consts: torch.Tensor, k: int, order: int) -> torch.Tensor:
    """The x-derivative of ``order`` of the k+1 local bases, (B, in, k+1), from :func:`_locate`'s records."""
    factors = basis_layout.derivative_factors(k, order)
    if not factors:  # beyond the spline's degree: exactly zero between knots
        return torch.zeros(*x.shape, k + 1, dtype=x.dtype, device=x.device)
    s = (x - consts[0]) * consts[1]
    coefs = consts[basis_layout.HEADER :].view(k + 1, k + 1, *x.shape)  # a[p], highest power first
    values = coefs[0] * factors[0] if order else coefs[0]
    for p in range(1, len(factors)):  # Horner's scheme, one fused multiply-add per power
        values = torch.addcmul(coefs[p], values, s) if not order else torch.add(values * s, coefs[p], alpha=factors[p])
    if order:
        values = values * consts[1] ** order
    return values.permute(1, 2, 0)


def _base_derivative(x: torch.Tensor, base_fun: str, order: int) -> torch.Tensor:
    """The base function b(x) or its derivative of ``order`` (<= MAX_DERIVATIVE), for the eager path.

    SiLU = x·σ(x) has silu^(n) = x·σ^(n) + n·σ^(n-1), with σ' = σ(1-σ), σ'' = σ'(1-2σ) and
    σ''' = σ''(1-2σ) - 2σ'^2 (the C kernel uses the same formulas).
    """
    if base_fun == "identity":
        return x if order == 0 else torch.full_like(x, 1.0 if order == 1 else 0.0)
    if base_fun != "silu":
        return torch.zeros_like(x)  # "zero"; basis_features checked the name
    sig = torch.sigmoid(x)
    d1 = sig * (1 - sig)
    d2 = d1 * (1 - 2 * sig)
    sigmoid_derivatives = [sig, d1, d2, d2 * (1 - 2 * sig) - 2 * d1 * d1]
    if order == 0:
        return x * sig
    return x * sigmoid_derivatives[order] + order * sigmoid_derivatives[order - 1]


def _eager_features(x, grid, table, k, base_fun, order):
    """Dense features of ``order`` (B, in, G+k+1) on the eager path, and the records and columns."""
    consts, col = _locate(x, grid, table, k)
    out = torch.zeros(x.shape[0], x.shape[1], grid.shape[1] - k, dtype=x.dtype, device=x.device)
    out[..., 0] = _base_derivative(x, base_fun, order)
    out.scatter_add_(2, col, _local_derivative(x, consts, k, order))  # phantom entries are 0 and may share a column
    out[..., 1:] += (x * 0).unsqueeze(-1)  # NaN where x is NaN/±inf: NaN spline features, as the kernel
    return out, consts, col


def _too_deep(requested: int) -> RuntimeError:
    return RuntimeError(
        f"kandisc's spline features are differentiable {basis_layout.MAX_DERIVATIVE} times in x; "
        f"a derivative of order {requested} was requested"
    )


class _BasisFeatures(torch.autograd.Function):
    """Dense features (or their x-derivative of ``order``) with an analytic backward.

    CPU float32/float64 inputs go through the fused compiled kernel when it was built
    (:mod:`kandisc.model.native`); everything else through the eager torch path above. A
    non-finite x gets NaN spline features on both. The backward is d(features of order d)/dx =
    features of order d + 1: a fused pass when no graph is wanted, and, under ``create_graph``
    (grad mode on inside backward), the same product written with this Function at order d + 1,
    so that it differentiates again, up to :data:`basis_layout.MAX_DERIVATIVE`; deeper raises.
    """

    @staticmethod
    def forward(ctx, x, grid, table, k, base_fun, order):
        ctx.k, ctx.base_fun, ctx.order = k, base_fun, order
        wants_grad = ctx.needs_input_grad[0] and order < basis_layout.MAX_DERIVATIVE
        ctx.native = native.usable(x, grid, table, k)
        if ctx.native:
            sigma = torch.sigmoid(x.detach()) if base_fun == "silu" else None
            table_rows = native.row_table(table)
            out, rows = native.features(x, sigma, grid, table_rows, k, base_fun, order, keep_rows=wants_grad)
            ctx.save_for_backward(x, grid, table, sigma, rows, table_rows)
            return out
        with torch.no_grad():
            out, consts, col = _eager_features(x, grid, table, k, base_fun, order)
            slope = deriv = None
            if wants_grad:
                slope = _base_derivative(x, base_fun, order + 1) + x * 0  # NaN x -> NaN gradient, as the kernel
                deriv = _local_derivative(x, consts, k, order + 1)
        ctx.save_for_backward(x, grid, table, slope, deriv, col)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        if ctx.order >= basis_layout.MAX_DERIVATIVE:
            raise _too_deep(ctx.order + 1)
        x, grid, table, *saved = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: keep the backward differentiable
            slopes = _BasisFeatures.apply(x, grid, table, ctx.k, ctx.base_fun, ctx.order + 1)
            return (grad_out * slopes).sum(-1), None, None, None, None, None
        if ctx.native:
            sigma, rows, table_rows = saved
            n_knots = grid.shape[1]
            grad_x = native.grad_input(
                x, sigma, rows, table_rows, n_knots, ctx.k, ctx.base_fun, grad_out, order=ctx.order
            )
        else:
            slope, deriv, col = saved
            grad_x = (torch.gather(grad_out, 2, col) * deriv).sum(-1) + grad_out[..., 0] * slope
        return grad_x, None, None, None, None, None


def basis_features(
    x: torch.Tensor,
    grid: torch.Tensor,
    k: int,
    base_fun: str = "zero",
    table: torch.Tensor | None = None,
    order: int = 0,
) -> torch.Tensor:
    """Dense features ``(B, in, G + k + 1)``: column 0 the base function b(x), columns 1.. the bases
    (with ``order`` > 0, their x-derivatives of that order).

    ``base_fun`` is one of :data:`BASE_FUNCTIONS`. Pass ``table`` (from :func:`basis_table`) to
    skip rebuilding it on every call. Differentiable in x up to
    :data:`basis_layout.MAX_DERIVATIVE` times in all (``create_graph`` included).
    """
    if base_fun not in BASE_FUNCTIONS:
        raise ValueError(f"unknown base function {base_fun!r}; expected one of {BASE_FUNCTIONS}")
    if not 0 <= order <= basis_layout.MAX_DERIVATIVE:
        raise _too_deep(order)
    table = table if table is not None else basis_table(grid, k)
    return _BasisFeatures.apply(x, grid, table, k, base_fun, order)


def local_basis(x: torch.Tensor, grid: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-zero bases (B, in, k+1) and their derivatives at ``x``; zero outside the extended grid."""
    consts, _ = _locate(x, grid, basis_table(grid, k), k)
    return _local_derivative(x, consts, k, 0), _local_derivative(x, consts, k, 1)


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
