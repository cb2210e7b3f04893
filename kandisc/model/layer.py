"""``KANLayer``: every edge of one KAN layer, evaluated together.

Edge (i, j) from input i to output subnode j computes either
  numeric:  phi(x) = w_b·b(x) + w_s·Σ_m c_m B_m(x)     (b = SiLU / identity / zero)
  symbolic: phi(x) = c·f(a·x + b) + d                  (f from :mod:`kandisc.model.functions`)
or nothing (removed). The numeric part is one GEMM of the ``(B, in·(G+k+1))`` feature matrix
(base column + local B-spline bases) against weights assembled from scales, coefficients and the
mask. Symbolic edges are grouped by function: one gather, one elementwise call and one
``index_add`` per function present, and nothing at all when no edge is symbolic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from kandisc.model import fused, native, spline
from kandisc.model.functions import FUNCTION_IDS, FUNCTION_NAMES, FUNCTIONS
from kandisc.model.spread import numeric_output_and_spread


@dataclass
class LayerTrace:
    """What one layer saw and produced, kept only when statistics are requested."""

    x: torch.Tensor  # (B, in) layer input
    features: torch.Tensor | None  # (B, in, K+1) base + bases; None from the fused kernel (no symbolic edge)
    weights: torch.Tensor  # (in, K+1, out) numeric weights (masked)
    out: torch.Tensor  # (B, out) summed subnode values, before the subnode affine
    sym_values: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # (in_idx, out_idx, (B, E_f))
    numeric_std: torch.Tensor  # (in, out) std over the batch of each numeric edge's output
    input_std: torch.Tensor | None = None  # (in,) std over the batch of x; None: take it from x


def feature_covariance(features: torch.Tensor) -> torch.Tensor:
    """(in, K+1, K+1) covariance over the batch of each input's features (B, in, K+1)."""
    n = features.shape[0]
    centred = features - features.mean(0, keepdim=True)
    return torch.einsum("bik,bil->ikl", centred, centred) / max(n - 1, 1)


class KANLayer(nn.Module):
    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid: int,
        k: int,
        base_fun: str,
        grid_range: tuple[float, float],
        noise_scale: float,
        generator: torch.Generator,
        dtype: torch.dtype,
    ):
        super().__init__()
        self.in_dim, self.out_dim, self.k, self.base_fun = in_dim, out_dim, k, base_fun
        low = torch.full((in_dim,), float(grid_range[0]), dtype=dtype)
        high = torch.full((in_dim,), float(grid_range[1]), dtype=dtype)
        self.register_buffer("grid", spline.uniform_grid(low, high, grid, k))
        # Initial spline: small random values at the G+1 grid points, turned into coefficients.
        points = self.grid[:, k : k + grid + 1].transpose(0, 1)  # (G+1, in)
        noise = torch.rand(grid + 1, in_dim, out_dim, generator=generator, dtype=torch.float64) - 0.5
        noise = (noise * noise_scale / grid).to(dtype)
        basis = spline.dense_basis(points, self.grid, k).transpose(0, 1)  # (in, G+1, K)
        coef = spline.fit_coefficients(basis, noise.transpose(0, 1))  # (in, K, out)
        self.coef = nn.Parameter(coef)
        u = torch.rand(in_dim, out_dim, generator=generator, dtype=torch.float64) * 2 - 1
        self.scale_base = nn.Parameter((u / in_dim**0.5).to(dtype))
        self.scale_sp = nn.Parameter(torch.full((in_dim, out_dim), 1 / in_dim**0.5, dtype=dtype))
        self.register_buffer("num_mask", torch.ones(in_dim, out_dim, dtype=dtype))
        self.register_buffer("sym_mask", torch.zeros(in_dim, out_dim, dtype=torch.bool))
        self.register_buffer("sym_fn", torch.zeros(in_dim, out_dim, dtype=torch.long))
        self.sym_params = nn.Parameter(torch.zeros(in_dim, out_dim, 4, dtype=dtype))
        self._groups: list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        self._data_features: dict | None = None  # see constant_input_cache
        self._refresh_tables()

    def _refresh_tables(self) -> None:
        # De Boor constants depend only on the grid: rebuilt when it changes, never per batch.
        self.register_buffer("_table", spline.basis_table(self.grid, self.k), persistent=False)
        self._data_features = None
        self._rows = None  # see row_table

    def row_table(self) -> torch.Tensor:
        """The basis table as the compiled kernels read it (:func:`kandisc.model.native.row_table`),
        made once per table instead of once per evaluation."""
        kept = getattr(self, "_rows", None)
        if kept is None or kept[0] is not self._table or kept[1] != self._table._version:
            kept = self._rows = (self._table, self._table._version, native.row_table(self._table))
        return kept[2]

    def __getstate__(self) -> dict:
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__.copy()
        return {**state, "_data_features": None, "_rows": None}  # a copy must not carry the rows it was last fed

    def constant_input_cache(self, x: torch.Tensor) -> dict | None:
        """What this layer computes from ``x`` alone, kept while ``x`` is the same unchanged tensor
        without a gradient (None for an ``x`` that has one).

        A full-batch fit feeds the first layer the same training rows on every evaluation (a
        few thousand per fit), so their bases (the tensor path's features and the covariance
        the sparsity penalty takes of them, the kernel's record) are computed once per grid
        instead of once per evaluation. The key is the tensor itself (held, so its identity
        cannot be reused) with its in-place version and the grid's.
        """
        if x.requires_grad:
            return None
        key = (x, x._version, self.grid, self.grid._version, self._table)
        kept = self._data_features
        if kept is None or not all(
            a is b if isinstance(a, torch.Tensor) else a == b for a, b in zip(kept["key"], key, strict=True)
        ):
            kept = self._data_features = {"key": key}
        return kept

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """Basis features of ``x`` (B, in, K+1); kept for constant inputs (:meth:`constant_input_cache`)."""
        kept = self.constant_input_cache(x)
        if kept is None:
            return spline.basis_features(x, self.grid, self.k, self.base_fun, self._table)
        if "features" not in kept:
            kept["features"] = spline.basis_features(x, self.grid, self.k, self.base_fun, self._table)
        return kept["features"]

    def _constant_covariance(self, feats: torch.Tensor) -> torch.Tensor | None:
        """The feature covariance of ``feats`` when they are the kept data features (computed once)."""
        kept = self._data_features
        if kept is None or kept.get("features") is not feats:
            return None
        if "covariance" not in kept:
            kept["covariance"] = feature_covariance(feats)
        return kept["covariance"]

    # ----- structure ---------------------------------------------------------------------------
    def symbolic_groups(self) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(function name, input idx, output idx, flat edge idx) per function used; cached."""
        if self._groups is None:
            groups = []
            mask = self.sym_mask
            if bool(mask.any()):
                ins, outs = mask.nonzero(as_tuple=True)
                fns = self.sym_fn[ins, outs]
                for fid in torch.unique(fns).tolist():
                    sel = fns == fid
                    i, j = ins[sel], outs[sel]
                    groups.append((FUNCTION_NAMES[fid], i, j, i * self.out_dim + j))
            self._groups = groups
        return self._groups

    def invalidate(self) -> None:
        """Forget the cached symbolic groups (after changing masks or functions)."""
        self._groups = None

    def set_symbolic(self, i: int, j: int, name: str, params) -> None:
        with torch.no_grad():
            self.sym_mask[i, j] = True
            self.num_mask[i, j] = 0.0
            self.sym_fn[i, j] = FUNCTION_IDS[name]
            self.sym_params[i, j] = torch.as_tensor(params, dtype=self.sym_params.dtype)
        self.invalidate()

    def set_numeric(self, i: int, j: int) -> None:
        with torch.no_grad():
            self.sym_mask[i, j] = False
            self.num_mask[i, j] = 1.0
            self.sym_params[i, j] = 0.0
        self.invalidate()

    def remove_edge(self, i: int, j: int) -> None:
        with torch.no_grad():
            self.sym_mask[i, j] = False
            self.num_mask[i, j] = 0.0
        self.invalidate()

    def remove_edges(self, selected: torch.Tensor) -> None:
        """Remove every edge where the boolean (in, out) tensor ``selected`` is True."""
        with torch.no_grad():
            self.sym_mask &= ~selected
            self.num_mask *= (~selected).to(self.num_mask.dtype)
        self.invalidate()

    def active(self) -> torch.Tensor:
        """Boolean (in, out): edges that are numeric or symbolic."""
        return (self.num_mask > 0) | self.sym_mask

    @torch.no_grad()
    def permute(self, inputs: list[int] | None = None, outputs: list[int] | None = None) -> None:
        """Reorder the inputs and/or outputs (position p takes old index ``inputs[p]``); every edge
        tensor, mask and input grid moves with its node, so the layer computes the permuted function."""
        for name in ("coef", "scale_base", "scale_sp", "num_mask", "sym_mask", "sym_fn", "sym_params"):
            tensor = getattr(self, name)
            for index, dim in ((inputs, 0), (outputs, 2 if name == "coef" else 1)):
                if index is not None:
                    tensor.copy_(tensor.index_select(dim, torch.as_tensor(index, device=tensor.device)))
        if inputs is not None:
            self.grid = self.grid[torch.as_tensor(inputs, device=self.grid.device)]
            self._refresh_tables()
        self.invalidate()

    # ----- evaluation --------------------------------------------------------------------------
    def numeric_weights(self) -> torch.Tensor:
        """(in, K+1, out): base weight in row 0, spline coefficient weights below, masked."""
        w_base = (self.scale_base * self.num_mask).unsqueeze(1)
        w_spline = self.coef * (self.scale_sp * self.num_mask).unsqueeze(1)
        return torch.cat([w_base, w_spline], dim=1)

    def symbolic_values(self, x: torch.Tensor):
        """(input idx, output idx, (B, E_f) values c·f(a·x+b)+d) for each function group in use."""
        for name, ins, outs, flat in self.symbolic_groups():
            p = self.sym_params.reshape(-1, 4)[flat]
            yield ins, outs, p[:, 2] * FUNCTIONS[name].torch_fn(p[:, 0] * x[:, ins] + p[:, 1]) + p[:, 3]

    def _plus_symbolic(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``out`` (B, out) with every symbolic edge's value at ``x`` added to its output."""
        for _, outs, y in self.symbolic_values(x):
            out = out.index_add(1, outs, y)
        return out

    def forward(self, x: torch.Tensor, trace: bool = False, first_order: bool = False):
        """The layer's subnode values (B, out), and with ``trace`` its :class:`LayerTrace`.

        ``first_order``: the caller differentiates the result at most once (a training
        objective), so the compiled kernel of :mod:`kandisc.model.fused` may evaluate the numeric
        part; it is also used without a gradient and for traces (the spread is first-order anyway).
        Otherwise (a physics residual's derivatives of derivatives) the tensor path below runs."""
        if not trace and not bool(self.num_mask.any()):
            # Every edge symbolic or removed (a retrain once all are snapped, a formula check): the
            # numeric part is zero, and its bases need not be evaluated to say so.
            return self._plus_symbolic(x.new_zeros(x.shape[0], self.out_dim), x)
        if (first_order or trace or not torch.is_grad_enabled()) and fused.usable(x, self, trace):
            out, numeric_std, input_std, weights = fused.numeric_output(self, x, spread=trace)
            if trace:  # no symbolic edges here (fused.usable)
                return out, LayerTrace(x, None, weights, out, [], numeric_std, input_std)
            return self._plus_symbolic(out, x)
        feats = self._features(x)
        weights = self.numeric_weights()
        if trace:  # the edges' spreads too, in the same fused node (the sparsity penalty's input)
            out, numeric_std = numeric_output_and_spread(feats, weights, self._constant_covariance(feats))
        else:
            out = feats.reshape(x.shape[0], -1) @ weights.reshape(-1, self.out_dim)
        sym_values = list(self.symbolic_values(x))
        for _, outs, y in sym_values:
            out = out.index_add(1, outs, y)
        if trace:
            return out, LayerTrace(x, feats, weights, out, sym_values, numeric_std)
        return out

    def edge_curves(self, x: torch.Tensor) -> torch.Tensor:
        """Per-edge outputs (B, in, out) at inputs ``x`` (B, in): for plots and fitting, not training."""
        feats = spline.basis_features(x, self.grid, self.k, self.base_fun, self._table)
        phi = torch.einsum("bik,iko->bio", feats, self.numeric_weights())
        for ins, outs, y in self.symbolic_values(x):
            phi[:, ins, outs] = phi[:, ins, outs] + y  # a prior edge may carry a spline too
        return phi

    # ----- grids -------------------------------------------------------------------------------
    @torch.no_grad()
    def regrid(self, x: torch.Tensor, n_intervals: int, grid_eps: float) -> None:
        """Move the grid to the data ``x`` (N, in) with ``n_intervals`` intervals, keeping the function.

        Knots blend sample quantiles and uniform spacing; the spline is refitted by least squares
        on quantile points of the data, so nothing N-sized is kept.
        """
        k = self.k
        xs = torch.sort(x, dim=0).values
        n = xs.shape[0]
        pos = torch.linspace(0, n - 1, n_intervals + 1, device=x.device).round().long()
        adaptive = xs[pos].transpose(0, 1)  # (in, G+1)
        low, high = xs[0], xs[-1]
        span = high - low
        tiny = span < 1e-12 * (1 + low.abs())
        low = torch.where(tiny, low - 1e-3, low)
        high = torch.where(tiny, high + 1e-3, high)
        uniform = torch.linspace(0, 1, n_intervals + 1, dtype=x.dtype, device=x.device)
        uniform = low[:, None] + uniform[None, :] * (high - low)[:, None]
        inner = grid_eps * uniform + (1 - grid_eps) * adaptive
        inner[:, 0], inner[:, -1] = low, high
        # Repeated sample values would make knots coincide: add a tiny increasing ramp.
        ramp = torch.linspace(0, 1e-6, n_intervals + 1, dtype=x.dtype, device=x.device)
        inner = torch.cummax(inner, dim=1).values + ramp[None, :] * (high - low)[:, None]
        new_grid = spline.extend_grid(inner, k)
        # Sample points: data quantiles (dense where the data is) plus the uniform points.
        m = min(n, max(256, 16 * (n_intervals + k)))
        qpos = torch.linspace(0, n - 1, m, device=x.device).round().long()
        fine = torch.linspace(0, 1, 4 * (n_intervals + k), dtype=x.dtype, device=x.device)
        fine = low[None, :] + fine[:, None] * (high - low)[None, :]
        pts = torch.cat([xs[qpos], fine], 0)  # (M, in)
        old_basis = spline.dense_basis(pts, self.grid, k)  # (M, in, K)
        values = torch.einsum("mik,iko->imo", old_basis, self.coef)  # (in, M, out)
        new_basis = spline.dense_basis(pts, new_grid, k).transpose(0, 1)  # (in, M, K')
        new_coef = spline.fit_coefficients(new_basis, values)
        self.grid = new_grid
        self._refresh_tables()
        if new_coef.shape == self.coef.shape:
            self.coef.data.copy_(new_coef)
        else:
            self.coef = nn.Parameter(new_coef)
