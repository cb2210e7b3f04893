"""Buckingham π: the dimensionless groups of the inputs and the target's dimensional prefactor.

With units for every column (:mod:`kandisc.knowledge.units`), any dimensionally consistent law
``y = f(x1, ..., xn)`` can be written ``y = P(x) · g(π1, ..., πk)``: ``P`` is a monomial of the
inputs with the target's units, the ``πj`` are monomials without units, and ``k`` is ``n`` minus
the rank of the dimension matrix. :func:`buckingham` finds both; :func:`dimensionless_problem`
turns a data set into the smaller problem ``y / P`` of the groups, and :func:`back_substitute`
takes a formula in the groups back to the columns.

Which basis of groups: the nullspace of the dimension matrix has many bases; the one chosen is,
greedily (a matroid, so greedy gives the best basis), the groups with the fewest variables first,
then the smallest sum of |exponents|, then the largest |exponent|, then the earliest columns.
Groups with fewest variables are the *circuits* of the matrix, whose integer exponents are unique
up to sign; each is divided by the gcd of its exponents and turned so that its first variable
(in the columns' order) has a positive exponent: m0, v, c gives v/c, not v**2/c**2 or c/v.
A dimensionless column is a group by itself and keeps its own name; other groups are pi_1, pi_2...

Which prefactor: among the monomials with the target's units (a particular solution plus any
integer combination of the groups, starting from each minimal-support solution), the one with
the fewest non-integer exponents, then the smallest sum of squared exponents, then the fewest
variables, then the earliest columns: q1, q2, epsilon, r -> F gives q1*q2/(epsilon*r**2), and
l, g -> T gives sqrt(l/g). None when no monomial of the inputs has the target's units (a
dimensional constant such as c or G is missing from the columns).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import combinations, product

import numpy as np
import sympy as sp

from kandisc.errors import ConfigError, DataError, FormulaError
from kandisc.knowledge.units import BASE, Dim, parse_unit_table

Vector = tuple[Fraction, ...]
# Bounds on the subset enumerations, which grow as 2**columns: beyond them (a few dozen columns)
# the nullspace basis is completed from the reduced row echelon form (the groups stay a basis,
# only less simple) and the prefactor search starts from fewer minimal solutions.
_MAX_SUBSETS = 5_000
_MAX_CIRCUITS = 500
_MAX_STARTS = 24
_FULL_CUBE_GROUPS = 4  # up to this many groups, the prefactor search tries every -1/0/+1 shift


# ---------------------------------------------------------------- exact linear algebra


def _rref(rows: Sequence[Sequence[Fraction]]) -> tuple[list[list[Fraction]], list[int]]:
    """Reduced row echelon form (non-zero rows) and the pivot columns."""
    m = [list(r) for r in rows]
    pivots: list[int] = []
    n_cols = len(m[0]) if m else 0
    for c in range(n_cols):
        r = len(pivots)
        p = next((i for i in range(r, len(m)) if m[i][c] != 0), None)
        if p is None:
            continue
        m[r], m[p] = m[p], m[r]
        m[r] = [x / m[r][c] for x in m[r]]
        for i in range(len(m)):
            if i != r and m[i][c] != 0:
                f = m[i][c]
                m[i] = [a - f * b for a, b in zip(m[i], m[r], strict=True)]
        pivots.append(c)
        if len(pivots) == len(m):
            break
    return m[: len(pivots)], pivots


def _rank(vectors: Sequence[Sequence[Fraction]]) -> int:
    return len(_rref(vectors)[1]) if vectors else 0


def _matrix(columns: Sequence[Dim]) -> list[list[Fraction]]:
    return [[col[d] for col in columns] for d in range(len(BASE))]


def _nullspace(columns: Sequence[Dim]) -> list[list[Fraction]]:
    reduced, pivots = _rref(_matrix(columns))
    basis = []
    for free in (c for c in range(len(columns)) if c not in pivots):
        v = [Fraction(0)] * len(columns)
        v[free] = Fraction(1)
        for row, p in zip(reduced, pivots, strict=True):
            v[p] = -row[free]
        basis.append(v)
    return basis


def _solve(columns: Sequence[Dim], target: Dim) -> list[Fraction] | None:
    """The unique x with columns·x = target, or None (no solution, or not unique)."""
    rows = [r + [t] for r, t in zip(_matrix(columns), target, strict=True)]
    reduced, pivots = _rref(rows)
    if len(columns) in pivots or len(pivots) < len(columns):
        return None
    return [row[-1] for row in reduced]


def _primitive(vector: Sequence[Fraction]) -> Vector:
    """Smallest integer multiple, first non-zero entry positive."""
    scale = math.lcm(*(x.denominator for x in vector))
    ints = [int(x * scale) for x in vector]
    g = math.gcd(*ints)
    sign = 1 if next(x for x in ints if x) > 0 else -1
    return tuple(Fraction(sign * x // g) for x in ints)


# ---------------------------------------------------------------- groups and prefactor


def _padded(subset: Sequence[int], values: Sequence[Fraction], n: int) -> Vector:
    v = [Fraction(0)] * n
    for i, x in zip(subset, values, strict=True):
        v[i] = x
    return tuple(v)


def _group_cost(v: Vector) -> tuple:
    support = tuple(i for i, x in enumerate(v) if x)
    return len(support), sum(abs(x) for x in v), max(abs(x) for x in v), support


def _minimal_supports(n: int, sizes: range, solve: Callable, most: int) -> list[Vector]:
    """The vectors ``solve(subset)`` finds on subsets of the n columns, smallest subsets first.

    Supersets of a subset already found are skipped: for circuits (minimal dependent sets) a
    superset's null vector would be the circuit's, and a solution on a superset is not minimal.
    At most ``_MAX_SUBSETS`` subsets are looked at and ``most`` vectors kept.
    """
    found: list[Vector] = []
    masks: list[int] = []
    for seen, subset in enumerate(s for size in sizes for s in combinations(range(n), size)):
        if seen >= _MAX_SUBSETS or len(found) >= most:
            break
        mask = sum(1 << i for i in subset)
        if any(m & mask == m for m in masks):
            continue
        x = solve(subset)
        if x is not None:
            found.append(_padded(subset, x, n))
            masks.append(mask)
    return found


def _circuits(dims: Sequence[Dim], rank: int) -> list[Vector]:
    """Minimal dependent sets of columns as primitive exponent vectors."""

    def circuit(subset: tuple[int, ...]) -> Vector | None:
        null = _nullspace([dims[i] for i in subset])
        return _primitive(null[0]) if len(null) == 1 and all(null[0]) else None

    return _minimal_supports(len(dims), range(1, rank + 2), circuit, _MAX_CIRCUITS)


def _group_vectors(dims: Sequence[Dim]) -> list[Vector]:
    needed = len(dims) - _rank(_matrix(dims))
    chosen: list[Vector] = []
    fallback = [_primitive(v) for v in _nullspace(dims)]
    for v in sorted(_circuits(dims, len(dims) - needed), key=_group_cost) + fallback:
        if len(chosen) == needed:
            break
        if _rank([*chosen, v]) > len(chosen):
            chosen.append(v)
    return chosen


def _basic_solutions(dims: Sequence[Dim], target: Dim, rank: int) -> list[Vector]:
    """Solutions of dims·x = target whose support is minimal (no solution on a smaller subset)."""

    def basic(subset: tuple[int, ...]) -> list[Fraction] | None:
        x = _solve([dims[i] for i in subset], target)
        return x if x is not None and all(x) else None

    found = _minimal_supports(len(dims), range(0, rank + 1), basic, _MAX_STARTS)
    if not found:  # the enumeration was cut short: any solution will do as a start
        x = _solve_any(dims, target)
        found = [] if x is None else [x]
    return found


def _solve_any(dims: Sequence[Dim], target: Dim) -> Vector | None:
    rows = [r + [t] for r, t in zip(_matrix(dims), target, strict=True)]
    reduced, pivots = _rref(rows)
    if len(dims) in pivots:
        return None
    return _padded(pivots, [row[-1] for row in reduced], len(dims))


def _combine(start: Vector, groups: Sequence[Vector], coefficients: Sequence[int]) -> Vector:
    out = list(start)
    for c, g in zip(coefficients, groups, strict=True):
        if c:
            out = [x + c * y for x, y in zip(out, g, strict=True)]
    return tuple(out)


def _shifts(start: Vector, groups: Sequence[Vector]) -> list[Vector]:
    """``start`` plus integer combinations of the groups around the least-squares shift (only a
    guide to where the small exponents are, so floats do)."""
    if not groups:
        return [start]
    matrix = np.array([[float(x) for x in g] for g in groups]).T
    shift = np.linalg.lstsq(matrix, -np.array([float(x) for x in start]), rcond=None)[0]
    centre = _combine(start, groups, [round(float(t)) for t in shift])
    k = len(groups)
    if k <= _FULL_CUBE_GROUPS:
        offsets = list(product((-1, 0, 1), repeat=k))
    else:
        offsets = [(0,) * k] + [tuple(s if j == i else 0 for j in range(k)) for i in range(k) for s in (-1, 1)]
    return [_combine(centre, groups, off) for off in offsets]


def _prefactor_cost(v: Vector) -> tuple:
    support = tuple(i for i, x in enumerate(v) if x)
    fractional = sum(1 for x in v if x.denominator != 1)
    return fractional, sum(x * x for x in v), len(support), support, tuple(-x for x in v)


def _prefactor_vector(dims: Sequence[Dim], target: Dim, groups: Sequence[Vector]) -> Vector | None:
    starts = _basic_solutions(dims, target, _rank(_matrix(dims)))
    candidates = {v for start in starts for v in _shifts(start, groups)}
    return min(candidates, key=_prefactor_cost) if candidates else None


# ---------------------------------------------------------------- the analysis


def _monomial(exponents: Mapping[str, Fraction]) -> sp.Expr:
    return sp.Mul(*(sp.Symbol(n) ** sp.Rational(e.numerator, e.denominator) for n, e in exponents.items()))


def _exponent_json(e: Fraction) -> int | str:
    return int(e) if e.denominator == 1 else str(e)


@dataclass(frozen=True)
class Group:
    """One dimensionless group: a monomial of the inputs (input -> non-zero exponent)."""

    name: str
    exponents: dict[str, Fraction]

    @property
    def expr(self) -> sp.Expr:
        return _monomial(self.exponents)


@dataclass(frozen=True)
class Analysis:
    """Groups and prefactor of one target: ``target = prefactor · g(groups)``."""

    target: str
    units: dict[str, str]  # the inputs' and the target's unit strings
    inputs: tuple[str, ...]
    groups: tuple[Group, ...]
    prefactor_exponents: dict[str, Fraction] | None
    unused: tuple[str, ...] = field(default=())  # inputs the target cannot depend on

    @property
    def prefactor(self) -> sp.Expr | None:
        return None if self.prefactor_exponents is None else _monomial(self.prefactor_exponents)

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def form(self) -> str:
        """The law's shape, e.g. ``F = q1*q2/(epsilon*r**2) * g(pi_1)``."""
        if self.prefactor is None:
            return f"{self.target}: no product of the inputs has its units {self.units[self.target]}"
        inner = f" * g({', '.join(self.group_names)})" if self.groups else " * constant"
        return f"{self.target} = {self.prefactor}{inner}"

    def to_dict(self) -> dict:
        pre = self.prefactor_exponents
        return {
            "target": self.target,
            "units": dict(self.units),
            "groups": [
                {
                    "name": g.name,
                    "formula": str(g.expr),
                    "exponents": {n: _exponent_json(e) for n, e in g.exponents.items()},
                }
                for g in self.groups
            ],
            "prefactor": None if pre is None else str(self.prefactor),
            "prefactor_exponents": None if pre is None else {n: _exponent_json(e) for n, e in pre.items()},
            "unused": list(self.unused),
            "form": self.form(),
        }


def _name_groups(vectors: Sequence[Vector], inputs: Sequence[str], taken: set[str]) -> list[Group]:
    groups, number = [], 0
    for v in vectors:
        exponents = {inputs[i]: x for i, x in enumerate(v) if x}
        if len(exponents) == 1 and next(iter(exponents.values())) == 1:
            name = next(iter(exponents))
        else:
            number += 1
            name = f"pi_{number}"
            while name in taken:
                name += "_"
        taken.add(name)
        groups.append(Group(name, exponents))
    return groups


def buckingham(units: Mapping[str, str], inputs: Sequence[str], target: str) -> Analysis:
    """The dimensionless groups of ``inputs`` and the prefactor with ``target``'s units.

    ``units`` maps column names to unit strings (it may hold other columns too). Raises
    ConfigError when an input or the target has no units or a unit string is bad.
    """
    missing = [c for c in [*inputs, target] if c not in units]
    if missing:
        raise ConfigError(f"units: no units for {', '.join(map(repr, missing))}; give every input and target units")
    used = {c: str(units[c]) for c in [*inputs, target]}
    dims = parse_unit_table(used)
    columns = [dims[c] for c in inputs]
    vectors = _group_vectors(columns)
    pre = _prefactor_vector(columns, dims[target], vectors)
    in_groups = {i for v in vectors for i, x in enumerate(v) if x}
    unused = () if pre is None else tuple(c for i, c in enumerate(inputs) if i not in in_groups and not pre[i])
    return Analysis(
        target=target,
        units=used,
        inputs=tuple(inputs),
        groups=tuple(_name_groups(vectors, list(inputs), {*inputs, target})),
        prefactor_exponents=None if pre is None else {inputs[i]: x for i, x in enumerate(pre) if x},
        unused=unused,
    )


# ---------------------------------------------------------------- the dimensionless problem


def _values(exponents: Mapping[str, Fraction], columns: Mapping[str, np.ndarray], n: int, what: str) -> np.ndarray:
    out = np.ones(n)
    with np.errstate(all="ignore"):
        for name, e in exponents.items():
            out = out * np.power(np.asarray(columns[name], dtype=np.float64).reshape(-1), float(e))
    bad = np.flatnonzero(~np.isfinite(out) | (out == 0))
    if bad.size:
        row = int(bad[0])
        shown = ", ".join(f"{c}={float(np.asarray(columns[c]).reshape(-1)[row]):.6g}" for c in exponents)
        raise DataError(f"{what} is {out[row]:g} on row {row + 1} ({shown}); {bad.size} row(s) in all")
    return out


def dimensionless_problem(
    analysis: Analysis, x_columns: Mapping[str, np.ndarray], y: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The groups as new inputs and ``y / prefactor`` as the new target.

    ``x_columns``: input name -> values (N,) (at least the analysis' inputs). Returns
    ``(group names, values (N, k), y_scaled (N,))``; ``k`` may be 0 (the law is prefactor times a
    constant). Raises ConfigError without a prefactor and DataError where a group or the
    prefactor is not finite or zero (e.g. a fractional power of a negative value).
    """
    if analysis.prefactor_exponents is None:
        raise ConfigError(
            f"units: no product of the inputs has the units of {analysis.target} "
            f"({analysis.units[analysis.target]}); add the missing dimensional constant as a column"
        )
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = y.shape[0]
    cols = [_values(g.exponents, x_columns, n, f"group {g.name} = {g.expr}") for g in analysis.groups]
    values = np.column_stack(cols) if cols else np.empty((n, 0))
    scale = _values(analysis.prefactor_exponents, x_columns, n, f"prefactor {analysis.prefactor}")
    return analysis.group_names, values, y / scale


def back_substitute(expr: sp.Expr | str, analysis: Analysis) -> sp.Expr:
    """A formula of the groups (``y / prefactor``) as a formula of the original columns.

    A string is read with the safe parser over the group names. Raises FormulaError for a
    symbol that is no group and ConfigError when the analysis has no prefactor.
    """
    from kandisc.knowledge.formula import parse_formula  # loads torch: only when a string comes

    if isinstance(expr, str):
        expr = parse_formula(expr, analysis.group_names)
    foreign = sorted(s.name for s in expr.free_symbols if s.name not in analysis.group_names)
    if foreign:
        raise FormulaError(f"{', '.join(foreign)} is not a group; groups: {', '.join(analysis.group_names) or 'none'}")
    if analysis.prefactor is None:
        raise ConfigError(f"units: {analysis.target} has no prefactor to multiply back")
    mapping = {sp.Symbol(g.name): g.expr for g in analysis.groups}
    return analysis.prefactor * expr.xreplace(mapping)
