"""From one verified formula to a short Pareto list of candidates.

Steps: expand (numeric factors pulled out of sums, products and exponentials so equivalent
network constants merge); snap constants to 0, integers, simple rationals and rational multiples
of π, keeping a snap only when the test RMSE stays within ``SNAP_TOLERANCE``; refit the remaining
constants jointly (LBFGS on the training rows); then offer simpler variants (constants rounded,
small additive terms dropped and refitted). Complexity is the number of nodes of the sympy tree,
a fitted decimal constant counting as two (so 5/12 is simpler than 0.416667).

Choice of the reported "best": the simplest candidate whose test RMSE is at most
``BEST_FACTOR`` × the lowest test RMSE plus ``1e-9``·std(y) (so round-off differences between
near-exact formulas do not count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy as sp
import torch

from kandisc import metrics
from kandisc.knowledge.formula import evaluate_rows
from kandisc.symbolic.time_limit import time_limited

SNAP_TOLERANCE = 1.1  # a snap may raise the test RMSE by at most 10 % (plus a 1e-6·std(y) floor)
BEST_FACTOR = 2.0
SNAP_DISTANCE = 0.02  # rationals and multiples of pi within 0.002 may be tried
# Integers within 5 %: on 1 %-noise data a coefficient and an offset that trade against each other
# come out at 0.977 and 0.0104; the refit RMSE still decides every snap.
INTEGER_DISTANCE = 0.05
NOISE_SIGMAS = 3.0  # a constant within this many standard errors of a simple number may be that number
_MAX_SIMPLIFY_NODES = 300


@dataclass
class Candidate:
    expr: sp.Expr
    complexity: int
    test_rmse: float
    test_r2: float
    origin: str
    is_best: bool = False

    def to_row(self, target: str) -> dict:
        return {
            "target": target,
            "complexity": self.complexity,
            "test_rmse": self.test_rmse,
            "test_r2": self.test_r2,
            "sympy": str(self.expr),
            "latex": sp.latex(self.expr),
            "origin": self.origin,
            "is_best": self.is_best,
        }


def complexity(expr: sp.Expr) -> int:
    """Nodes of the sympy tree, a fitted (Float) constant counting twice and an exact constant
    (3/(20π), π²/2) once however it is written: exact constants are simpler than fitted ones."""
    if isinstance(expr, sp.Float):
        return 2
    if expr.is_number:
        return 2 if expr.has(sp.Float) else 1
    if isinstance(expr, sp.Mul):  # the numeric factors (1/2, π**-1) are one coefficient
        numbers = [a for a in expr.args if a.is_number]
        rest = [a for a in expr.args if not a.is_number]
        coefficient = (2 if any(a.has(sp.Float) for a in numbers) else 1) if numbers else 0
        return 1 + coefficient + sum(complexity(arg) for arg in rest)
    return 1 + sum(complexity(arg) for arg in expr.args)


class Scorer:
    """Test RMSE / R² of expressions on fixed rows; refits constants on training rows."""

    def __init__(self, symbols, x_train, y_train, x_test, y_test):
        self.symbols = symbols
        self.names = [str(s) for s in symbols]
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.y_scale = float(np.std(y_train)) or 1.0

    def rmse(self, expr: sp.Expr, test: bool = True) -> float:
        x, y = (self.x_test, self.y_test) if test else (self.x_train, self.y_train)
        return metrics.rmse(y, evaluate_rows(expr, self.names, x))

    def candidate(self, expr: sp.Expr, origin: str) -> Candidate:
        pred = evaluate_rows(expr, self.names, self.x_test)
        r2 = metrics.r2_score(self.y_test, pred)
        return Candidate(expr, complexity(expr), metrics.rmse(self.y_test, pred), r2, origin)

    def refit_loss(self, evaluate, columns: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What ``refit`` minimises: the mean squared error of ``evaluate(columns)`` (scorers of
        other tasks override it; ``x`` holds the same rows as ``columns``, as one tensor)."""
        return torch.mean((evaluate(columns) - y) ** 2)

    def constant_errors(self, expr: sp.Expr) -> dict[sp.Float, float]:
        """The standard error of each Float constant of ``expr`` refitted to the training rows: the
        noise of the data (and what the formula misses) seen through the loss's curvature,
        σ² = loss, cov = 2σ²/n · H⁻¹ (a pseudo-inverse: a constant the others can stand in for
        is known to no precision at all). Empty when the loss or its curvature is not finite."""
        from kandisc.knowledge.formula import to_torch_function

        floats = sorted(expr.atoms(sp.Float), key=str)
        if not floats or len(floats) > 80:
            return {}
        params = [sp.Symbol(f"_refit_c{k}") for k in range(len(floats))]
        template = expr.xreplace(dict(zip(floats, params, strict=True)))
        fn = to_torch_function(template, [str(s) for s in self.symbols] + [str(p) for p in params])
        x, y = torch.as_tensor(np.array(self.x_train)), torch.as_tensor(np.array(self.y_train))
        columns = {str(s): x[:, k] for k, s in enumerate(self.symbols)}

        def loss(values: torch.Tensor) -> torch.Tensor:
            constants = {str(p): values[k] for k, p in enumerate(params)}
            return self.refit_loss(lambda cols: fn({**cols, **constants}), columns, x, y)

        start = torch.tensor([float(f) for f in floats], dtype=torch.float64)
        hessian = torch.autograd.functional.hessian(loss, start)
        value = float(loss(start))
        if not (math.isfinite(value) and bool(torch.isfinite(hessian).all())):
            return {}
        variance = torch.linalg.pinv(hessian, hermitian=True).diagonal().clamp(min=0.0) * 2 * value / len(y)
        return {f: math.sqrt(float(v)) for f, v in zip(floats, variance, strict=True)}

    def refit(self, expr: sp.Expr, steps: int = 30) -> sp.Expr:
        """Jointly refit every Float constant of ``expr`` on the training rows (LBFGS, autograd)."""
        from kandisc.knowledge.formula import to_torch_function

        floats = sorted(expr.atoms(sp.Float), key=str)
        if not floats or len(floats) > 80:
            return expr
        params = [sp.Symbol(f"_refit_c{k}") for k in range(len(floats))]
        template = expr.xreplace(dict(zip(floats, params, strict=True)))
        names = [str(s) for s in self.symbols] + [str(p) for p in params]
        fn = to_torch_function(template, names)
        x = torch.as_tensor(self.x_train)
        y = torch.as_tensor(self.y_train)
        values = torch.tensor([float(f) for f in floats], dtype=torch.float64, requires_grad=True)
        columns = {str(s): x[:, k] for k, s in enumerate(self.symbols)}

        def loss() -> torch.Tensor:
            constants = {str(p): values[k] for k, p in enumerate(params)}
            return self.refit_loss(lambda cols: fn({**cols, **constants}), columns, x, y)

        with torch.no_grad():
            start_loss = float(loss())
        opt = torch.optim.LBFGS(
            [values],
            lr=1.0,
            max_iter=steps,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-20,
            tolerance_change=1e-24,
        )

        def closure():
            opt.zero_grad()
            value = loss()
            if not torch.isfinite(value):  # e.g. log of a negative argument: make the line search back off
                values.grad = torch.zeros_like(values)
                return torch.tensor(1e300, dtype=torch.float64)
            value.backward()
            return value

        opt.step(closure)
        with torch.no_grad():
            end_loss = float(loss())
        if not (math.isfinite(end_loss) and end_loss <= start_loss):
            return expr
        fitted = values.detach().tolist()
        return template.xreplace({p: sp.Float(v, 15) for p, v in zip(params, fitted, strict=True)})


_PI_POWERS = (1, -1, -2, 2)  # p/q·π, p/(q·π), p/(q·π²), p/q·π²: the 2π, 4π and (2π)² of physics
# Denominators of the 2π, 4π, 8π, 3/(20π) (= 3/5 · 1/(4π)), 1/(16π²) of physics; not 41 or 47,
# which only ever fit noise.
_PI_DENOMINATORS = (*range(1, 13), 15, 16, 18, 20, 24, 30, 32, 36, 40, 48, 60, 64)


def _simple_targets(value: float) -> list[sp.Expr]:
    """Simple numbers near ``value``, nearest first: 0 and integers (within ``INTEGER_DISTANCE``),
    p/q with q <= 12 and |p| <= 100, and (p/q)·π^k for k in ``_PI_POWERS`` with q <= 12 and
    |p| <= 12 (within 0.002)."""
    targets = []
    nearest = round(value)
    if abs(value - nearest) <= INTEGER_DISTANCE * max(1.0, abs(value)):
        targets.append(sp.Integer(nearest))
    frac = Fraction(value).limit_denominator(12)
    if frac.denominator > 1 and abs(frac.numerator) <= 100 and abs(float(frac) - value) <= SNAP_DISTANCE / 10:
        targets.append(sp.Rational(frac.numerator, frac.denominator))
    for power in _PI_POWERS:
        scaled = value / math.pi**power
        tolerance = SNAP_DISTANCE / 10 * min(1.0, abs(value) * 10)
        fracs = {
            Fraction(round(scaled * q), q)
            for q in _PI_DENOMINATORS
            if 0 < abs(round(scaled * q)) <= 12 and abs(round(scaled * q) / q * math.pi**power - value) <= tolerance
        }
        for frac in sorted(fracs, key=lambda f: abs(float(f) - scaled))[:1]:
            targets.append(sp.Rational(frac.numerator, frac.denominator) * sp.pi**power)
    return targets


# SI prefixes: a law in other units keeps its simple constant. Not below milli: a tiny leftover
# constant is noise to drop (snap to 0), not 7/10^9.
_DECADES = (3, -3, 6, 9, 12)


def _snap_targets(value: float, exponent: bool = False) -> list[sp.Expr]:
    """Simple numbers near ``value`` (see ``_simple_targets``), also times a power of 1000 so that
    a column in mm instead of m snaps 1000/(4π) as it snaps 1/(4π); 0 first, then nearest first.

    An ``exponent`` snaps to rationals only: the laws of physics raise to 1, 1/2 or 3/2, never to
    10/π², which a noisy 1.0093 is nearer to than to 1."""
    if exponent:
        return [t for t in _simple_targets(value) if t.is_Rational]
    targets = _simple_targets(value)
    for k in _DECADES:
        mantissa = value / 10.0**k
        if 0.01 <= abs(mantissa) <= 100:
            targets += [t * sp.Integer(10) ** k for t in _simple_targets(mantissa) if t != 0]
    return sorted(targets, key=lambda t: (t != 0, abs(float(t) - value)))


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


_ALL_AT_ONCE_TIERS = (1e-4, 1e-2, math.inf)
_NEGLIGIBLE_OFFSET = 1e-3  # an offset this small beside the rest of its sum may go to 0


def _term_constants(expr: sp.Expr) -> set[sp.Float]:
    """The Floats that are a term of a sum or a term's numeric coefficient."""
    found: set[sp.Float] = set()
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Add):
            for term in node.args:
                if isinstance(term, sp.Float):
                    found.add(term)
                elif isinstance(term, sp.Mul):
                    found.update(a for a in term.args if isinstance(a, sp.Float))
    return found


def _number_complexity(number: sp.Expr) -> tuple[int, int]:
    """Integers before fractions before multiples of π; then by the size of the denominator."""
    if number.is_Integer:
        return (0, 0)
    if number.is_Rational:
        return (1, int(number.q))
    return (2, 0)


def _exponents(expr: sp.Expr) -> set[sp.Float]:
    """The Floats that are the exponent of a power."""
    return {
        node.exp for node in sp.preorder_traversal(expr) if isinstance(node, sp.Pow) and isinstance(node.exp, sp.Float)
    }


def _relative_offsets(expr: sp.Expr, scorer: Scorer) -> dict[sp.Float, float]:
    """Each constant term of a sum with its size relative to the rest of the sum (max over the
    training rows)."""
    sizes: dict[sp.Float, float] = {}
    for node in sp.preorder_traversal(expr):
        if not isinstance(node, sp.Add):
            continue
        for term in node.args:
            if isinstance(term, sp.Float) and node.free_symbols:
                with np.errstate(all="ignore"):
                    rest = evaluate_rows(node - term, scorer.names, scorer.x_train)
                size = float(np.max(np.abs(rest))) if np.all(np.isfinite(rest)) else 0.0
                if size > 0:
                    sizes[term] = min(sizes.get(term, math.inf), abs(float(term)) / size)
    return sizes


def snap_constants(expr: sp.Expr, scorer: Scorer) -> sp.Expr:
    """Snap constants (largest first) to simple numbers, refitting the others after each snap.

    A snap is kept when the refitted test RMSE stays within ``SNAP_TOLERANCE`` of the unsnapped
    (refitted) expression's, so snaps cannot add up to a large loss.
    """
    current = scorer.refit(expr)
    limit = scorer.rmse(current) * SNAP_TOLERANCE + 1e-6 * scorer.y_scale
    # First every constant to its nearest simple number at once: constants that are only right
    # together (an exponent 1.00002 and an offset 6e-8 beside a column of size 1e-3) pass here,
    # where one at a time each snap alone costs too much accuracy.
    # Tiers by closeness: the near-exact snaps (an exponent 1.00004, an offset 7e-5) are tried
    # without the far ones, whose failure would otherwise sink them all.
    # An offset is measured against the rest of its sum: 0.026 beside q of size 1000 is nothing.
    # Before the tiers: every constant to the simplest number within its noise (NOISE_SIGMAS
    # standard errors). On noisy data the nearest number is often a multiple of π (they lie
    # 0.002 apart), and 1.0134 is nearer to 10/π² than to 1.
    errors = scorer.constant_errors(current)
    if errors:
        exponents, in_terms = _exponents(current), _term_constants(current)
        snaps = {}
        for f, error in errors.items():
            window = NOISE_SIGMAS * error
            # Not the decade-scaled numbers (9/(40000π) for 7e-5): below 1e-3 they lie too close.
            plain = [
                t
                for t in _simple_targets(float(f))
                if (t.is_Rational or f not in exponents) and (t != 0 or f in in_terms)
            ]
            targets = [t for t in plain if abs(float(t) - float(f)) <= window]
            if targets:
                snaps[f] = min(targets, key=_number_complexity)
        if snaps:
            trial = scorer.refit(current.xreplace(snaps))
            if scorer.rmse(trial) <= limit:
                current = trial
    for closeness in _ALL_AT_ONCE_TIERS:
        # Of the current constants: an accepted tier's refit has moved every one of them.
        offsets = _relative_offsets(current, scorer)
        in_terms, exponents = _term_constants(current), _exponents(current)
        nearest = {}
        for f in current.atoms(sp.Float):
            value = float(f)
            if offsets.get(f, math.inf) <= min(closeness, _NEGLIGIBLE_OFFSET):
                nearest[f] = sp.Integer(0)
                continue
            # A prefactor or exponent near 0 is a small number, not nothing (7.96e-5·q/r² is the
            # law); a term's constant or coefficient in a sum may be 0 (the term goes).
            targets = [t for t in _snap_targets(value, f in exponents) if t != 0 or f in in_terms]
            if targets and abs(float(targets[0]) - value) <= closeness * max(1.0, abs(value)):
                nearest[f] = targets[0]
        if nearest:
            trial = scorer.refit(current.xreplace(nearest))
            if scorer.rmse(trial) <= limit:
                current = trial
    failed: set[float] = set()
    for _ in range(3 * len(expr.atoms(sp.Float)) + 1):
        pending = [f for f in current.atoms(sp.Float) if round(float(f), 9) not in failed]
        if not pending:
            break
        const = max(pending, key=lambda f: abs(float(f)))
        for target in _snap_targets(float(const), const in _exponents(current)):
            trial = scorer.refit(current.xreplace({const: target}))
            if scorer.rmse(trial) <= limit:
                current = trial
                break
        else:
            failed.add(round(float(const), 9))
    return current


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
