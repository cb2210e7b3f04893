"""From one verified formula to a short Pareto list of candidates.

Steps: expand (numeric factors pulled out of sums, products and exponentials so equivalent
network constants merge); snap constants (:mod:`kandisc.symbolic.snapping`); refit the remaining
constants jointly (LBFGS on the training rows); then offer simpler variants (constants rounded,
small additive terms dropped, refitted and snapped). Scores and complexity:
:mod:`kandisc.symbolic.scorer`.

Choice of the reported "best": the simplest candidate whose test RMSE is at most
``BEST_FACTOR`` × the lowest test RMSE plus ``1e-9``·std(y) (so round-off differences between
near-exact formulas do not count).
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp

from kandisc.knowledge.formula import evaluate_rows
from kandisc.symbolic.scorer import Candidate, Scorer, complexity
from kandisc.symbolic.snapping import SNAP_TOLERANCE, snap_constants
from kandisc.symbolic.time_limit import time_limited

BEST_FACTOR = 2.0
_MAX_SIMPLIFY_NODES = 300


def expand_constants(expr: sp.Expr) -> sp.Expr:
    """Pull numeric factors out so that equivalent constants of the network merge into one."""
    if complexity(expr) > _MAX_SIMPLIFY_NODES:
        return expr
    expanded = sp.expand(expr, power_exp=True, power_base=False, log=False, multinomial=True, mul=True)
    # log(c·u) = log(c) + log(u) for a positive number c: the scale inside a log is an offset.
    split = expanded.replace(_log_of_scaled, _split_log)
    return sp.expand(split, power_exp=True, power_base=False, log=False, multinomial=True, mul=True)


def _scale_and_rest(node) -> tuple[sp.Expr, sp.Expr]:
    arg = node.args[0]
    return arg.as_independent(*arg.free_symbols, as_Add=False)


def _log_of_scaled(node) -> bool:
    if not isinstance(node, sp.log) or not node.args[0].free_symbols:
        return False
    scale, _ = _scale_and_rest(node)
    return scale != 1 and bool(scale.is_positive)


def _split_log(node) -> sp.Expr:
    scale, rest = _scale_and_rest(node)
    return sp.Float(math.log(float(scale)), 15) + sp.log(rest)


def normalise_power_bases(expr: sp.Expr) -> sp.Expr:
    """Powers of sums rewritten with one term's coefficient pulled out: ``(502·q + 2e-5)^p`` becomes
    ``502^p·(q + 4e-8)^p`` and ``(3.55 - 3.55·u)^-1`` becomes ``3.55^-1·(1 - 1.0·u)^-1``.

    A network scales a sum and its prefactor together (only their ratio is fixed), so the sum's
    own constants are arbitrary until one is 1; then a negligible offset snaps to 0 and the 1 - u
    of physics appears. The divisor: the coefficient of ``c·m + b`` (one symbolic term), else the
    constant term; only a positive one, unless the power is an integer (no complex numbers).
    """

    def divisor(node):
        if not (isinstance(node, sp.Pow) and isinstance(node.base, sp.Add) and node.exp.is_number):
            return None
        offset, rest = node.base.as_independent(*node.base.free_symbols, as_Add=True)
        coeff = rest.as_coeff_Mul()[0] if not isinstance(rest, sp.Add) else None
        if coeff is not None and not coeff.has(sp.Float):
            return None  # already c·m + b with an exact c: normalised (or snapped) before
        for d in (coeff, offset):
            if d is not None and d.is_number and d.has(sp.Float) and (d > 0 or node.exp.is_integer):
                return d
        return None

    def rewritten(node) -> sp.Expr:
        d = divisor(node)
        return d**node.exp * sp.expand(node.base / d) ** node.exp

    return expr.replace(lambda node: divisor(node) is not None, rewritten)


def merge_numeric_factors(expr: sp.Expr) -> sp.Expr:
    """Every product's numeric factors (Floats, π powers, rationals) as one Float, when it holds a Float."""

    def is_mixed(node) -> bool:
        if not isinstance(node, sp.Mul) or not node.free_symbols:
            return False
        number, _ = node.as_independent(*node.free_symbols, as_Add=False)
        return number.has(sp.Float) and number != 1

    def merged(node) -> sp.Expr:
        number, rest = node.as_independent(*node.free_symbols, as_Add=False)
        return sp.Float(float(number), 15) * rest

    return expr.replace(is_mixed, merged)


NEGLIGIBLE = 1e-6  # a term this small (relative to its sum, on every training row) is fit noise


def drop_negligible_terms(expr: sp.Expr, scorer: Scorer) -> sp.Expr:
    """Remove the terms of every sum that never reach ``NEGLIGIBLE`` of the sum's size on the
    training rows (what an edge pruning left at 1e-8 contributes), when the test RMSE allows it.

    Fewer constants make snapping faster and its choices cleaner; the check keeps the formula's
    accuracy within the snapping tolerance.
    """
    if complexity(expr) > _MAX_SIMPLIFY_NODES:
        return expr

    def size(node) -> float:
        with np.errstate(all="ignore"):
            values = evaluate_rows(node, scorer.names, scorer.x_train)
        return float(np.max(np.abs(values))) if np.all(np.isfinite(values)) else math.inf

    def small(node) -> bool:
        if not isinstance(node, sp.Add) or len(node.args) < 2:
            return False
        whole = size(node)
        return any(size(term) < NEGLIGIBLE * whole for term in node.args)

    def pruned(node) -> sp.Expr:
        whole = size(node)
        return sp.Add(*[term for term in node.args if size(term) >= NEGLIGIBLE * whole])

    trimmed = expr.replace(small, pruned)
    limit = scorer.rmse(expr) * SNAP_TOLERANCE + 1e-6 * scorer.y_scale
    return trimmed if trimmed != expr and scorer.rmse(trimmed) <= limit else expr


def _tidy_number(text: str) -> sp.Expr:
    """The number ``text`` as a sympy number: an Integer when integral, else a 15-digit Float.

    15 digits print without float noise (0.37, not 0.36999999999999999) yet keep arithmetic exact
    enough; fewer-digit sympy Floats would compute with that coarse binary precision.
    """
    value = float(text)
    if value == int(value) and abs(value) < 1e15:
        return sp.Integer(int(value))
    return sp.Float(text, 15)


def round_floats(expr: sp.Expr, digits: int) -> sp.Expr:
    """Round every Float to ``digits`` decimals (integral results become Integers)."""
    return expr.xreplace(
        {f: _tidy_number(f"{round(float(f), digits):.{digits}f}".rstrip("0").rstrip(".")) for f in expr.atoms(sp.Float)}
    )


def round_significant(expr: sp.Expr, digits: int = 12) -> sp.Expr:
    """Round every Float to ``digits`` significant digits, for display of full-precision formulas."""
    return expr.xreplace({f: _tidy_number(f"{float(f):.{digits}g}") for f in expr.atoms(sp.Float)})


def _drop_small_terms(expr: sp.Expr, scorer: Scorer, limit: int) -> list[sp.Expr]:
    """Variants of a sum with its weakest terms removed (one more each time), refitted."""
    if not isinstance(expr, sp.Add) or len(expr.args) < 2:
        return []
    spread = []
    for term in expr.args:
        values = evaluate_rows(term, scorer.names, scorer.x_train)
        spread.append(float(np.std(values)) + (0.0 if term.free_symbols else abs(float(term)) * 1e-9))
    order = np.argsort(spread)
    variants, kept = [], list(expr.args)
    for idx in order[: min(limit, len(order) - 1)]:
        kept = [t for t in kept if t is not expr.args[idx]]
        variants.append(scorer.refit(sp.Add(*kept)))
    return variants


SIMPLIFY_SECONDS = 5.0  # sympy.simplify can run for minutes on a messy formula
SNAPPING_SECONDS = 30.0  # expanding a product of powers of long sums can too (minutes, gigabytes)


def bounded_simplify(expr: sp.Expr, seconds: float = SIMPLIFY_SECONDS) -> sp.Expr:
    """``sympy.simplify`` stopped after ``seconds`` (then the cheap rewrites: powers and fractions)."""
    cheap = min((sp.powsimp(expr), sp.factor_terms(expr), expr), key=complexity)
    return time_limited(lambda: min((sp.simplify(expr), cheap), key=complexity), seconds, lambda: cheap)


def _snapped(expanded: sp.Expr, scorer: Scorer) -> sp.Expr:
    current = snap_constants(drop_negligible_terms(normalise_power_bases(expanded), scorer), scorer)
    # Snapping can expose new structure (log(c·u) once log(c·u + b) lost its b): expand and snap again.
    current = snap_constants(expand_constants(current), scorer)
    # Snaps made one at a time can leave a product of numbers (0.00806·π² for 1/(4π)): merge
    # each term's numeric factors into one constant and snap that.
    current = snap_constants(merge_numeric_factors(normalise_power_bases(current)), scorer)
    if complexity(current) <= _MAX_SIMPLIFY_NODES:
        simplified = bounded_simplify(current)
        # Keep sympy's rewrite only when it is simpler (it likes to fold offsets back into logs).
        simpler = complexity(simplified) < complexity(current)
        if simpler and scorer.rmse(simplified) <= scorer.rmse(current) * SNAP_TOLERANCE + 1e-9 * scorer.y_scale:
            current = simplified
    return current


def build_candidates(expr: sp.Expr, scorer: Scorer, snap: bool = True, max_candidates: int = 8) -> list[Candidate]:
    """Candidates on the Pareto front (complexity vs test RMSE), the best one flagged."""
    pool = [scorer.candidate(round_significant(expr), "model")]
    expanded = time_limited(lambda: expand_constants(expr), SIMPLIFY_SECONDS, lambda: expr)
    pool.append(scorer.candidate(round_significant(expanded), "expanded"))
    current = expanded
    if snap:
        current = time_limited(lambda: _snapped(expanded, scorer), SNAPPING_SECONDS, lambda: expanded)
        pool.append(scorer.candidate(round_significant(current), "snapped"))
    for digits in (6, 4, 3, 2):
        pool.append(scorer.candidate(round_floats(current, digits), f"rounded {digits}"))
    for k, variant in enumerate(_drop_small_terms(current, scorer, max_candidates)):
        pool.append(scorer.candidate(round_floats(variant, 4), f"dropped {k + 1} term(s)"))
        if snap:  # the shorter sum's constants move in the refit: 0.9993·a·b once noise terms are gone
            snapped = time_limited(lambda v=variant: snap_constants(v, scorer), SIMPLIFY_SECONDS, lambda: None)
            if snapped is not None:
                pool.append(scorer.candidate(round_significant(snapped), f"dropped {k + 1} term(s), snapped"))
    front = pareto_front(pool)[:max_candidates]
    pick_best(front, scorer.y_scale)
    return front


def pareto_front(pool: list[Candidate]) -> list[Candidate]:
    """Non-dominated candidates sorted by complexity (lower RMSE wins ties)."""
    front: list[Candidate] = []
    for cand in sorted(pool, key=lambda c: (c.complexity, c.test_rmse)):
        if not math.isfinite(cand.test_rmse):
            continue
        if not front or cand.test_rmse < front[-1].test_rmse:
            front.append(cand)
    return front


def pick_best(front: list[Candidate], y_scale: float) -> Candidate | None:
    if not front:
        return None
    limit = BEST_FACTOR * min(c.test_rmse for c in front) + 1e-9 * y_scale
    best = next(c for c in front if c.test_rmse <= limit)
    best.is_best = True
    return best
