"""Prior formulas: a MultKAN that starts as the scientist's formula and can learn what it misses.

KAN 2.0's "compile, then train": known physics is the starting point, training adds what it
misses. The formula is compiled over exactly the run's inputs (inputs it does not use are
unconnected), then capacity is added:

- ``extra_depth`` identity layers after the output (``x`` edges), so an outer function can be
  learnt;
- ``extra_width`` numeric sum nodes in every hidden layer, fed by ordinary spline edges;
- every edge of every layer gets its numeric part switched on. An edge computes its symbolic
  function plus a spline (the engine sums both), so a prior edge becomes c·f(a·x+b)+d + spline.
  The spline starts small: its coefficients are bounded by ``spline_magnitude`` times the edge's
  |c| (1 for edges the formula does not have) and its base weight is 0, so with
  ``spline_magnitude=0`` the model computes the prior exactly and gradients still reach every
  spline. Edges into the extra nodes keep the ordinary random initialisation so those nodes
  carry signal from the start; their outgoing edges are small like the rest.

Node and subnode affines are trainable. ``normalization`` (a run's standardisation) re-expresses
the formula in standardised units: input scalings move into the first layer's (a, b), target
scaling into the output node affine.
"""

from __future__ import annotations

import numpy as np
import torch

from kandisc.defaults import BASE_FUN, GRID, ORDER
from kandisc.errors import ConfigError, DataError, FormulaError
from kandisc.knowledge.compiler import IDENTITY, NetworkPlan, plan_network, read_formula


def model_from_prior(
    text,
    input_names: list[str],
    output_names: list[str],
    extra_width: int = 0,
    extra_depth: int = 0,
    spline_magnitude: float = 0.01,
    grid: int = GRID,
    k: int = ORDER,
    base_fun: str = BASE_FUN,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    normalization=None,
):
    """The MultKAN computing the prior formula ``text`` plus small trainable splines (see module doc)."""
    if len(output_names) != 1:
        raise ConfigError(
            f"a prior formula predicts one target, but the run has {len(output_names)} "
            f"({', '.join(output_names)}); fit one target per run"
        )
    for name, value in (("extra_width", extra_width), ("extra_depth", extra_depth)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"prior {name} must be an integer >= 0, got {value!r}")
    if not spline_magnitude >= 0:
        raise ConfigError(f"prior spline_magnitude must be >= 0, got {spline_magnitude!r}")
    expr, names, _ = read_formula(text, list(input_names))
    if not expr.free_symbols:
        raise FormulaError(
            f"prior formula {text!r} is the constant {expr}: it uses none of the inputs; a prior is a formula of"
            f" the input columns ({', '.join(input_names)}), e.g. 2*mu*(F11-1)"
        )
    plan = plan_network(expr, names)
    for _ in range(extra_depth):
        plan = _deepen(plan)
    fresh = _widen(plan, extra_width)
    model = plan.build(grid=grid, k=k, dtype=dtype, base_fun=base_fun, seed=seed, affine_trainable=True)
    keep = [_into_nodes(model, layer, fresh[layer + 1]) for layer in range(model.depth)]
    _switch_on_splines(model, spline_magnitude, keep)
    if normalization:
        fold_normalization(model, normalization)
    return model


def check_prior_on_rows(text: str, input_names: list[str], x: np.ndarray) -> None:
    """A prior must be defined on every data row: NaN/inf there would poison the whole fit."""
    from kandisc.knowledge.formula import parse_formula, to_numpy_function

    expr = parse_formula(text, list(input_names))
    values = to_numpy_function(expr, list(input_names))({n: x[:, i] for i, n in enumerate(input_names)})
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            f"prior formula {text!r} is NaN/inf on {int(bad.sum())} of {len(values)} data rows (first: data row"
            f" {int(np.flatnonzero(bad)[0]) + 1}); a prior must be defined on every row, fix the formula or the data"
        )


def prior_from_bundle(
    bundle,
    input_names: list[str],
    output_names: list[str],
    spline_magnitude: float = 0.01,
    normalization=None,
    source: str = "prior model",
):
    """A saved model (``kandisc compile`` or a raw-unit fit, loaded) as a prior over the run's inputs.

    Its inputs must all be among ``input_names`` (others join unconnected) and its outputs must be
    ``output_names``. Symbolic and removed edges get small splines as in :func:`model_from_prior`;
    numeric edges keep their trained values. ``source`` names the model in messages.
    """
    from kandisc.knowledge.user_functions import restore_functions

    restore_functions(bundle)
    if list(bundle.output_names) != list(output_names):
        raise ConfigError(
            f"{source} predicts {', '.join(bundle.output_names)}, but the run's targets are {', '.join(output_names)}"
        )
    missing = [n for n in bundle.input_names if n not in input_names]
    if missing:
        raise ConfigError(
            f"{source} reads input(s) {', '.join(missing)}, which the run lacks (run inputs: {', '.join(input_names)})"
        )
    if bundle.normalization:
        raise ConfigError(
            f"{source} works on standardised data (data.standardize); a prior must "
            "be in raw units: compile the formula or refit without standardize"
        )
    model = _reindex_inputs(bundle.model, list(bundle.input_names), list(input_names))
    keep = [kan.num_mask > 0 for kan in model.layers]
    if normalization and bool(keep[0].any()):
        raise ConfigError(
            f"{source} has trained spline edges on its inputs, which cannot be moved to "
            "standardised units; set data.standardize: false for this run"
        )
    _switch_on_splines(model, spline_magnitude, keep)
    model.spec.affine_trainable = True
    for params in (model.subnode_scale, model.subnode_bias, model.node_scale, model.node_bias):
        for p in params:
            p.requires_grad_(True)
    if normalization:
        fold_normalization(model, normalization)
    return model


# ----- capacity ---------------------------------------------------------------------------------


def _deepen(plan: NetworkPlan) -> NetworkPlan:
    """Append a layer of identity sum nodes after the output."""
    n_out = sum(plan.width[-1])
    edges = plan.edges + [(len(plan.width) - 1, n, n, "x", IDENTITY) for n in range(n_out)]
    return NetworkPlan(plan.width + [[n_out, 0]], plan.mult_arity + [[]], edges, dict(plan.node_affine))


def _widen(plan: NetworkPlan, extra: int) -> list[list[int]]:
    """Insert ``extra`` sum nodes after the sum nodes of every hidden layer (in place); their ids."""
    fresh: list[list[int]] = [[] for _ in plan.width]
    if extra == 0:
        return fresh
    for nl in range(1, len(plan.width) - 1):
        n_sum = plan.width[nl][0]

        def shift(v, n_sum=n_sum):
            return v + extra if v >= n_sum else v

        plan.edges = [
            (layer, shift(i) if layer == nl else i, shift(j) if layer == nl - 1 else j, fn, p)
            for layer, i, j, fn, p in plan.edges
        ]
        plan.node_affine = {
            (layer, shift(n) if layer == nl - 1 else n): v for (layer, n), v in plan.node_affine.items()
        }
        plan.width[nl] = [n_sum + extra, plan.width[nl][1]]
        fresh[nl] = list(range(n_sum, n_sum + extra))
    return fresh


def _into_nodes(model, layer: int, nodes: list[int]) -> torch.Tensor:
    """(in, out) boolean mask of layer ``layer``'s edges that end in one of ``nodes``."""
    owner = torch.tensor(model.spec.subnode_owner(layer + 1))
    kan = model.layers[layer]
    into = torch.isin(owner, torch.tensor(nodes, dtype=torch.long))
    return into[None, :].expand(kan.in_dim, kan.out_dim).clone()


@torch.no_grad()
def _switch_on_splines(model, magnitude: float, keep: list[torch.Tensor]) -> None:
    """Turn on the numeric part of every edge; where ``keep`` is False, start it small (module doc)."""
    for kan, kept in zip(model.layers, keep, strict=True):
        small = ~kept.to(kan.coef.device)
        scale = torch.where(kan.sym_mask, kan.sym_params[..., 2].abs(), torch.ones_like(kan.scale_sp))
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        peak = kan.coef.abs().amax(1).clamp(min=1e-300)  # (in, out); B-splines sum to one
        target = kan.coef * (magnitude * scale / peak).unsqueeze(1)
        kan.coef.copy_(torch.where(small.unsqueeze(1), target, kan.coef))
        kan.scale_sp.copy_(torch.where(small, torch.ones_like(kan.scale_sp), kan.scale_sp))
        kan.scale_base.copy_(torch.where(small, torch.zeros_like(kan.scale_base), kan.scale_base))
        kan.num_mask.fill_(1.0)
        kan.invalidate()


# ----- units and inputs -------------------------------------------------------------------------


@torch.no_grad()
def fold_normalization(model, normalization) -> None:
    """Make a raw-unit symbolic model compute in standardised units (x_n -> y_n).

    The first layer's symbolic edges read x = std·x_n + mean, so a -> a·std, b -> b + a·mean; the
    output y_n = (y - y_mean)/y_std goes into the last node affine. Numeric parts are untouched.
    """
    first, last = model.layers[0], model.depth - 1
    if bool(normalization.y_log.any()):
        raise ValueError("a prior cannot be folded into a log-transformed target")
    mean = torch.as_tensor(normalization.x_mean, dtype=first.sym_params.dtype)
    std = torch.as_tensor(normalization.x_std, dtype=first.sym_params.dtype)
    a, b = first.sym_params[..., 0].clone(), first.sym_params[..., 1].clone()
    sym = first.sym_mask
    first.sym_params[..., 0] = torch.where(sym, a * std[:, None], a)
    first.sym_params[..., 1] = torch.where(sym, b + a * mean[:, None], b)
    y_mean = torch.as_tensor(normalization.y_mean, dtype=mean.dtype)
    y_std = torch.as_tensor(normalization.y_std, dtype=mean.dtype)
    model.node_scale[last].div_(y_std)
    model.node_bias[last].sub_(y_mean).div_(y_std)


def _reindex_inputs(model, old_names: list[str], new_names: list[str]):
    """The same network reading ``new_names`` (a superset of ``old_names``); new inputs unconnected."""
    from kandisc.model import ModelSpec, MultKAN

    spec = ModelSpec.from_dict(model.spec.to_dict())
    spec.width = [[len(new_names), 0]] + spec.width[1:]
    new = MultKAN(spec, dtype=model.dtype)
    state = model.state_dict()
    target = new.state_dict()
    rows = torch.tensor([new_names.index(n) for n in old_names])
    for key, value in state.items():
        if key.startswith("layers.0."):
            merged = target[key].clone()
            merged[rows] = value
            state[key] = merged
    with torch.no_grad():
        unused = torch.ones(len(new_names), dtype=torch.bool)
        unused[rows] = False
        state["layers.0.num_mask"][unused] = 0.0
        state["layers.0.sym_mask"][unused] = False
    new.load_state_dict(state)
    return new
