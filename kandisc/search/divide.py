"""``structure: auto``: divide and conquer (KAN 2.0's trick A, AI Feynman's recursion): split a
separable law into parts, fit each part apart, recombine.

The ``divide`` candidate, in its worker:

1. fits a surrogate of the data (a ``[n, 5, 1]`` network on the training rows, grid refined once);
2. tests it (:func:`kandisc.structure.detect_structure`) for additive ``f = g1(x_A) + g2(x_B) + ...``
   or multiplicative ``f = g1(x_A)·g2(x_B)···`` separability and takes the finer partition;
3. for each group ``G``, evaluates the surrogate on the data's own rows with every other input
   held at its training median: ``f(x_G, med)`` is ``g_G`` up to an added (multiplied) constant.
   A part the surrogate shows separable again is split again (the same test on ``f(x_G, med)``,
   up to ``MAX_DEPTH`` levels); otherwise the plan's families run on that smaller table (a search
   of its own, first seed, in order, after a single raw edge when the part has one input,
   until one formula reproduces it to ``PART_R2``, each part within its share of the time left);
4. recombines, ``f = Σ f(x_G, med) - (m-1)·f(med)`` or ``Π f(x_G, med) / f(med)**(m-1)``, chooses
   each part's formula among its front's in the whole law on the real rows, refits every constant
   jointly on the real training rows (the parts saw the surrogate, not the data) and snaps them
   like any formula, scored on the run's held-out rows.

Its formulas join the search's one Pareto front; its surrogate is a network of the run's inputs,
so it may be the run's model (a law found here ends the search without waiting for another fit).
A law the surrogate finds inseparable ends the candidate at step 2 (status ``skipped``, the scores in its message).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import sympy as sp
import torch

from kandisc.io.config_schema import DEFAULT_PIPELINE
from kandisc.io.data import table_from_arrays
from kandisc.knowledge.formula import parse_formula
from kandisc.pipeline.runner import Prepared
from kandisc.search.choose import merge, target_scales
from kandisc.search.plan import Candidate, first_deep, plan
from kandisc.search.subproblem import DerivedCandidate, column_scorers, derived_prepared, formula_entry
from kandisc.search.worker import Outcome, run_candidate
from kandisc.symbolic.curves import library_curves, spread_rows
from kandisc.symbolic.scorer import complexity
from kandisc.symbolic.simplify import build_candidates

NAME = "divide"
PART_R2 = 0.9999  # a part's formula this close to the surrogate is about as good as the surrogate
MAX_DEPTH = 3  # splits of a part's part's part at most
_LEAF_OPTIONS = 4  # formulas of a part's front tried in the whole law
_LIBRARY_OPTIONS = 3  # and, for a one-input part, the best-fitting library functions
_ALWAYS_TRIED = ("x", "x^2", "1/x", "sqrt")  # and these
_LIBRARY_POINTS = 200  # rows of a one-input part the library is fitted to
_ONE_INPUT_FAMILIES = ("log-additive",)
_CLEARLY_BETTER = 1.05  # held-out RMSE factor an option must beat (or match, when simpler)
# The split's scores are only as good as the surrogate (a rough one scores a true product at 0.06,
# over the 0.05 threshold, while false splits score 0.055-0.09: a looser threshold is no cure).
_SURROGATE_PIPELINE = [
    {"fit": {"steps": 100, "plateau_rtol": 1e-5, "plateau_window": 5}},
    {"refine": {"grid": 10}},
    {"fit": {"steps": 100, "plateau_rtol": 1e-5, "plateau_window": 5}},
]
_SURROGATE_ROWS = 1000
_SURROGATE_WIDTH = 5


@dataclass(frozen=True)
class DivideCandidate(DerivedCandidate):
    """The divide-and-conquer candidate (``width``/``pipeline`` are its surrogate's)."""

    network_over_run_inputs: ClassVar[bool] = True  # the surrogate, fitted to the run's training rows

    def _run(self, prep, train_idx, test_idx, deadline, should_stop, start) -> Outcome:
        # The parts see only the surrogate: its accuracy decides the split and every part's formula.
        rows = train_idx[:: max(1, len(train_idx) // _SURROGATE_ROWS)]
        surrogate = run_candidate(prep, _plain(self), rows, test_idx, deadline, should_stop)
        if surrogate.state is None:
            return dataclasses.replace(surrogate, candidate=self, seconds=time.monotonic() - start)
        fn = _raw_function(surrogate.state.bundle)
        kind, groups, message = split_of(fn, prep, train_idx)
        if kind is None:
            return Outcome(self, "skipped", time.monotonic() - start, message, steps=surrogate.steps)
        entry = conquer(prep, fn, kind, groups, (train_idx, test_idx), deadline, should_stop)
        if entry is None:
            return Outcome(self, "failed", time.monotonic() - start, f"{message}; no formula for a part")
        state = dataclasses.replace(surrogate.state, formulas={prep.table.target_names[0]: entry})
        return Outcome(self, "completed", time.monotonic() - start, message, state=state, steps=surrogate.steps)


def conquer(prep: Prepared, fn, kind: str, groups: list[list[int]], split, deadline: float, should_stop):
    """Steps 3 and 4 for the surrogate ``fn`` (raw rows -> target): the law's formulas entry,
    or None when some part found no formula."""
    train_idx, test_idx = split
    medians = np.median(prep.x_all[train_idx], axis=0)
    with torch.no_grad():
        centre = float(fn(torch.as_tensor(medians[None, :]))[0])
    children = []
    for k, group in enumerate(groups):
        share = time.monotonic() + (deadline - time.monotonic()) / (len(groups) - k)  # each part its fair share
        part = _solve_part(prep, fn, group, medians, train_idx, test_idx, share, should_stop)
        if part is None:
            return None
        children.append(part)
    target = prep.table.target_names[0]
    scorer = column_scorers(prep, train_idx, test_idx)[target]
    law = _choose_leaves(_Split(kind, centre, children), scorer, deadline)
    front = build_candidates(law, scorer)
    return formula_entry(front, target, scorer.y_scale)


@dataclass
class _Leaf:
    """A part no further split: its formulas, most accurate (on the surrogate) first."""

    options: list[sp.Expr]
    chosen: int = 0


@dataclass
class _Split:
    """A part split again: its children recombined by ``_recombine`` around ``centre`` = f(medians)."""

    kind: str
    centre: float
    children: list


def _expression(node) -> sp.Expr:
    if isinstance(node, _Leaf):
        return node.options[node.chosen]
    return _recombine(node.kind, [_expression(child) for child in node.children], node.centre)


def _leaves(node) -> list[_Leaf]:
    return [node] if isinstance(node, _Leaf) else [leaf for child in node.children for leaf in _leaves(child)]


def _choose_leaves(tree: _Split, scorer, deadline: float = math.inf) -> sp.Expr:
    """Each part's formula chosen in the whole law, on the real rows: the parts saw the surrogate,
    whose wiggles a sine imitates better than the line the data hold (0.0987·m inside a sin).
    Leaf by leaf, every option of the part with the others fixed; the whole formula refitted on the
    training rows; an option replaces the current one when its held-out RMSE is clearly lower, or
    about as low and the option simpler (``_CLEARLY_BETTER``); no more options once ``deadline``
    (monotonic) has passed. Returns the refitted law."""

    def refitted() -> tuple[sp.Expr, float]:
        expr = scorer.refit(_expression(tree), steps=100)
        return expr, scorer.rmse(expr)

    best, best_rmse = refitted()
    for leaf in _leaves(tree):
        current = leaf.chosen
        for k in range(len(leaf.options)):
            if k == current or time.monotonic() > deadline:
                continue
            leaf.chosen = k
            expr, rmse = refitted()
            simpler = complexity(leaf.options[k]) < complexity(leaf.options[current])
            if rmse * _CLEARLY_BETTER < best_rmse or (simpler and rmse <= best_rmse * _CLEARLY_BETTER):
                best, best_rmse, current = expr, rmse, k
        leaf.chosen = current
    return best


def divide_candidates(prep: Prepared) -> list[DivideCandidate]:
    """The divide candidate when ``structure`` is auto (the default of the search): one target, at least two inputs,
    no auxiliary features, prior, modules or fixed width (the parts are sub-tables of the data's
    own columns, fitted by the plan's own networks)."""
    cfg, table = prep.cfg, prep.table
    if cfg.search.candidates is not None and NAME not in cfg.search.candidates:
        return []
    if not cfg.splits_structure or len(table.target_names) != 1 or table.X.shape[1] < 2:
        return []
    if cfg.auxiliary or cfg.prior.active or cfg.modules or cfg.model.width is not None:
        return []
    width = [table.X.shape[1], _SURROGATE_WIDTH, 1]
    return [DivideCandidate(NAME, NAME, width, list(_SURROGATE_PIPELINE), cfg.seed, (0,))]


def with_divide(prep: Prepared, candidates: list[Candidate]) -> list[Candidate]:
    """``candidates`` with the divide candidate after the one-layer families (cheap, and exact on
    most laws, which stops the search before it) and before the deeper networks, which a law
    the surrogate can split rarely needs."""
    at = first_deep(candidates)
    return candidates[:at] + divide_candidates(prep) + candidates[at:]


def split_of(fn, prep: Prepared, train_idx, group: list[int] | None = None) -> tuple[str | None, list[list[int]], str]:
    """``(kind, groups of input indices, description)`` of the finer separable partition the
    surrogate shows over the inputs ``group`` (default: all; the others held at their training
    medians), or ``(None, [], reason)`` when it shows none."""
    from kandisc.structure import detect_structure

    group = list(range(prep.x_all.shape[1])) if group is None else list(group)
    medians = np.median(prep.x_all[train_idx], axis=0)
    part = _part_function(fn, group, medians)
    names = [prep.model_inputs[i] for i in group]
    found = detect_structure(part, torch.as_tensor(prep.x_all[train_idx][:, group]), names)
    options = [("additive", found.additive, found.additive_score)]
    with torch.no_grad():
        centre = abs(float(fn(torch.as_tensor(medians[None, :]))[0]))
    # The parts of a product are divided by f(medians): a sign change there would blow them up.
    if centre > 1e-3 * float(np.std(prep.table.Y[train_idx, 0])):
        options.append(("multiplicative", found.multiplicative, found.multiplicative_score))
    kind, local, score = max(options, key=lambda o: len(o[1]))
    if len(local) < 2:
        scores = ", ".join(f"{k} {s:.2g}" for k, _, s in options)
        return None, [], f"not separable (scores {scores}; threshold {found.threshold:g})"
    groups = [[group[i] for i in g] for g in local]
    shown = " | ".join(",".join(prep.model_inputs[i] for i in g) for g in groups)
    return kind, groups, f"{kind}: {shown} (score {score:.2g})"


def _part_function(fn, group: list[int], medians: np.ndarray):
    """``x_G -> fn(x)`` with every input outside ``group`` at its median."""
    fixed = torch.as_tensor(medians)

    def part(x_group: torch.Tensor) -> torch.Tensor:
        full = fixed.to(x_group.dtype).expand(x_group.shape[0], -1).clone()
        full[:, group] = x_group
        return fn(full)

    return part


def _plain(candidate: Candidate) -> Candidate:
    return Candidate(**{f.name: getattr(candidate, f.name) for f in dataclasses.fields(Candidate)})


def _raw_function(bundle):
    """The surrogate as a torch callable on raw rows (B, n) -> (B,) in the target's units."""
    return lambda x: bundle.to_target_units(bundle.model(bundle.to_model_space(x)))[:, 0]


def _solve_part(prep, fn, group, medians, train_idx, test_idx, deadline, should_stop, depth=0):
    """The formulas of ``f(x_G, med)`` over the group's columns (a ``_Leaf``, or a ``_Split`` of
    such; None when a part found none): split again when the
    surrogate shows the part separable (AI Feynman's recursion, up to ``MAX_DEPTH`` levels: the
    sum in m·(u² + v² + w²), the product in q·(E + B·v·sin θ)), else from a search of its own."""
    if len(group) >= 2 and depth < MAX_DEPTH:
        kind, groups, _ = split_of(fn, prep, train_idx, group)
        if kind is not None:
            children = []
            for k, sub in enumerate(groups):
                share = time.monotonic() + (deadline - time.monotonic()) / (len(groups) - k)
                part = _solve_part(prep, fn, sub, medians, train_idx, test_idx, share, should_stop, depth + 1)
                if part is None:
                    break
                children.append(part)
            else:
                with torch.no_grad():
                    centre = float(fn(torch.as_tensor(medians[None, :]))[0])
                return _Split(kind, centre, children)
    x = np.repeat(medians[None, :], prep.x_all.shape[0], axis=0)
    x[:, group] = prep.x_all[:, group]
    with torch.no_grad():
        y = fn(torch.as_tensor(x)).numpy()
    names = [prep.model_inputs[i] for i in group]
    target = prep.table.target_names[0]
    sub = derived_prepared(prep, table_from_arrays(x[:, group], y, names, [target], source=f"part {names}"))
    candidates = plan(sub.cfg, sub.table.Y[train_idx], sub.x_all[train_idx], sub.model_inputs, sub.width)
    if len(group) == 1:
        # One input: the single edge c·f(a·x + b) + d on the raw part and the power laws of the log
        # family; the library's functions join as options (_library_options), and the real rows
        # choose. Deeper networks over one input only imitate the surrogate's wiggles.
        edge = Candidate("edge", "edge", [1, 1], list(DEFAULT_PIPELINE), prep.cfg.seed, (0,))
        candidates = [edge] + [c for c in candidates if c.family in _ONE_INPUT_FAMILIES]
    outcomes = []
    scale = target_scales(sub.table.Y[test_idx], [target])
    for candidate in (c for c in candidates if c.seed == prep.cfg.seed):
        if time.monotonic() > deadline or should_stop():
            break
        outcomes.append(run_candidate(sub, candidate, train_idx, test_idx, deadline, should_stop))
        best = merge(outcomes, [target], scale).best[target]
        if best is not None and best["test_r2"] >= PART_R2:
            break
    options = []
    if outcomes:
        merged = merge(outcomes, [target], scale)
        if merged.best[target] is not None:
            # The part's Pareto front, its best first: _choose_leaves tries the others in the law.
            rows = [merged.best[target]] + [r for r in merged.fronts[target] if r is not merged.best[target]]
            options = [parse_formula(row["sympy"], names) for row in rows[:_LEAF_OPTIONS]]
    if len(group) == 1:
        options += _library_options(x[train_idx, group[0]], y[train_idx], sp.Symbol(names[0]))
    return _Leaf(options) if options else None


def _library_options(x: np.ndarray, y: np.ndarray, symbol: sp.Symbol) -> list[sp.Expr]:
    """The library functions that fit a one-input part best, as ``c·f(a·x + b) + d``: the line a
    rough surrogate bent into a sine is among them, for the real rows to pick."""
    rows = spread_rows(x, _LIBRARY_POINTS)
    # The plainest laws whatever the surrogate shows: its wiggles can put the line below a sine.
    return [expr for _, _, expr in library_curves(x[rows], y[rows], [symbol], _LIBRARY_OPTIONS, _ALWAYS_TRIED)]


def _recombine(kind: str, parts: list[sp.Expr], centre: float) -> sp.Expr:
    m = len(parts)
    if kind == "additive":
        return sp.Add(*parts) - sp.Float((m - 1) * centre, 15)
    return sp.Mul(*parts) * sp.Float(centre, 15) ** (1 - m)
