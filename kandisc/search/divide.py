"""``structure: auto``: divide and conquer (KAN 2.0's trick A, AI Feynman's recursion): split a
separable law into parts, fit each part apart, recombine.

The ``divide`` candidate, in its worker:

1. fits a quick surrogate of the data (a ``[n, 5, 1]`` network, ~300 of the training rows);
2. tests it (:func:`kandisc.structure.detect_structure`) for additive ``f = g1(x_A) + g2(x_B) + ...``
   or multiplicative ``f = g1(x_A)·g2(x_B)···`` separability and takes the finer partition;
3. for each group ``G``, evaluates the surrogate on the data's own rows with every other input
   held at its training median: ``f(x_G, med)`` is ``g_G`` up to an added (multiplied) constant,
   and runs the plan's families on that smaller table (a search of its own, first seed, in order,
   after a single raw edge when the part has one input,
   until one formula reproduces it to ``PART_R2``, each part within its share of the time left);
4. recombines, ``f = Σ f(x_G, med) - (m-1)·f(med)`` or ``Π f(x_G, med) / f(med)**(m-1)``, refits
   every constant jointly on the real training rows (the parts saw the surrogate, not the data)
   and snaps them like any formula, scored on the run's held-out rows.

Its formulas join the search's one Pareto front. A law the surrogate finds inseparable ends the
candidate at step 2 (status ``skipped``, the scores in its message).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from kandisc.io.config_schema import DEFAULT_PIPELINE
from kandisc.io.data import table_from_arrays
from kandisc.knowledge.formula import parse_formula
from kandisc.pipeline.runner import Prepared
from kandisc.search.choose import merge, target_scales
from kandisc.search.plan import Candidate, plan
from kandisc.search.subproblem import DerivedCandidate, column_scorers, derived_prepared, formula_entry, formulas_only
from kandisc.search.worker import Outcome, run_candidate
from kandisc.symbolic.simplify import build_candidates

NAME = "divide"
PART_R2 = 0.9999  # a part's formula this close to the surrogate is about as good as the surrogate
# The split's scores are only as good as the surrogate (a rough one scores a true product at 0.06,
# over the 0.05 threshold, while false splits score 0.055-0.09: a looser threshold is no cure).
_SURROGATE_PIPELINE = [{"fit": {"steps": 120, "plateau_rtol": 1e-5, "plateau_window": 5}}]
_SURROGATE_ROWS = 300
_SURROGATE_WIDTH = 5


@dataclass(frozen=True)
class DivideCandidate(DerivedCandidate):
    """The divide-and-conquer candidate (``width``/``pipeline`` are its surrogate's)."""

    def _run(self, prep, train_idx, test_idx, deadline, should_stop, start) -> Outcome:
        rows = train_idx[:: max(1, len(train_idx) // _SURROGATE_ROWS)]  # a smooth law needs few rows
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
        state = formulas_only({prep.table.target_names[0]: entry})
        return Outcome(self, "completed", time.monotonic() - start, message, state=state, steps=surrogate.steps)


def conquer(prep: Prepared, fn, kind: str, groups: list[list[int]], split, deadline: float, should_stop):
    """Steps 3 and 4 for the surrogate ``fn`` (raw rows -> target): the law's formulas entry,
    or None when some part found no formula."""
    train_idx, test_idx = split
    medians = np.median(prep.x_all[train_idx], axis=0)
    parts = []
    for k, group in enumerate(groups):
        share = time.monotonic() + (deadline - time.monotonic()) / (len(groups) - k)  # each part its fair share
        part = _solve_part(prep, fn, group, medians, train_idx, test_idx, share, should_stop)
        if part is None:
            return None
        parts.append(part)
    with torch.no_grad():
        centre = float(fn(torch.as_tensor(medians[None, :]))[0])
    target = prep.table.target_names[0]
    scorer = column_scorers(prep, train_idx, test_idx)[target]
    front = build_candidates(scorer.refit(_recombine(kind, parts, centre), steps=100), scorer)
    return formula_entry(front, target, scorer.y_scale)


def divide_candidates(prep: Prepared) -> list[DivideCandidate]:
    """The divide candidate when ``structure: auto`` applies: one target, at least two inputs,
    no auxiliary features, prior, modules or fixed width (the parts are sub-tables of the data's
    own columns, fitted by the plan's own networks)."""
    cfg, table = prep.cfg, prep.table
    if cfg.structure != "auto" or len(table.target_names) != 1 or table.X.shape[1] < 2:
        return []
    if cfg.auxiliary or cfg.prior.active or cfg.modules or cfg.model.width is not None:
        return []
    width = [table.X.shape[1], _SURROGATE_WIDTH, 1]
    return [DivideCandidate(NAME, NAME, width, list(_SURROGATE_PIPELINE), cfg.seed, (0,))]


def with_divide(prep: Prepared, candidates: list[Candidate]) -> list[Candidate]:
    """``candidates`` with the divide candidate second: after the first network (which gives the
    run a model early), before the costlier families."""
    return candidates[:1] + divide_candidates(prep) + candidates[1:]


def split_of(fn, prep: Prepared, train_idx) -> tuple[str | None, list[list[int]], str]:
    """``(kind, groups of input indices, description)`` of the finer separable partition the
    surrogate shows, or ``(None, [], reason)`` when it shows none."""
    from kandisc.structure import detect_structure

    x = torch.as_tensor(prep.x_all[train_idx])
    found = detect_structure(fn, x, list(prep.model_inputs))
    names = prep.model_inputs
    options = [("additive", found.additive, found.additive_score)]
    medians = torch.as_tensor(np.median(prep.x_all[train_idx], axis=0)[None, :])
    with torch.no_grad():
        centre = abs(float(fn(medians)[0]))
    # The parts of a product are divided by f(medians): a sign change there would blow them up.
    if centre > 1e-3 * float(np.std(prep.table.Y[train_idx, 0])):
        options.append(("multiplicative", found.multiplicative, found.multiplicative_score))
    kind, groups, score = max(options, key=lambda o: len(o[1]))
    if len(groups) < 2:
        scores = ", ".join(f"{k} {s:.2g}" for k, _, s in options)
        return None, [], f"not separable (scores {scores}; threshold {found.threshold:g})"
    shown = " | ".join(",".join(names[i] for i in g) for g in groups)
    return kind, groups, f"{kind}: {shown} (score {score:.2g})"


def _plain(candidate: Candidate) -> Candidate:
    return Candidate(**{f.name: getattr(candidate, f.name) for f in dataclasses.fields(Candidate)})


def _raw_function(bundle):
    """The surrogate as a torch callable on raw rows (B, n) -> (B,) in the target's units."""
    return lambda x: bundle.to_target_units(bundle.model(bundle.to_model_space(x)))[:, 0]


def _solve_part(prep, fn, group, medians, train_idx, test_idx, deadline, should_stop) -> sp.Expr | None:
    """The best formula of ``f(x_G, med)`` over the group's columns, from a search of its own."""
    x = np.repeat(medians[None, :], prep.x_all.shape[0], axis=0)
    x[:, group] = prep.x_all[:, group]
    with torch.no_grad():
        y = fn(torch.as_tensor(x)).numpy()
    names = [prep.model_inputs[i] for i in group]
    target = prep.table.target_names[0]
    sub = derived_prepared(prep, table_from_arrays(x[:, group], y, names, [target], source=f"part {names}"))
    candidates = plan(sub.cfg, sub.table.Y[train_idx], sub.x_all[train_idx], sub.model_inputs, sub.width)
    if len(group) == 1:  # one input: first the single edge c·f(a·x + b) + d on the raw part
        candidates.insert(0, Candidate("edge", "edge", [1, 1], list(DEFAULT_PIPELINE), prep.cfg.seed, (0,)))
    outcomes = []
    scale = target_scales(sub.table.Y[test_idx], [target])
    for candidate in (c for c in candidates if c.seed == prep.cfg.seed):
        if time.monotonic() > deadline or should_stop():
            break
        outcomes.append(run_candidate(sub, candidate, train_idx, test_idx, deadline, should_stop))
        best = merge(outcomes, [target], scale).best[target]
        if best is not None and best["test_r2"] >= PART_R2:
            break
    best = merge(outcomes, [target], scale).best[target] if outcomes else None
    return None if best is None else parse_formula(best["sympy"], names)


def _recombine(kind: str, parts: list[sp.Expr], centre: float) -> sp.Expr:
    m = len(parts)
    if kind == "additive":
        return sp.Add(*parts) - sp.Float((m - 1) * centre, 15)
    return sp.Mul(*parts) * sp.Float(centre, 15) ** (1 - m)
