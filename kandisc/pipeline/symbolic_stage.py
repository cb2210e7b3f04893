"""The ``symbolic`` stage: snap edges to library functions, retrain, assemble and verify formulas.

Rounds: sample every numeric edge's curve (100 points over its input's training range), fit the
whole library to all edges at once, snap the most certain share of the edges that pass the r²
threshold, retrain the rest with them in place. Edges that are negligible by attribution become
the zero function (removed); edges whose best fit stays under the threshold remain splines and
are reported. Then all constants are tuned jointly, the formula is assembled from the model,
checked against the model on held-out rows, and turned into a Pareto list of candidates.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from kandisc.attribution import attribute
from kandisc.defaults import retrain_optimizer
from kandisc.knowledge.user_functions import used_definitions
from kandisc.lm import MAX_PARAMETERS as LM_MAX_PARAMETERS
from kandisc.model.functions import DEFAULT_LIBRARY, FUNCTIONS
from kandisc.pipeline.in_context import EXACT_MSE, choose_in_context
from kandisc.pipeline.state import RunState, StageReport, held_out_predictions
from kandisc.pipeline.training import run_training
from kandisc.symbolic.assemble import assemble, verify
from kandisc.symbolic.edge_fit import fit_edges_rescaled
from kandisc.symbolic.scorer import Scorer
from kandisc.symbolic.selection import choose
from kandisc.symbolic.simplify import build_candidates
from kandisc.train import TrainSettings, train

CURVE_POINTS = 100
BACKFIT_ROWS = 400  # training rows an output edge is judged on: 4·noise/400 tells log from 1/x at 1 % noise
_CHANCE = 4.0  # constants of c·f(a·x + b) + d: fitting them to M noisy rows gains ~4/M of the noise by chance
# Misfits (1 - r²) below these are equal: a spline curve is known to ~1e-6, data rows much better.
CURVE_MISFIT_FLOOR, DATA_MISFIT_FLOOR = 1e-6, 1e-10


def sample_edge_curves(model, x: torch.Tensor, edges: list[tuple[int, int, int]]):
    """(E, M) inputs and outputs of the listed edges over their inputs' ranges on rows ``x``."""
    curves = model.edge_curves(x, CURVE_POINTS)
    order = sorted(edges, key=lambda e: e[0])  # by layer, in the given order within a layer
    xs = torch.stack([curves[layer][0][:, i] for layer, i, _ in order])
    ys = torch.stack([curves[layer][1][:, i, j] for layer, i, j in order])
    return xs, ys, order


@torch.no_grad()
def _backfit_output_edges(state: RunState, order: list) -> tuple[torch.Tensor, ...]:
    """The output layer's edges judged on data rows, not on their own curves: the edge's values
    plus the model's residual there (its partial residual, as in backfitting an additive model).

    A spline knows its function only to ~1e-6, where log and 1/x fit a factor alike; the data
    know it exactly, so the edge's fit to its partial residual tells them apart (and what the
    other edges still miss counts against every candidate alike). Rows: the first ``BACKFIT_ROWS``
    training rows (at least ``CURVE_POINTS``). Returns the mask of such edges in ``order``, their
    (inputs, targets) rows and the model's own misfit on each (1 − r² of the edge's spline there:
    noise plus spline error).
    """
    model, data = state.model, state.data
    last = model.depth - 1
    rows = slice(0, BACKFIT_ROWS)
    on_data = torch.zeros(len(order), dtype=torch.bool)
    empty = torch.empty(0, CURVE_POINTS, dtype=data.x_train.dtype)
    if state.task is not None or data.x_train.shape[0] < CURVE_POINTS:  # a task's output is not measured
        return on_data, empty, empty, empty[:, 0]
    n_sum = model.spec.width[-1][0]
    gain = model.subnode_scale[last][:n_sum] * model.node_scale[last][:n_sum]  # output j = gain_j·Σ_i φ_ij + offset
    # Only into a sum node (subnode j is node j): a product node's factors have no partial residual.
    picked = [
        (k, i, j)
        for k, (layer, i, j) in enumerate(order)
        if layer == last and j < n_sum and abs(float(gain[j])) > 1e-12
    ]
    if not picked:
        return on_data, empty, empty, empty[:, 0]
    h = model.layer_inputs(data.x_train[rows])[last]
    phi = model.layers[last].edge_curves(h)  # (M, in, out)
    residual = data.y_train[rows] - model(data.x_train[rows])  # (M, out)
    on_data[[k for k, _, _ in picked]] = True
    xs = torch.stack([h[:, i] for _, i, _ in picked])
    ys = torch.stack([phi[:, i, j] + residual[:, j] / gain[j] for _, i, j in picked])
    missed = torch.stack([(residual[:, j] / gain[j]).pow(2).sum() for _, i, j in picked])
    spread = (ys - ys.mean(dim=1, keepdim=True)).pow(2).sum(dim=1).clamp(min=1e-300)
    return on_data, xs, ys, missed / spread


def _noise_misfit(fits, on_data: torch.Tensor, model_misfit: torch.Tensor) -> torch.Tensor:
    """Per edge, the misfit that is the data's noise (selection rule 6): on data rows, the smaller
    of the model's own misfit there and the best function's (so a model that fits the noise, or
    a spline that misses the function, does not set it); 0 for an edge judged on its curve."""
    noise = torch.zeros(len(on_data), dtype=torch.float64)
    if bool(on_data.any()):
        usable = torch.tensor([n != "0" for n in fits.names])
        misfit = torch.where(torch.isfinite(fits.r2[on_data]) & usable, 1.0 - fits.r2[on_data].double(), math.inf)
        noise[on_data] = torch.minimum(misfit.min(dim=1).values, model_misfit.double()).clamp(min=0.0)
    return noise


def _numeric_edges(model) -> list[tuple[int, int, int]]:
    return [(layer, i, j) for layer, kan in enumerate(model.layers) for i, j in (kan.num_mask > 0).nonzero().tolist()]


def _zero_negligible(state: RunState, threshold: float) -> list[tuple[int, int, int]]:
    scores = attribute(state.model, state.data.x_train)
    zeroed = []
    for layer, kan in enumerate(state.model.layers):
        weak = (scores.edge_scores[layer] <= threshold) & (kan.num_mask > 0)
        zeroed += [(layer, i, j) for i, j in weak.nonzero().tolist()]
        kan.remove_edges(weak)
    return zeroed


def _snap_round(state: RunState, params: dict, rounds_left: int, alternatives: dict) -> tuple[list[dict], list[dict]]:
    """Fit the library to every numeric edge; snap the most certain share; report the rest.

    Returns the snapped edges ({edge, function, r2 of the fit}) and the edges left as splines;
    each snapped edge's runners-up go to ``alternatives`` (edge -> ((name, params), ...)).
    """
    edges = _numeric_edges(state.model)
    if not edges:
        return [], []
    library = [n for n in (params["library"] or DEFAULT_LIBRARY) if n != "0"]
    complexities = {n: FUNCTIONS[n].complexity for n in library} | dict(params["complexities"])
    x, y, order = sample_edge_curves(state.model, state.data.x_train, edges)
    fits = fit_edges_rescaled(x, y, library)
    on_data, xr, yr, model_misfit = _backfit_output_edges(state, order)
    if bool(on_data.any()):
        # Each function is judged on the partial residual (which tells log from 1/x), with the
        # better of its two fits there: to the curve (which a local optimum on the rows may miss)
        # and to the rows themselves.
        xr, yr = xr.to(x.dtype), yr.to(y.dtype)
        rows = fit_edges_rescaled(xr, yr, library)
        curve_r2 = _r2_on(fits.names, fits.params[on_data], xr, yr)
        better = rows.r2 > curve_r2
        fits.r2[on_data] = torch.where(better, rows.r2, curve_r2)
        fits.params[on_data] = torch.where(better[..., None], rows.params, fits.params[on_data])
    noise = _noise_misfit(fits, on_data, model_misfit)
    choices = choose(
        fits,
        complexities,
        params["weight_simple"],
        params["r2_threshold"],
        params["power_first"],
        torch.maximum(
            torch.where(on_data, DATA_MISFIT_FLOOR, CURVE_MISFIT_FLOOR), _CHANCE * noise / max(xr.shape[1], 1)
        ),
        noise,
    )
    ready = sorted((c for c in choices if c.name is not None), key=lambda c: -c.r2)
    share = ready[: max(1, math.ceil(len(ready) / rounds_left))] if ready else []
    for choice in share:
        layer, i, j = order[choice.edge]
        state.model.set_symbolic(layer, i, j, choice.name, choice.params)
        if choice.alternatives:
            alternatives[(layer, i, j)] = choice.alternatives
    snapped = {c.edge for c in share}
    left = [
        {"edge": list(order[c.edge]), "reason": c.reason} for c in choices if c.name is None and c.edge not in snapped
    ]
    fitted = [{"edge": list(order[c.edge]), "function": c.name, "r2": float(c.r2)} for c in share]
    return fitted, left


def _r2_on(names: list[str], params: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """r² (E, F) of c·f(a·x + b) + d with ``params`` (E, F, 4) on the rows ``x``, ``y`` (E, M)."""
    a, b, c, d = (params[..., k : k + 1] for k in range(4))  # (E, F, 1)
    with torch.no_grad():  # a function outside its domain gives inf/nan: -inf below
        values = torch.stack([FUNCTIONS[n].torch_fn(a[:, f] * x + b[:, f]) for f, n in enumerate(names)], dim=1)
        pred = c * values + d  # (E, F, M)
        sse = ((pred - y[:, None, :]) ** 2).sum(-1)
        sst = ((y - y.mean(-1, keepdim=True)) ** 2).sum(-1, keepdim=True).clamp(min=1e-300)
        r2 = 1 - sse / sst
    return torch.where(torch.isfinite(r2), r2, torch.full_like(r2, -math.inf))


def symbolic_stage(state: RunState, params: dict) -> StageReport:
    state.sink.stage_started("symbolic", 0)
    zeroed = _zero_negligible(state, params["zero_threshold"])
    fits, unsnapped = [], []

    def tune() -> TrainSettings:  # per retrain: auto takes LM once no edge is a spline
        return _retrain_settings(state.model, params)

    alternatives: dict = {}
    for round_index in range(params["rounds"]):
        share, unsnapped = _snap_round(state, params, params["rounds"] - round_index, alternatives)
        fits += share
        if not share:
            break
        if params["retrain_steps"]:
            with _inert_frozen(state.model):
                run_training(state, f"symbolic {round_index + 1}", tune())
    replaced = []
    if alternatives and state.task is None and not unsnapped and len(state.data.x_test) and not _exact(state):

        def retune():  # quiet: the trials are not steps of the run
            if params["retrain_steps"]:
                with _inert_frozen(state.model):
                    train(state.model, state.data, tune(), state.generator)

        rows = (_raw(state, state.data.x_train, state.data.y_train), _raw(state, state.data.x_test, state.data.y_test))
        replaced = choose_in_context(state.model, alternatives, lambda: _formula_error(state, rows), retune)
    if params["retrain_steps"]:
        with _inert_frozen(state.model):
            run_training(state, "symbolic tune", tune())
    added = used_definitions(state.model)
    if added:  # a reloaded model.pt must know the added functions its edges use
        state.bundle.extras["functions"] = added
    details = {
        "snapped_edges": len(fits),
        "fits": fits,  # each snapped edge's function and the r² of its fit to the spline
        "zeroed_edges": [list(e) for e in zeroed],
        "numeric_edges": unsnapped,
        "edges": state.model.symbolic_edges(),
        "replaced_in_context": replaced,  # runners-up whose whole formula fitted better
    }
    norm = state.bundle.normalization
    if norm is not None:  # input edges act on standardised inputs: the report shows them in raw units
        details["input_scaling"] = {"mean": norm.x_mean.tolist(), "std": norm.x_std.tolist()}
    message = ""
    if unsnapped:
        message = (
            f"{len(unsnapped)} edge(s) stayed splines (no library function reached r2_threshold "
            f"{params['r2_threshold']}); formulas depending on them are not reported"
        )
    mismatches = extract_formulas(state, params)
    if mismatches:
        message = (message + "; " if message else "") + "; ".join(mismatches)
    status = "formula_mismatch" if mismatches else "ok"
    return StageReport("symbolic", "symbolic", status, details, message)


@contextlib.contextmanager
def _inert_frozen(model):
    """Hold still, for the duration, the spline tensors of every layer without a numeric edge:
    masked out, they cannot change the model. LBFGS would carry their zero gradients, and the
    retrain's choice of optimiser (:func:`_retrain_settings`) counts only what can move."""
    frozen = []
    for kan in model.layers:
        if not bool((kan.num_mask > 0).any()):
            frozen += [p for p in (kan.coef, kan.scale_base, kan.scale_sp) if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _retrain_settings(model, params: dict) -> TrainSettings:
    """The settings of one retrain of the symbolic stage (inert tensors frozen first)."""
    with _inert_frozen(model):
        n_parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    all_symbolic = not any(bool((kan.num_mask > 0).any()) for kan in model.layers)
    opt = retrain_optimizer(params["retrain_opt"], n_parameters, LM_MAX_PARAMETERS, all_symbolic)
    return TrainSettings(steps=params["retrain_steps"], update_grid=False, opt=opt)


def _raw(state: RunState, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    norm = state.bundle.normalization
    x, y = x.detach().cpu().double().numpy(), y.detach().cpu().double().numpy()
    return (norm.x_from_model(x), norm.y_from_model(y)) if norm else (x, y)


def _scorer(state: RunState, assembly, t: int, train_rows, test_rows):
    """(expression, scorer) of output ``t``: its formula against its target column, or for a
    physics task the formula of the task's scalar (network + known term) on the task's residuals."""
    (x_train, y_train), (x_test, y_test) = train_rows, test_rows
    held_out = len(x_test) > 0
    if state.task is not None:
        from kandisc.tasks.scoring import TaskScorer

        eval_x, eval_y = (x_test, y_test) if held_out else (x_train, y_train)
        scorer = TaskScorer(state.task, assembly.symbols, x_train, y_train, eval_x, eval_y)
        return state.task.total_expr(assembly.exprs[t]), scorer
    eval_x, eval_y = (x_test, y_test[:, t]) if held_out else (x_train, y_train[:, t])
    return assembly.exprs[t], Scorer(assembly.symbols, x_train, y_train[:, t], eval_x, eval_y)


def _exact(state: RunState) -> bool:
    """Whether the (all-symbolic) model already reproduces every target on the held-out rows to
    rounding: then no runner-up can do better, and the check's formula refits are saved."""
    pred, truth = held_out_predictions(state)
    spread = truth.var(dim=0).clamp(min=1e-300)
    return bool((((pred - truth) ** 2).mean(dim=0) / spread <= EXACT_MSE).all())


def _formula_error(state: RunState, rows) -> list[float]:
    """Per target, the MSE / var(y) of the model's formula on every row, refitted in the
    target's units on the training rows (inf when a formula is missing or not finite).

    Every row, not the held-out ones alone: two functions that differ by about the noise differ
    on 200 noisy rows by chance by ~15 % of its MSE; a handful of refitted constants biases the
    training rows' share far less."""
    train, test = rows  # raw (x, y) of the training and held-out rows, the same for every trial
    assembly = assemble(state.bundle)
    errors = []
    for t in range(len(state.bundle.output_names)):
        expr, scorer = _scorer(state, assembly, t, train, test)
        if expr is None:
            errors.append(math.inf)
            continue
        refitted = scorer.refit(expr)
        n_train, n_test = len(train[0]), len(test[0])
        mse = (n_train * scorer.rmse(refitted, test=False) ** 2 + n_test * scorer.rmse(refitted) ** 2) / (
            n_train + n_test
        )
        errors.append(mse / scorer.y_scale**2 if math.isfinite(mse) else math.inf)
    return errors


def extract_formulas(state: RunState, params: dict) -> list[str]:
    """Assemble, verify and simplify formulas into ``state.formulas``; return mismatch messages."""
    bundle, data = state.bundle, state.data
    x_train, y_train = _raw(state, data.x_train, data.y_train)
    x_test, y_test = _raw(state, data.x_test, data.y_test)
    check_x = x_test if len(x_test) else x_train
    assembly = assemble(bundle)
    checks = verify(bundle, assembly, check_x)
    mismatches = []
    for t, target in enumerate(bundle.output_names):
        status, err = checks[t]
        entry = {"check": {"status": status, "max_relative_error": err}, "best": None, "candidates": []}
        state.formulas[target] = entry
        if status == "mismatch":
            mismatches.append(
                f"BUG: the formula for {target} differs from the model by {err:.2e} (relative); it was not written"
            )
            continue
        if status != "ok":
            continue
        expr, scorer = _scorer(state, assembly, t, (x_train, y_train), (x_test, y_test))
        front = build_candidates(expr, scorer, params["snap_constants"], params["max_candidates"])
        entry["candidates"] = [c.to_row(target) for c in front]
        entry["best"] = next((row for row in entry["candidates"] if row["is_best"]), None)
    return mismatches
