"""``MultKAN``: a stack of KAN layers with sum and multiplication nodes and node affines.

Per layer l: subnodes = KANLayer_l(x); subnodes = subnode_scale·subnodes + subnode_bias;
sum nodes pass their subnode through, mult nodes multiply their ``arity`` consecutive subnodes
(one gather + prod, any mix of arities); x = node_scale·nodes + node_bias.
A plain ``nn.Module`` built from a :class:`ModelSpec`: no I/O, no printing, no global seeding.
"""

from __future__ import annotations

import torch
from torch import nn

from kandisc.model.layer import KANLayer, LayerTrace
from kandisc.model.spec import ModelSpec


class MultKAN(nn.Module):
    def __init__(self, spec: ModelSpec, dtype: torch.dtype = torch.float64, device="cpu"):
        super().__init__()
        spec.validate()
        self.spec = spec
        generator = torch.Generator().manual_seed(int(spec.seed))
        self.layers = nn.ModuleList()
        self.subnode_scale = nn.ParameterList()
        self.subnode_bias = nn.ParameterList()
        self.node_scale = nn.ParameterList()
        self.node_bias = nn.ParameterList()
        for layer in range(spec.depth):
            n_in, n_sub, n_nodes = spec.nodes(layer), spec.subnodes(layer + 1), spec.nodes(layer + 1)
            self.layers.append(
                KANLayer(
                    n_in, n_sub, spec.grid, spec.k, spec.base_fun, spec.grid_range, spec.noise_scale, generator, dtype
                )
            )
            trainable = spec.affine_trainable
            self.subnode_scale.append(nn.Parameter(torch.ones(n_sub, dtype=dtype), requires_grad=trainable))
            self.subnode_bias.append(nn.Parameter(torch.zeros(n_sub, dtype=dtype), requires_grad=trainable))
            self.node_scale.append(nn.Parameter(torch.ones(n_nodes, dtype=dtype), requires_grad=trainable))
            self.node_bias.append(nn.Parameter(torch.zeros(n_nodes, dtype=dtype), requires_grad=trainable))
            self.register_buffer(f"_mult_index_{layer}", self._mult_index(layer + 1), persistent=False)
        self.to(device)

    def _mult_index(self, node_layer: int) -> torch.Tensor:
        """(n_mult, max_arity) subnode indices per mult node, padded with the index of a ones column."""
        spec = self.spec
        n_sum, n_sub = spec.width[node_layer][0], spec.subnodes(node_layer)
        arities = spec.mult_arity[node_layer]
        if not arities:
            return torch.zeros(0, 0, dtype=torch.long)
        width = max(arities)
        rows, start = [], n_sum
        for arity in arities:
            rows.append(list(range(start, start + arity)) + [n_sub] * (width - arity))
            start += arity
        return torch.tensor(rows, dtype=torch.long)

    # ----- shape ---------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].coef.dtype

    @property
    def device(self) -> torch.device:
        return self.layers[0].coef.device

    def n_edges(self) -> int:
        return int(sum(int(layer.active().sum()) for layer in self.layers))

    # ----- evaluation ----------------------------------------------------------------------
    def combine(self, layer: int, sub: torch.Tensor) -> torch.Tensor:
        """Subnode values (B, n_sub) of layer ``layer`` -> node values (B, n_nodes) after affines."""
        sub = sub * self.subnode_scale[layer] + self.subnode_bias[layer]
        n_sum = self.spec.width[layer + 1][0]
        index = getattr(self, f"_mult_index_{layer}")
        if index.numel():
            padded = torch.cat([sub, torch.ones_like(sub[:, :1])], dim=1)
            prods = padded[:, index].prod(dim=-1)
            nodes = torch.cat([sub[:, :n_sum], prods], dim=1)
        else:
            nodes = sub
        return nodes * self.node_scale[layer] + self.node_bias[layer]

    def forward(self, x: torch.Tensor, first_order: bool = False) -> torch.Tensor:
        """Outputs (B, out). ``first_order``: the result is differentiated at most once (a training
        objective), which lets the layers use their compiled kernel (:mod:`kandisc.model.fused`)."""
        for layer, kan in enumerate(self.layers):
            x = self.combine(layer, kan(x, first_order=first_order))
        return x

    def forward_traced(self, x: torch.Tensor) -> tuple[torch.Tensor, list[LayerTrace]]:
        """Forward that also returns per-layer traces for statistics (regulariser, attribution)."""
        traces = []
        for layer, kan in enumerate(self.layers):
            sub, trace = kan(x, trace=True)
            traces.append(trace)
            x = self.combine(layer, sub)
        return x, traces

    @torch.no_grad()
    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Inputs of every layer (list of depth tensors) for ``x``."""
        inputs = []
        for layer, kan in enumerate(self.layers):
            inputs.append(x)
            x = self.combine(layer, kan(x))
        return inputs

    @torch.no_grad()
    def edge_curves(self, x: torch.Tensor, n_points: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Every edge's curve over the range its input takes on rows ``x``, for fitting and plots.

        Per layer: ``n_points`` evenly spaced inputs (P, in) from each input's minimum to its
        maximum on ``x``, and every edge's output there (P, in, out).
        """
        curves = []
        for kan, h in zip(self.layers, self.layer_inputs(x), strict=True):
            lo, hi = h.min(0).values, h.max(0).values
            t = torch.linspace(0, 1, n_points, dtype=h.dtype, device=h.device)[:, None]
            points = lo + t * (hi - lo)
            curves.append((points, kan.edge_curves(points)))
        return curves

    # ----- edge modes ----------------------------------------------------------------------
    def set_symbolic(self, layer: int, i: int, j: int, name: str, params) -> None:
        self.layers[layer].set_symbolic(i, j, name, params)

    def set_numeric(self, layer: int, i: int, j: int) -> None:
        self.layers[layer].set_numeric(i, j)

    def remove_edge(self, layer: int, i: int, j: int) -> None:
        self.layers[layer].remove_edge(i, j)

    def symbolic_edges(self) -> list[dict]:
        """Every symbolic edge as ``{layer, i, j, fn, params}`` (JSON-able)."""
        from kandisc.model.functions import FUNCTION_NAMES

        edges = []
        for layer, kan in enumerate(self.layers):
            for i, j in kan.sym_mask.nonzero().tolist():
                edges.append(
                    {
                        "layer": layer,
                        "i": i,
                        "j": j,
                        "fn": FUNCTION_NAMES[int(kan.sym_fn[i, j])],
                        "params": [float(v) for v in kan.sym_params[i, j].detach()],
                    }
                )
        return edges

    @torch.no_grad()
    def live_entries(self) -> dict[torch.Tensor, torch.Tensor]:
        """Parameter -> boolean mask (its shape) of the entries the model's output depends on:
        a spline's coefficients and scales only on numeric edges, formula constants only on
        symbolic ones (the rest are masked out, exactly). Parameters not listed are all live."""
        live = {}
        for kan in self.layers:
            numeric = kan.num_mask > 0
            live[kan.coef] = numeric[:, None, :].expand_as(kan.coef).clone()
            live[kan.scale_base], live[kan.scale_sp] = numeric.clone(), numeric.clone()
            live[kan.sym_params] = kan.sym_mask[..., None].expand_as(kan.sym_params).clone()
        return live

    @torch.no_grad()
    def permute_nodes(self, node_layer: int, order: list[int]) -> None:
        """Reorder the nodes of hidden node-layer ``node_layer`` (new node p is old node
        ``order[p]``) without changing the function: a node takes its subnodes, affines, incoming
        and outgoing edges (masks, symbolic edges, grids) along. Sum nodes stay before
        multiplication nodes, which may be reordered among themselves whatever their arities."""
        spec = self.spec
        if not 0 < node_layer < self.depth:
            raise ValueError(f"node layer must be a hidden layer, 1..{self.depth - 1}, got {node_layer}")
        n_sum, n_nodes = spec.width[node_layer][0], spec.nodes(node_layer)
        if sorted(order) != list(range(n_nodes)) or sorted(order[:n_sum]) != list(range(n_sum)):
            raise ValueError(f"order must permute 0..{n_nodes - 1} keeping the {n_sum} sum nodes first, got {order}")
        owner = spec.subnode_owner(node_layer)
        sub_order = [sub for node in order for sub, own in enumerate(owner) if own == node]
        arities = spec.mult_arity[node_layer]
        spec.mult_arity[node_layer] = [arities[node - n_sum] for node in order[n_sum:]]
        self.layers[node_layer - 1].permute(outputs=sub_order)
        self.layers[node_layer].permute(inputs=order)
        pairs = ((self.subnode_scale, sub_order), (self.subnode_bias, sub_order))
        for params, index in (*pairs, (self.node_scale, order), (self.node_bias, order)):
            param = params[node_layer - 1]
            param.copy_(param[torch.as_tensor(index, device=param.device)])
        index_name = f"_mult_index_{node_layer - 1}"
        self.register_buffer(index_name, self._mult_index(node_layer).to(self.device), persistent=False)

    # ----- grids ---------------------------------------------------------------------------
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, n_intervals: int | None = None) -> None:
        """Adapt every layer's grid to the data (layer by layer, feeding the updated layers)."""
        n_intervals = n_intervals or self.spec.grid
        for layer, kan in enumerate(self.layers):
            kan.regrid(x, n_intervals, self.spec.grid_eps)
            x = self.combine(layer, kan(x))
        self.spec.grid = n_intervals

    def refine(self, x: torch.Tensor, n_intervals: int) -> None:
        """Grid extension G -> G': least-squares warm start of the finer spline from the current one."""
        self.update_grid(x, n_intervals)

    # ----- loading -------------------------------------------------------------------------
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # Coefficient shapes follow the grid size stored in the spec; resize before copying.
        for layer, kan in enumerate(self.layers):
            key = f"layers.{layer}.coef"
            if key in state_dict and state_dict[key].shape != kan.coef.shape:
                shape = state_dict[key].shape  # row-major whatever the saved tensor's strides
                kan.coef = nn.Parameter(torch.empty(shape, dtype=kan.coef.dtype, device=kan.coef.device))
            gkey = f"layers.{layer}.grid"
            if gkey in state_dict and state_dict[gkey].shape != kan.grid.shape:
                kan.grid = torch.empty_like(state_dict[gkey], dtype=kan.grid.dtype)
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        for kan in self.layers:
            kan.invalidate()
            kan._refresh_tables()
        return result
