"""The search's dimensionless candidates (``units:`` given) and the dimensional check of every formula.

With units for every input and target, any consistent law is ``y = P(x)·g(π1, ..., πk)``
(:mod:`kandisc.knowledge.buckingham`): ``P`` a monomial with the target's units, the ``πj`` the
dimensionless groups. The search then also solves the smaller problem ``y/P`` of the groups:

- ``units-<family>``: on the dimensionless table (the groups as inputs, ``y/P`` as the target),
  ``units-additive`` (a sum of one-group functions, ``[k, 1]``) and then the plan's families
  (first seed only);
- ``units-constant``: ``y = c·P``, ``c`` by least squares, snapped like any constant and matched
  to a simple multiple of a power of π; with no group at all (Coulomb's force) this is the only
  law there is, and no network is needed;
- ``units-curve``: with a single group, ``y/P`` is a curve of π, fitted from the rows by every
  library function at once (:mod:`kandisc.search.group_curve`), and with two a curve of their
  product or ratio: no network either.

Their formulas are written back in the columns (``back_substitute``) and rescored on the held-out
rows in the target's units, so they merge into the same Pareto front as every other candidate.
Their networks see the groups, not the columns, so none of them becomes the run's model
(:func:`kandisc.search.subproblem.has_model`). :func:`keep_consistent` holds every candidate's
formulas to the units: a formula that is not dimensionally consistent is dropped and counted.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp

from kandisc.errors import KandiscError
from kandisc.io.config_schema import DEFAULT_PIPELINE
from kandisc.io.data import Table, table_from_arrays
from kandisc.knowledge.buckingham import Analysis, back_substitute, buckingham, dimensionless_problem
from kandisc.knowledge.formula import parse_formula
from kandisc.pipeline.runner import Prepared
from kandisc.pipeline.units_check import drop_inconsistent
from kandisc.search.group_curve import MAX_GROUPS, curve_law
from kandisc.search.plan import Candidate, first_deep, plan
from kandisc.search.subproblem import DerivedCandidate, column_scorers, derived_prepared, formula_entry, formulas_only
from kandisc.search.worker import Outcome, run_candidate
from kandisc.symbolic.scorer import Scorer, complexity
from kandisc.symbolic.simplify import BEST_FACTOR, bounded_simplify, build_candidates, round_significant

PREFIX = "units-"
CONSTANT = "units-constant"
CURVE = "units-curve"
_SIMPLIFY_SECONDS = 2.0  # per formula written back; sympy's simplify has no budget of its own


@dataclass(frozen=True)
class UnitsCandidate(DerivedCandidate):
    """A candidate of the dimensionless problem: ``width``/``pipeline`` are the inner network's."""

    analyses: tuple[Analysis, ...] = ()  # one per target, in the table's target order

    def _run(self, prep, train_idx, test_idx, deadline, should_stop, start) -> Outcome:
        scorers = column_scorers(prep, train_idx, test_idx)
        if self.family in _NO_NETWORK:
            formulas = {}
            for a in self.analyses:
                law = _NO_NETWORK[self.family](a, prep.table, scorers[a.target], train_idx)
                formulas[a.target] = formula_entry(law, a.target, scorers[a.target].y_scale)
            state = formulas_only(formulas)
            return Outcome(self, "completed", time.monotonic() - start, state=state)
        inner = Candidate(**{f.name: getattr(self, f.name) for f in dataclasses.fields(Candidate)})
        outcome = run_candidate(_sub_prepared(prep, self.analyses), inner, train_idx, test_idx, deadline, should_stop)
        if outcome.state is not None:
            for a in self.analyses:
                entry = outcome.state.formulas.get(a.target) or {}
                rows = [_back_in_columns(row, a, scorers[a.target]) for row in entry.get("candidates", [])]
                kept = [r for r in rows if r is not None]
                outcome.state.formulas[a.target] = {**entry, **formula_entry(kept, a.target, scorers[a.target].y_scale)}
        return dataclasses.replace(outcome, candidate=self)


def analyse(prep: Prepared, train_idx) -> tuple[tuple[Analysis, ...], str]:
    """The Buckingham analysis of every target, or ``((), reason)`` when there is none to use."""
    cfg, table = prep.cfg, prep.table
    if not cfg.units:
        return (), "no units"
    if cfg.prior.active:
        return (), "a prior fixes the network"
    try:
        analyses = tuple(buckingham(cfg.units, table.input_names, t) for t in table.target_names)
        analyses = tuple(_oriented(a, table, train_idx) for a in analyses)
    except KandiscError as err:
        return (), str(err)
    missing = [a.target for a in analyses if a.prefactor_exponents is None]
    if missing:
        return (), f"no product of the inputs has the units of {', '.join(missing)} (a dimensional constant is missing)"
    return analyses, ""


def units_candidates(prep: Prepared, train_idx) -> tuple[list[UnitsCandidate], dict]:
    """The dimensionless candidates and the search record's ``units`` part (groups, prefactors)."""
    analyses, reason = analyse(prep, train_idx)
    if not analyses:
        return [], ({"skipped": reason} if prep.cfg.units else {})
    record = {"groups": [str(g.expr) for g in analyses[0].groups], "group_names": analyses[0].group_names}
    record["forms"] = {a.target: a.form() for a in analyses}
    out = [UnitsCandidate(CONSTANT, CONSTANT, [], [], prep.cfg.seed, (0,) * len(analyses), analyses=analyses)]
    if not analyses[0].groups:
        return out, record
    if len(analyses[0].groups) <= MAX_GROUPS:
        out.append(UnitsCandidate(CURVE, CURVE, [], [], prep.cfg.seed, (0,) * len(analyses), analyses=analyses))
    try:
        sub = _sub_prepared(prep, analyses)
    except KandiscError as err:  # a group is not finite on some row, or y/P is constant
        return out, {**record, "networks_skipped": str(err)}
    inner = plan(sub.cfg, sub.table.Y[train_idx], sub.x_all[train_idx], sub.model_inputs, sub.width)
    inner = [c for c in inner if c.seed == prep.cfg.seed]  # the groups are few: one seed per family
    # First a sum of one-group functions on y/P itself: 2·(1 - cos(k·d)) and -cos(θ) are one edge each.
    k, n_out = len(analyses[0].groups), len(analyses)
    inner.insert(0, Candidate("additive", "additive", [k, n_out], list(DEFAULT_PIPELINE), prep.cfg.seed, (0,) * n_out))
    for c in inner:
        fields = {f.name: getattr(c, f.name) for f in dataclasses.fields(Candidate)}
        out.append(
            UnitsCandidate(**{**fields, "name": PREFIX + c.name, "family": PREFIX + c.family}, analyses=analyses)
        )
    return out, record


_SLOW_ONE_LAYER = (PREFIX + "log-ratio", PREFIX + "log-ratio-sq")  # four sparsified fits each: 10-25 s


def with_units(prep: Prepared, candidates: list[Candidate], train_idx) -> tuple[list[Candidate], dict]:
    """``candidates`` with the dimensionless ones, and the ``units`` record.

    The quick ones (a constant, a curve, ``[k, 1]`` fits of the groups: seconds each) go first,
    so that a slow network cannot spend the budget before them. The others go after the plan's
    one-layer families and divide, not before: units add knowledge, and must not take from the
    search without them the time it needs (divide finds ``m*(u**2 + v**2 + w**2)/2`` in 40 s,
    which the dimensionless ratio and deep networks had spent)."""
    extra, record = units_candidates(prep, train_idx)
    is_quick = [len(c.width) <= 2 and c.family not in _SLOW_ONE_LAYER for c in extra]
    quick = [c for c, q in zip(extra, is_quick, strict=True) if q]
    rest = [c for c, q in zip(extra, is_quick, strict=True) if not q]
    at = first_deep(candidates)
    return quick + candidates[:at] + rest + candidates[at:], record


# ---------------------------------------------------------------- the dimensionless problem


def dimensionless_table(table: Table, analyses: tuple[Analysis, ...]) -> Table:
    """The groups as inputs and each ``target / prefactor`` as the targets (same rows, same order)."""
    columns = {name: table.X[:, i] for i, name in enumerate(table.input_names)}
    names, values, ys = [], None, []
    for t, analysis in enumerate(analyses):
        names, values, y = dimensionless_problem(analysis, columns, table.Y[:, t])
        ys.append(y)
    return table_from_arrays(values, np.column_stack(ys), names, table.target_names, source=f"{table.path} in groups")


def _oriented(analysis: Analysis, table: Table, train_idx) -> Analysis:
    """Each group turned so that its median on the training rows is at most 1: v/c rather than
    c/v, so that ``1 - v/c`` is one edge, as physics writes it."""
    columns = {name: table.X[train_idx, i] for i, name in enumerate(table.input_names)}
    groups = []
    for group in analysis.groups:
        with np.errstate(all="ignore"):
            values = np.prod([np.abs(columns[n]) ** float(e) for n, e in group.exponents.items()], axis=0)
        flip = len(group.exponents) > 1 and float(np.median(values)) > 1
        groups.append(
            dataclasses.replace(group, exponents={n: -e for n, e in group.exponents.items()}) if flip else group
        )
    return dataclasses.replace(analysis, groups=tuple(groups))


def _sub_prepared(prep: Prepared, analyses: tuple[Analysis, ...]) -> Prepared:
    return derived_prepared(prep, dimensionless_table(prep.table, analyses))


def _constant_law(analysis: Analysis, table: Table, scorer: Scorer, train_idx) -> list:
    """``c·P`` with ``c`` the least-squares constant on the training rows, snapped and varied."""
    columns = {name: table.X[train_idx, i] for i, name in enumerate(table.input_names)}
    _, _, ratio = dimensionless_problem(analysis, columns, scorer.y_train)
    prefactor = scorer.y_train / ratio
    c = float(np.dot(prefactor, scorer.y_train) / np.dot(prefactor, prefactor))
    front = build_candidates(sp.Float(c, 15) * analysis.prefactor, scorer)
    # A least-squares c is exact to rounding, and 0.0795775 (a Float counts two) reads simpler
    # than 1/(4*pi): where the snapped constant is as good, it is the law.
    front += [scorer.candidate(q * analysis.prefactor, "exact constant") for q in _exact_constants(c)]
    limit = BEST_FACTOR * min(f.test_rmse for f in front) + 1e-9 * scorer.y_scale
    exact = [f for f in front if not f.expr.atoms(sp.Float) and f.test_rmse <= limit]
    return exact or front


def _exact_constants(c: float) -> list[sp.Expr]:
    """``p/q·π^k`` (q <= 100, k in -2..2) equal to ``c`` to 1e-9: the 3/(20π) of a Coulomb energy,
    beyond what snapping tries (its denominators stop at 12, to stay safe on noisy constants); a
    least-squares constant of exact data is exact to rounding, so a near-miss is no match."""
    out = []
    for k in (0, 1, -1, 2, -2):
        q = Fraction(c / math.pi**k).limit_denominator(100)
        if q and abs(float(q) * math.pi**k - c) <= 1e-9 * abs(c):
            out.append(sp.Rational(q.numerator, q.denominator) * sp.pi**k)
    return out


def _back_in_columns(row: dict, analysis: Analysis, scorer: Scorer):
    try:
        expr = back_substitute(parse_formula(row["sympy"], analysis.group_names), analysis)
    except KandiscError:
        return None
    expr = round_significant(expr, 15)
    # Written back, 1/(1 - v/c)·ω0 reads c·ω0/(v·(c/v - 1)) until simplified; keep the shorter form.
    simpler = bounded_simplify(expr, _SIMPLIFY_SECONDS)
    if complexity(simpler) < complexity(expr) and scorer.rmse(simpler) <= scorer.rmse(expr) * 1.01 + 1e-12:
        expr = simpler
    return scorer.candidate(expr, row.get("origin", "groups"))


_NO_NETWORK = {CONSTANT: _constant_law, CURVE: curve_law}  # family -> the formulas of (analysis, table, scorer, rows)


# ---------------------------------------------------------------- every formula against the units


def keep_consistent(outcome: Outcome, prep: Prepared) -> int:
    """Drop the outcome's formulas that are not dimensionally consistent; returns how many."""
    if not prep.cfg.units or outcome.state is None:
        return 0
    names, aux = list(prep.model_inputs), outcome.state.aux_exprs
    return drop_inconsistent(outcome.state.formulas, prep.cfg.units, names, aux)
