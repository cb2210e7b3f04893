"""Constants snapped to simple numbers: 0, integers, small fractions and rational multiples of π
(also times a power of 1000, for columns in other units), each snap kept only when the refitted
formula's test RMSE stays within ``SNAP_TOLERANCE`` of the unsnapped one's.

Order: first each constant to the simplest number within ``NOISE_SIGMAS`` standard errors of it
(what noisy data cannot tell apart), then all at once in tiers of closeness (1e-4, 1e-2, any),
then one at a time, largest first. Exponents snap to rationals only; a prefactor or exponent never
snaps to 0, a term of a sum may.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import sympy as sp

from kandisc.knowledge.formula import evaluate_rows
from kandisc.symbolic.scorer import Scorer

SNAP_TOLERANCE = 1.1  # a snap may raise the test RMSE by at most 10 % (plus a 1e-6·std(y) floor)
SNAP_DISTANCE = 0.02  # rationals and multiples of pi within 0.002 may be tried
# Integers within 5 %: on 1 %-noise data a coefficient and an offset that trade against each other
# come out at 0.977 and 0.0104; the refit RMSE still decides every snap.
INTEGER_DISTANCE = 0.05
NOISE_SIGMAS = 3.0  # a constant within this many standard errors of a simple number may be that number
_NOISE_DENOMINATOR = 4  # the simple numbers a noisy constant snaps to first: n, n/2, n/3, n/4


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
    if abs(value - nearest) <= INTEGER_DISTANCE:
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


def _targets_of(f: sp.Float, exponents: set, in_terms: set, offsets: dict) -> list[sp.Expr]:
    """The snap targets of the constant ``f`` of the current formula (see ``snap_constants``).

    A prefactor or exponent near 0 is a small number, not nothing (7.96e-5·q/r² is the law); a
    term's constant or coefficient in a sum may be 0 (the term goes), and an offset always may
    try 0, however far: 0.097 in (P - 0.097)^0.961 on 1 %-noise data is the exponent's partner."""
    targets = [t for t in _snap_targets(float(f), f in exponents) if t != 0 or f in in_terms]
    if f in offsets and (not targets or targets[0] != 0):
        targets.insert(0, sp.Integer(0))
    return targets


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
    # Exactly integral Floats (the 1.0 scales normalise_power_bases writes) are integers: as free
    # constants they trade with the prefactor, which then has no standard error to speak of.
    expr = expr.xreplace({f: sp.Integer(int(f)) for f in expr.atoms(sp.Float) if float(f) == int(f)})
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
        in_terms, offsets = _term_constants(current), _relative_offsets(current, scorer)
        snaps = {}
        for f, error in errors.items():
            window = NOISE_SIGMAS * error
            # Only numbers rarer than noise: integers and halves to quarters. Multiples of π lie
            # 0.002 apart, decade-scaled numbers closer still (9/(40000π) for 7e-5): within a
            # window of noise one always fits; the tiers below try them, nearest first.
            plain = [t for t in _simple_targets(float(f)) if t.is_Rational and t.q <= _NOISE_DENOMINATOR]
            plain = [t for t in plain if t != 0 or f in in_terms]
            if f in offsets and sp.Integer(0) not in plain:
                plain.insert(0, sp.Integer(0))  # an offset may always go (see _targets_of)
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
            targets = _targets_of(f, exponents, in_terms, offsets)
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
        offsets = _relative_offsets(current, scorer)
        for target in _targets_of(const, _exponents(current), _term_constants(current), offsets):
            trial = scorer.refit(current.xreplace({const: target}))
            if scorer.rmse(trial) <= limit:
                current = trial
                break
        else:
            failed.add(round(float(const), 9))
    return current
