"""Vectorised symbolic fitting of edge curves: y ≈ c·f(a·x+b)+d for all edges and functions at once.

Owns the numeric half of snapping an edge: from M samples (x, y) of each of E
edge curves, fit every library function to every edge and report (a, b, c, d), r² and RMSE. Which
function an edge gets is decided by :mod:`kandisc.symbolic.selection`.

Method. For fixed (a, b) the best (c, d) is a linear least-squares solve (variable projection), so
only (a, b) is searched, scored by r² = corr(f(a·x+b), y)², centred before squaring (the one-pass
form cancels catastrophically in float32). Per library function, batched over edges, mesh points
and samples:

1. a coarse mesh over ``a_range`` × ``b_range`` (``mesh`` values per axis, plus small |a| values
   spaced geometrically so gentle curves are not skipped), evaluated in chunks of 8 MB;
2. ``zooms`` finer 9×9 meshes around each of the 3 best local maxima of the coarse mesh (separate
   basins), each centred on that start's best point so far and reaching its old neighbours;
3. ``refine_steps`` Levenberg-Marquardt steps on (a, b) from each start, with (c, d) re-solved in
   closed form at every step (Kaufman's variable-projection Jacobian); the best start is kept.

The mesh stages only rank candidates, so they run in float32 (half the memory traffic); the
refinement and every reported number use the input's dtype. The mesh stages loop over library
functions (each has its own torch op); the refinement runs them as one family, a leading axis of
every tensor, with each function's op on its slice (the same numbers, far fewer operations on
the few edges of a typical fit). 'x' is solved directly (a=1, b=0) and '0' is the constant
zero (a=1, b=c=d=0, r² reported as 0); neither is searched. Mesh, zooms and refinement stay
inside the (a, b) box.

Validity. A candidate (a, b) is rejected (r² = -inf) when the argument a·x+b over the edge's
sample interval [min x, max x] (the whole interval, so a pole between two samples counts) leaves
the function's domain (``FUNCTIONS[name].domain``; open ends keep a margin), comes within the
function's pole margin of 0 (``zero_margin``) or reaches a region where the torch function
clamps (``clamp``: exp above 50; ``periodic_poles``: a tan pole), so that on the data the sympy
formula and the model's torch function agree. The search also skips fits that only use a low
Taylor polynomial of f, with huge cancelling c and d (sin near a crest posing as x², the flat
tail of tanh posing as exp): those with |a|·(max x − min x) < 0.01 or with f(a·x+b) flat on the
samples (std below 2% of rms).

Canonical parameters. Exact identities (each function's ``canonical`` and ``period``) move each
fit to a canonical (a, b) before (c, d) are solved again: powers, 1/x^n, abs and sgn get a = 1;
sqrt, x^1.5, 1/sqrt and log get a = ±1; exp gets b = 0; odd and even functions get a > 0; sin,
cos and tan get b in [-π/2, π/2]. So (x+1)² comes back as a=1, b=1, c=1, d=0, ready for
constant snapping, instead of the equal but unreadable 0.07·(3.7x+3.7)². A canonical (a, b) may
lie outside the search box (it computes the same function); where it would leave the domain the
fitted (a, b) is kept.

Equivalent functions (sin and cos, by a phase) get equal r²; the selection rule breaks such ties
by library order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from kandisc.model.functions import FUNCTIONS, get_function

Fn = Callable[[torch.Tensor], torch.Tensor]

# Memory bounds: a mesh chunk is (edge, mesh point, sample) elements in float32 (8 MB; few, large
# chunks also keep the number of multi-threaded ops small), a refinement block has that many
# (function, edge, start, trial, sample) elements in the input's dtype (8 MB in float64).
_CHUNK_ELEMENTS = 1 << 21
_BLOCK_ELEMENTS = 1 << 20
_ZOOM_POINTS = 9
# Levenberg-Marquardt trials per step: damping factors (times the current damping) and stretches.
_DAMPINGS = torch.tensor([1e-2, 1e-1, 1.0, 10.0, 1e-2], dtype=torch.float64)
_STRETCH = torch.tensor([1.0, 1.0, 1.0, 1.0, 2.0], dtype=torch.float64)
_STARTS = 3  # local maxima of the coarse mesh that are zoomed and refined (separate basins)
_MIN_ARG_SPAN = 1e-2  # |a|·(x range) below this: f(a·x+b) is a flat polynomial or a constant
# f(a·x+b) whose spread (std) is below this fraction of its size (rms) only mimics a polynomial
# with huge cancelling c and d (sin near a crest posing as x^2, the flat tail of tanh as exp).
_MIN_REL_SPREAD = 0.02
_OPEN_MARGIN = 2e-8  # open domain ends: the torch clamps of log, 1/sqrt, arctanh sit at ~1e-8
_TAN_POLE_MARGIN = 1e-6


@dataclass
class EdgeFits:
    """Fits of every library function to every edge; F = len(names).

    ``params[e, f]`` is (a, b, c, d) of y ≈ c·f(a·x+b)+d (NaN where no valid fit exists), ``r2``
    is 1 − SSE/SST of that fit (-inf where no valid fit; 0 for '0' and for a constant edge) and
    ``rmse`` its root mean squared error on the samples (inf where no valid fit).
    """

    names: list[str]
    params: torch.Tensor
    r2: torch.Tensor
    rmse: torch.Tensor


@dataclass(frozen=True)
class _Limits:
    """Closed interval the argument must stay in, pole margin around 0 (0: none) and whether tan's
    periodic poles apply: numbers for one function, (F, 1, 1) tensors for a :class:`_Family`."""

    lo: float | torch.Tensor
    hi: float | torch.Tensor
    zero_margin: float | torch.Tensor
    tan_poles: bool | torch.Tensor


class _Family:
    """Library functions refined together: every step of the refinement is one set of tensor
    operations on a leading axis of F functions (each function's own op runs on its slice), not
    F sets of them, which on a few edges cost more in dispatch than in arithmetic. Limits are
    (F, 1, 1) tensors in the edges' dtype, so they compare as each function's numbers do."""

    def __init__(self, names: Sequence[str], dtype: torch.dtype):
        self.fns = [FUNCTIONS[name].torch_fn for name in names]
        self.members = [(fn, _limits(name, dtype)) for fn, name in zip(self.fns, names, strict=True)]

        def column(field: str, kind: torch.dtype) -> torch.Tensor:
            return torch.tensor([getattr(lim, field) for _, lim in self.members], dtype=kind).view(-1, 1, 1)

        self.limits = _Limits(
            column("lo", dtype), column("hi", dtype), column("zero_margin", dtype), column("tan_poles", torch.bool)
        )

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """f(u) for arguments u of shape (F, ...), function f on slice f."""
        return torch.stack([fn(part) for fn, part in zip(self.fns, u, strict=True)])


def fit_edges(
    x: torch.Tensor,
    y: torch.Tensor,
    library: Sequence[str],
    a_range: tuple[float, float] = (-10.0, 10.0),
    b_range: tuple[float, float] = (-10.0, 10.0),
    mesh: int = 25,
    zooms: int = 3,
    refine_steps: int = 10,
) -> EdgeFits:
    """Fit y ≈ c·f(a·x+b)+d for every edge (rows of x, y: (E, M)) and every function in ``library``.

    Works in x's dtype (float32 or float64; others become float64) on the CPU and returns CPU
    tensors. Unknown function names raise ``ConfigError``; malformed x, y raise ``ValueError``.
    """
    x, y = _check_inputs(x, y, a_range, b_range, mesh, zooms, refine_steps)
    names = [get_function(name).name for name in library]
    axes = _coarse_axes(a_range, b_range, mesh, x.dtype)
    # Blocks of edges bound the memory of the refinement's (edge, start, trial, sample) tensors.
    block = max(1, _BLOCK_ELEMENTS // (_STARTS * len(_DAMPINGS) * x.shape[1]))
    parts = [
        _fit_block(_EdgeData.build(xb, yb), names, axes, (a_range, b_range), zooms, refine_steps)
        for xb, yb in zip(x.split(block), y.split(block), strict=True)
    ]
    params, r2, rmse = (torch.cat(t) for t in zip(*parts, strict=True))
    return EdgeFits(names=names, params=params, r2=r2, rmse=rmse)


def fit_edges_rescaled(x: torch.Tensor, y: torch.Tensor, library: Sequence[str], **search):
    """``fit_edges`` with each edge's input mapped to [-1, 1], so the (a, b) search range means
    the same for a hidden edge whose input spans 0.1 as for one spanning 100; the params are
    mapped back (f(a'·u + b') with u = (x - mid)/half is f(a·x + b), a = a'/half, b = b' - a'·mid/half).
    ``search``: fit_edges's a_range, b_range, mesh, zooms, refine_steps (on the mapped input)."""
    mid = (x.max(1).values + x.min(1).values) / 2
    half = ((x.max(1).values - x.min(1).values) / 2).clamp(min=1e-12)
    fits = fit_edges((x - mid[:, None]) / half[:, None], y, library, **search)
    a, b = fits.params[..., 0], fits.params[..., 1]
    mid, half = mid.to(a.dtype)[:, None], half.to(a.dtype)[:, None]
    fits.params = torch.stack([a / half, b - a * mid / half, fits.params[..., 2], fits.params[..., 3]], dim=-1)
    return fits


def _fit_block(edge: _EdgeData, names: list[str], axes, box, zooms: int, refine_steps: int):
    x, y = edge.x, edge.y
    n_edges, n_samples = x.shape
    params = torch.full((n_edges, len(names), 4), math.nan, dtype=x.dtype)
    r2 = torch.full((n_edges, len(names)), -math.inf, dtype=x.dtype)
    rmse = torch.full((n_edges, len(names)), math.inf, dtype=x.dtype)
    starts = _refined_starts(edge, names, axes, box, zooms, refine_steps)
    for k, name in enumerate(names):
        fn = FUNCTIONS[name].torch_fn
        if name == "0":
            params[:, k] = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=x.dtype)
            r2[:, k] = 0.0
            rmse[:, k] = y.square().mean(1).sqrt()
            continue
        if name == "x":
            a, b = torch.ones(n_edges, dtype=x.dtype), torch.zeros(n_edges, dtype=x.dtype)
        else:
            a, b = _canonical(name, _limits(name, x.dtype), edge, *starts[k])
        c, d, residual, _ = _solve_cd(fn(_arg(a[:, None], b[:, None], x)), y)
        sse = residual.square().sum(-1)
        found = torch.isfinite(sse)
        params[:, k] = torch.stack([a, b, c, d], 1)
        fit_r2 = torch.where(edge.sst > 0, 1.0 - sse / edge.sst, torch.zeros_like(sse))
        r2[:, k] = torch.where(found, fit_r2, -math.inf)
        rmse[:, k] = torch.where(found, (sse / n_samples).sqrt(), math.inf)
    return params, r2, rmse


def _refined_starts(edge: _EdgeData, names: list[str], axes, box, zooms: int, refine_steps: int) -> dict:
    """Library position -> (a, b) (E,) of the best refined start, for every searched function
    ('x' and '0' are not). Functions are refined in families as large as the memory bound allows."""
    n_edges, n_samples = edge.x.shape
    searched = [k for k, name in enumerate(names) if name not in ("0", "x")]
    size = max(1, _BLOCK_ELEMENTS // (n_edges * _STARTS * len(_DAMPINGS) * n_samples))
    starts = {}
    for first in range(0, len(searched), size):
        slots = searched[first : first + size]
        family = _Family([names[k] for k in slots], edge.x.dtype)
        searches = [_search(fn, lim, edge, axes, zooms, box) for fn, lim in family.members]
        a, b = (torch.stack(part) for part in zip(*searches, strict=True))  # (F, E, K)
        a, b = _best_start(*_refine(family, edge, a, b, refine_steps, box))
        starts.update({k: (a[f], b[f]) for f, k in enumerate(slots)})
    return starts


def _check_inputs(x, y, a_range, b_range, mesh, zooms, refine_steps):
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError("fit_edges expects torch tensors x and y of shape (edges, samples)")
    if x.ndim != 2 or x.shape != y.shape or x.shape[1] < 3:
        raise ValueError(
            f"x and y must both be (edges, samples) with >= 3 samples; got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    if not (a_range[0] < a_range[1] and b_range[0] < b_range[1]):
        raise ValueError(f"a_range and b_range must be (low, high) with low < high; got {a_range}, {b_range}")
    if mesh < 2 or zooms < 0 or refine_steps < 0:
        raise ValueError(f"need mesh >= 2, zooms >= 0, refine_steps >= 0; got {mesh}, {zooms}, {refine_steps}")
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float64
    x = x.detach().to(device="cpu", dtype=dtype)
    y = y.detach().to(device="cpu", dtype=dtype)
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("x and y must be finite (an edge curve sampled with NaN or inf)")
    return x, y


@dataclass
class _EdgeData:
    """What every fit needs of the edges, computed once."""

    x: torch.Tensor  # (E, M)
    y: torch.Tensor  # (E, M)
    y_unit: torch.Tensor  # centred y scaled to unit norm (0 for a constant edge), float32
    x32: torch.Tensor  # x in float32 for the mesh stages
    sst: torch.Tensor  # (E,) sum of squares of centred y
    xlo: torch.Tensor  # (E, 1)
    xhi: torch.Tensor  # (E, 1)
    min_abs_a: torch.Tensor  # (E, 1) smallest non-degenerate |a|

    @classmethod
    def build(cls, x: torch.Tensor, y: torch.Tensor) -> _EdgeData:
        yc = y - y.mean(1, keepdim=True)
        sst = yc.square().sum(1)
        norm = sst.sqrt()[:, None]
        y_unit = torch.where(norm > 0, yc / norm.clamp(min=torch.finfo(y.dtype).tiny), 0.0)
        xlo, xhi = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
        x32, y_unit = x.float(), y_unit.float()
        return cls(x, y, y_unit, x32, sst, xlo, xhi, _MIN_ARG_SPAN / (xhi - xlo))


def _limits(name: str, dtype: torch.dtype) -> _Limits:
    fn = FUNCTIONS[name]
    low, high, low_open, high_open = fn.domain
    margin = max(_OPEN_MARGIN, 8 * torch.finfo(dtype).eps)
    if low_open and math.isfinite(low):
        low += margin * max(1.0, abs(low))
    if high_open and math.isfinite(high):
        high -= margin * max(1.0, abs(high))
    cap_lo, cap_hi = fn.clamp
    zero = max(fn.zero_margin, margin) if fn.excludes_zero else 0.0
    return _Limits(max(low, cap_lo), min(high, cap_hi), zero, fn.periodic_poles)


def _valid(lim: _Limits, a: torch.Tensor, b: torch.Tensor, edge: _EdgeData) -> torch.Tensor:
    """Whether a·x+b stays valid over each edge's whole sample interval; a, b: (E or 1, P), or
    (F, E, P) with a family's limits."""
    u1, u2 = a * edge.xlo + b, a * edge.xhi + b
    lo, hi = torch.minimum(u1, u2), torch.maximum(u1, u2)
    ok = (a.abs() >= edge.min_abs_a) & (lo >= lim.lo) & (hi <= lim.hi)
    if bool((torch.as_tensor(lim.zero_margin) > 0).any()):
        ok &= (lim.zero_margin <= 0) | (lo >= lim.zero_margin) | (hi <= -lim.zero_margin)
    poles = torch.as_tensor(lim.tan_poles)
    if bool(poles.any()):
        branch_lo = torch.floor((lo - _TAN_POLE_MARGIN - math.pi / 2) / math.pi)
        branch_hi = torch.floor((hi + _TAN_POLE_MARGIN - math.pi / 2) / math.pi)
        ok &= ~poles | (branch_lo == branch_hi)
    return ok


def _coarse_axes(a_range, b_range, mesh: int, dtype: torch.dtype):
    """Mesh values of a (with geometric small |a|) and b, and each a value's zoom half-width."""
    a_lo, a_hi = a_range
    step = (a_hi - a_lo) / (mesh - 1)
    small = step * torch.tensor([1 / 3, 1 / 9, 1 / 27], dtype=torch.float64)
    a = torch.cat([torch.linspace(a_lo, a_hi, mesh, dtype=torch.float64), small, -small])
    a = torch.unique(a[(a >= a_lo) & (a <= a_hi)])
    gaps = a.diff()
    a_half = torch.maximum(torch.cat([gaps[:1], gaps]), torch.cat([gaps, gaps[-1:]]))
    b = torch.linspace(b_range[0], b_range[1], mesh, dtype=torch.float64)
    b_half = (b_range[1] - b_range[0]) / (mesh - 1)
    return a.to(dtype), a_half.to(dtype), b.to(dtype), b_half


def _mesh_r2(fn: Fn, edge: _EdgeData, a: torch.Tensor, b: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """r² of f(a·x+b) against y for mesh points a, b: (E or 1, P); -inf where not ``ok``."""
    n_edges, n_samples = edge.x.shape
    n_points = a.shape[1]
    out = torch.empty(n_edges, n_points, dtype=edge.x.dtype)
    step = max(1, _CHUNK_ELEMENTS // (n_edges * n_samples))
    x, a, b = edge.x32[:, None, :], a.float(), b.float()
    for s in range(0, n_points, step):
        sl = slice(s, s + step)
        z = fn(_arg(a[:, sl, None], b[:, sl, None], x))  # (E, p, M)
        mean = z.mean(-1, keepdim=True)
        z = z.sub_(mean)  # z is a fresh tensor: centre it in place
        var = torch.einsum("epm,epm->ep", z, z)
        cov = torch.einsum("epm,em->ep", z, edge.y_unit)
        r2 = cov * cov / var
        varies = _varies(var, mean.squeeze(-1), n_samples)
        out[:, sl] = torch.where(ok[:, sl] & varies & torch.isfinite(r2), r2, -math.inf)
    return out


def _search(fn: Fn, lim: _Limits, edge: _EdgeData, axes, zooms: int, box) -> tuple[torch.Tensor, ...]:
    """Coarse mesh, then zooms around its best local maxima: (a, b) of shape (E, K), NaN if invalid."""
    a_vals, a_half, b_vals, b_half = axes
    n_a, n_b = len(a_vals), len(b_vals)
    a_grid = a_vals.repeat_interleave(n_b)[None]
    b_grid = b_vals.repeat(n_a)[None]
    r2 = _mesh_r2(fn, edge, a_grid, b_grid, _valid(lim, a_grid, b_grid, edge))
    best, idx = _local_maxima(r2.view(-1, n_a, n_b), _STARTS)
    a, b = a_grid[0, idx], b_grid[0, idx]  # (E, K)
    ha, hb = a_half[idx // n_b], torch.full_like(a, b_half)
    t = torch.linspace(-1.0, 1.0, _ZOOM_POINTS, dtype=a.dtype)
    n_edges, n_starts = a.shape
    for _ in range(zooms):
        za = (a[..., None] + ha[..., None] * t).clamp(*box[0])  # (E, K, Z)
        zb = (b[..., None] + hb[..., None] * t).clamp(*box[1])
        a_grid = za.repeat_interleave(_ZOOM_POINTS, -1).flatten(1)  # (E, K·Z²)
        b_grid = zb.repeat(1, 1, _ZOOM_POINTS).flatten(1)
        r2 = _mesh_r2(fn, edge, a_grid, b_grid, _valid(lim, a_grid, b_grid, edge))
        zoom_best, idx = r2.view(n_edges, n_starts, -1).max(-1)
        better = zoom_best > best
        pick = torch.arange(n_starts)[None, :] * _ZOOM_POINTS**2 + idx
        a = torch.where(better, a_grid.gather(1, pick), a)
        b = torch.where(better, b_grid.gather(1, pick), b)
        best = torch.maximum(best, zoom_best)
        ha, hb = ha * (2 / (_ZOOM_POINTS - 1)), hb * (2 / (_ZOOM_POINTS - 1))
    none = best == -math.inf
    return a.masked_fill(none, math.nan), b.masked_fill(none, math.nan)


def _varies(sum_sq: torch.Tensor, mean: torch.Tensor, n: int) -> torch.Tensor:
    """Whether a curve with centred sum of squares ``sum_sq`` and ``mean`` is not flat."""
    var = sum_sq / n
    return var * (1 - _MIN_REL_SPREAD**2) > _MIN_REL_SPREAD**2 * mean.square()


def _local_maxima(r2: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k best local maxima of each edge's (A, B) mesh of r²: values and flat indices (E, k)."""
    pooled = torch.nn.functional.max_pool2d(r2[:, None], 3, stride=1, padding=1)[:, 0]
    peaks = torch.where((r2 >= pooled) & (r2 > -math.inf), r2, -math.inf).flatten(1)
    return peaks.topk(min(k, peaks.shape[1]), dim=1)


def _solve_cd(fu: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Closed-form (c, d) of y ≈ c·fu+d along the last axis, the residual and centred fu.

    A constant fu (spread below sqrt(eps) of its size) gets c = 0.
    """
    fm = fu.mean(-1, keepdim=True)
    fc = fu - fm
    ym = y.mean(-1, keepdim=True)
    yc = y - ym
    sff = fc.square().sum(-1)
    rel = math.sqrt(torch.finfo(fu.dtype).eps)
    curve = sff > fu.shape[-1] * (rel * fm.squeeze(-1)).square()
    c = torch.where(curve, (fc * yc).sum(-1) / sff, torch.zeros_like(sff))
    c = torch.where(torch.isnan(sff), math.nan, c)
    d = ym.squeeze(-1) - c * fm.squeeze(-1)
    return c, d, yc - c[..., None] * fc, fc


def _project_out(v: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
    """v with its least-squares fit on span{1, fc} removed (fc is centred)."""
    v = v - v.mean(-1, keepdim=True)
    sff = fc.square().sum(-1, keepdim=True).clamp(min=torch.finfo(fc.dtype).tiny)
    return v - (v * fc).sum(-1, keepdim=True) / sff * fc


def _arg(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """a·x+b broadcast (twice as fast as addcmul's broadcasting kernel)."""
    return (x * a).add_(b)


def _curve(fn: Fn, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """f(a·x+b) for a, b of shape (..., E, K): (..., E, K, M)."""
    return fn(_arg(a[..., None], b[..., None], x[:, None, :]))


def _sse_at(family: _Family, edge: _EdgeData, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSE of the best c·f(a·x+b)+d for a, b of shape (F, E, P); inf where (a, b) is invalid or flat."""
    z = _curve(family, edge.x, a, b)
    _, _, residual, fc = _solve_cd(z, edge.y[:, None, :])
    ok = _valid(family.limits, a, b, edge) & _varies(fc.square().sum(-1), z.mean(-1), z.shape[-1])
    return torch.where(ok, torch.nan_to_num(residual.square().sum(-1), nan=math.inf), math.inf)


def _lm_steps(fn: Fn, edge: _EdgeData, a, b, lam) -> tuple[torch.Tensor, torch.Tensor]:
    """Damped Gauss-Newton steps in (a, b) (..., E, K), one per damping in ``lam`` (..., E, K, T).

    Uses Kaufman's variable-projection Jacobian: the derivatives of c·f(a·x+b) with the part that
    (c, d) can absorb projected out.
    """
    x = edge.x[:, None, :]
    u = _arg(a[..., None], b[..., None], x)
    h = torch.finfo(x.dtype).eps ** (1 / 3) * u.abs().clamp(min=1.0)
    slope = (fn(u + h) - fn(u - h)) / (2 * h)  # central difference: no autograd state needed
    c, _, residual, fc = _solve_cd(fn(u), edge.y[:, None, :])
    jb = c[..., None] * slope
    ja, jb = _project_out(jb * x, fc), _project_out(jb, fc)
    haa, hbb, hab = (
        ja.square().sum(-1, keepdim=True),
        jb.square().sum(-1, keepdim=True),
        (ja * jb).sum(-1, keepdim=True),
    )
    ga, gb = (ja * residual).sum(-1, keepdim=True), (jb * residual).sum(-1, keepdim=True)
    daa, dbb = haa * (1 + lam), hbb * (1 + lam)  # Marquardt: damping scaled by the diagonal
    det = daa * dbb - hab * hab
    solvable = det > 0
    det = torch.where(solvable, det, torch.ones_like(det))
    da = torch.where(solvable, (dbb * ga - hab * gb) / det, 0.0)
    db = torch.where(solvable, (daa * gb - hab * ga) / det, 0.0)
    return da, db


def _refine(family: _Family, edge: _EdgeData, a, b, steps: int, box) -> tuple[torch.Tensor, ...]:
    """Levenberg-Marquardt on (a, b) of shape (F, E, K) with (c, d) eliminated; returns a, b, SSE.

    Each step tries several dampings, and a doubled Gauss-Newton step (which helps along curved
    valleys), in one batched evaluation, and keeps the best trial that stays valid and lowers the
    SSE; where none does, the damping grows.
    """
    lam = torch.full_like(a, 1e-2)
    sse = _sse_at(family, edge, a, b)
    for _ in range(steps):
        trial_lam = lam[..., None] * _DAMPINGS.to(a.dtype)
        da, db = _lm_steps(family, edge, a, b, trial_lam)
        stretch = _STRETCH.to(a.dtype)
        a_new = (a[..., None] + da * stretch).clamp(*box[0])  # (F, E, K, T)
        b_new = (b[..., None] + db * stretch).clamp(*box[1])
        sse_new = _sse_at(family, edge, a_new.flatten(-2), b_new.flatten(-2)).view(a_new.shape)
        best_sse, pick = sse_new.min(-1, keepdim=True)
        better = best_sse[..., 0] < sse
        a = torch.where(better, a_new.gather(-1, pick)[..., 0], a)
        b = torch.where(better, b_new.gather(-1, pick)[..., 0], b)
        sse = torch.where(better, best_sse[..., 0], sse)
        lam = torch.where(better, trial_lam.gather(-1, pick)[..., 0], lam * 100.0)
    return a, b, sse


def _best_start(a: torch.Tensor, b: torch.Tensor, sse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per edge, the (a, b) of the start with the smallest SSE: (..., E, K) → (..., E)."""
    pick = sse.argmin(-1, keepdim=True)
    return a.gather(-1, pick)[..., 0], b.gather(-1, pick)[..., 0]


def _canonical(name: str, lim: _Limits, edge: _EdgeData, a, b) -> tuple[torch.Tensor, ...]:
    """The simplest (a, b) computing the same c·f(a·x+b)+d family (see the module docstring)."""
    fn = FUNCTIONS[name]
    if fn.canonical == "unit_a":
        ca, cb = torch.ones_like(a), b / a
    elif fn.canonical == "sign_a":
        ca, cb = torch.sign(a), b / a.abs()
    elif fn.canonical == "zero_b":
        ca, cb = a, torch.zeros_like(b)
    elif fn.canonical == "positive_a":
        ca, cb = a.abs(), b * torch.sign(a)
    else:
        return a, b
    if fn.period is not None:
        cb = cb - fn.period * torch.round(cb / fn.period)
    keep = _valid(lim, ca[:, None], cb[:, None], edge)[:, 0]
    return torch.where(keep, ca, a), torch.where(keep, cb, b)
