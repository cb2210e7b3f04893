"""Physical units of data columns (``units:`` in the YAML) and the dimensional check of formulas.

A unit string is parsed into a *dimension*: its exponents over the seven SI base dimensions
(m, kg, s, A, K, mol, cd) as exact Fractions. Units are dimensions only: the scale of a unit is
never used, so only coherent SI units are known (no prefixes, no eV or litres). The grammar,
read with Python's ``ast`` (never ``eval``):

- a unit name: a base unit, or a derived one (:data:`DERIVED`: N, J, W, Pa, C, V, ohm, F, T, ...);
- ``1`` for a dimensionless quantity (ratios, angles, counts);
- ``*`` and ``/`` of units, and ``unit ** p`` where ``p`` is a number: ``2``, ``-1``, ``0.5``,
  ``(1/2)``, ``-(3/2)``.

:func:`check_formula` walks a sympy formula: the terms of a sum share units, the arguments of
exp/log/sin/... are dimensionless, a quantity with units is raised only to numeric powers, and the
result has the target's units. Numeric constants are dimensionless. :func:`drop_inconsistent`
applies it to a list of formula rows. The Buckingham-π analysis lives in
:mod:`kandisc.knowledge.buckingham`.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Mapping, Sequence
from fractions import Fraction
from functools import lru_cache

import sympy as sp

from kandisc.errors import ConfigError, FormulaError

BASE = ("m", "kg", "s", "A", "K", "mol", "cd")
Dim = tuple[Fraction, ...]  # exponents over BASE
DIMENSIONLESS: Dim = (Fraction(0),) * len(BASE)

# Coherent SI derived units, each written in base units (parsed with the same grammar).
DERIVED = {
    "Hz": "1/s",
    "N": "kg*m/s**2",
    "Pa": "kg/(m*s**2)",
    "J": "kg*m**2/s**2",
    "W": "kg*m**2/s**3",
    "C": "A*s",
    "V": "kg*m**2/(A*s**3)",
    "F": "A**2*s**4/(kg*m**2)",
    "ohm": "kg*m**2/(A**2*s**3)",
    "S": "A**2*s**3/(kg*m**2)",
    "Wb": "kg*m**2/(A*s**2)",
    "T": "kg/(A*s**2)",
    "H": "kg*m**2/(A**2*s**2)",
    "rad": "1",
    "sr": "1",
    "lm": "cd",
    "lx": "cd/m**2",
    "Bq": "1/s",
    "Gy": "m**2/s**2",
    "Sv": "m**2/s**2",
    "kat": "mol/s",
}
UNIT_NAMES = (*BASE, *DERIVED)
# Functions whose result has the units of their argument; every other function needs (and
# gives) a dimensionless argument, except sign, which accepts any units.
_KEEPS_UNITS = ("Abs",)
_ANY_ARGUMENT = ("sign",)


def _add(a: Dim, b: Dim) -> Dim:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _scale(a: Dim, p: Fraction) -> Dim:
    return tuple(x * p for x in a)


def format_dim(dim: Dim) -> str:
    """A dimension in base units, as the grammar reads it: ``kg*m**2/s**2``, ``1``."""

    def power(name: str, p: Fraction) -> str:
        if p == 1:
            return name
        return f"{name}**{p}" if p.denominator == 1 else f"{name}**({p})"

    up = [power(n, p) for n, p in zip(BASE, dim, strict=True) if p > 0]
    down = [power(n, -p) for n, p in zip(BASE, dim, strict=True) if p < 0]
    text = "*".join(up) or "1"
    if down:
        text += "/" + (down[0] if len(down) == 1 else f"({'*'.join(down)})")
    return text


# ---------------------------------------------------------------- parsing unit strings


def _unknown(name: str, text: str) -> ConfigError:
    close = difflib.get_close_matches(name, UNIT_NAMES, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(
        f"unknown unit {name!r} in {text!r}; {hint}known: {', '.join(UNIT_NAMES)} "
        "(no prefixes: write m, not km; 1 for dimensionless)"
    )


def _exponent(node: ast.AST, text: str) -> Fraction:
    """A numeric exponent: an int or float, with unary minus, and / or * between numbers."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(repr(node.value)) if isinstance(node.value, float) else Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _exponent(node.operand, text)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Mult):
        left, right = _exponent(node.left, text), _exponent(node.right, text)
        if isinstance(node.op, ast.Mult):
            return left * right
        if right == 0:
            raise ConfigError(f"division by zero in the exponent of {text!r}")
        return left / right
    raise ConfigError(
        f"the exponent {ast.unparse(node)!r} in {text!r} is not a number; write e.g. m**2, s**-1 or m**(1/2)"
    )


def _dimension(node: ast.AST, text: str) -> Dim:
    if isinstance(node, ast.Name):
        if node.id in BASE:
            return tuple(Fraction(int(b == node.id)) for b in BASE)
        if node.id in DERIVED:
            return parse_units(DERIVED[node.id])
        raise _unknown(node.id, text)
    if isinstance(node, ast.Constant) and node.value == 1 and not isinstance(node.value, bool):
        return DIMENSIONLESS
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
        left, right = _dimension(node.left, text), _dimension(node.right, text)
        return _add(left, right if isinstance(node.op, ast.Mult) else _scale(right, Fraction(-1)))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return _scale(_dimension(node.left, text), _exponent(node.right, text))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
        raise ConfigError(f"'^' in {text!r} is not a power; write ** (e.g. m/s**2)")
    if isinstance(node, ast.Constant):
        raise ConfigError(
            f"the number {node.value!r} in {text!r} is not a unit; units are dimensions only "
            "(no scale factors), and 1 means dimensionless"
        )
    raise ConfigError(
        f"{ast.unparse(node)!r} in {text!r} is not allowed in units; "
        "allowed: unit names, 1, * / and ** with a numeric exponent (e.g. kg*m**2/s**2)"
    )


@lru_cache(maxsize=512)
def parse_units(text: str) -> Dim:
    """A unit string -> its dimension; ConfigError (one line) for bad syntax or unknown units."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"units must be a non-empty string such as 'm/s' or '1' (got {text!r})")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ConfigError(f"cannot read units {text!r}; write e.g. kg*m/s**2, m**(1/2) or 1") from None
    return _dimension(tree.body, text)


def parse_unit_table(units: Mapping[str, str]) -> dict[str, Dim]:
    """Column -> dimension for a ``units:`` mapping; errors name the column (``units.v: ...``)."""
    dims = {}
    for column, text in units.items():
        try:
            dims[column] = parse_units(str(text))
        except ConfigError as err:
            raise ConfigError(f"units.{column}: {err}") from None
    return dims


def check_columns(units: Mapping[str, str], columns: Sequence[str]) -> None:
    """Every column has units and every ``units:`` key is a column; nothing to check without units."""
    if not units:
        return
    unknown = [name for name in units if name not in columns]
    if unknown:
        close = difflib.get_close_matches(unknown[0], columns, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"units.{unknown[0]}: no such column; {hint}columns: {', '.join(columns)}")
    missing = [name for name in columns if name not in units]
    if missing:
        raise ConfigError(
            f"units: column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            "without units; give every input and target its units (1 for dimensionless)"
        )


# ---------------------------------------------------------------- dimensions of formulas


class _Mismatch(Exception):
    """A formula that is not dimensionally consistent; the message says where."""


def _short(expr: sp.Expr) -> str:
    text = str(expr)
    return text if len(text) <= 60 else text[:57] + "..."


def _number_exponent(exponent: sp.Expr) -> Fraction | None:
    if exponent.is_Rational:
        return Fraction(int(exponent.p), int(exponent.q))
    if exponent.is_Float:
        return Fraction(float(exponent))
    return None


def _power(expr: sp.Pow, dims: Mapping[str, Dim]) -> Dim:
    base, exponent = expr.args
    base_dim, exponent_dim = _dim_of(base, dims), _dim_of(exponent, dims)
    if exponent_dim != DIMENSIONLESS:
        raise _Mismatch(f"the exponent of {_short(expr)} has units {format_dim(exponent_dim)}")
    if base_dim == DIMENSIONLESS:
        return DIMENSIONLESS
    power = _number_exponent(exponent)
    if power is None:
        raise _Mismatch(f"{_short(expr)} raises a quantity with units {format_dim(base_dim)} to a non-numeric power")
    return _scale(base_dim, power)


def _function(expr: sp.Function, dims: Mapping[str, Dim]) -> Dim:
    name = type(expr).__name__
    arg_dims = [_dim_of(a, dims) for a in expr.args]
    if name in _KEEPS_UNITS:
        return arg_dims[0]
    if name in _ANY_ARGUMENT:
        return DIMENSIONLESS
    for arg, dim in zip(expr.args, arg_dims, strict=True):
        if dim != DIMENSIONLESS:
            raise _Mismatch(f"the argument {_short(arg)} of {name} has units {format_dim(dim)}, not 1")
    return DIMENSIONLESS


def _dim_of(expr: sp.Expr, dims: Mapping[str, Dim]) -> Dim:
    """The dimension of a sympy expression; raises _Mismatch where it is inconsistent."""
    if expr.is_number:
        return DIMENSIONLESS
    if isinstance(expr, sp.Symbol):
        if expr.name not in dims:
            raise _Mismatch(f"{expr.name!r} has no units")
        return dims[expr.name]
    if isinstance(expr, sp.Add):
        terms = [(term, _dim_of(term, dims)) for term in expr.args]
        for term, dim in terms[1:]:
            if dim != terms[0][1]:
                raise _Mismatch(
                    f"the terms {_short(terms[0][0])} ({format_dim(terms[0][1])}) and "
                    f"{_short(term)} ({format_dim(dim)}) of a sum have different units"
                )
        return terms[0][1]
    if isinstance(expr, sp.Mul):
        total = DIMENSIONLESS
        for factor in expr.args:
            total = _add(total, _dim_of(factor, dims))
        return total
    if isinstance(expr, sp.Pow):
        return _power(expr, dims)
    if isinstance(expr, sp.Function):
        return _function(expr, dims)
    raise _Mismatch(f"cannot check the units of {_short(expr)} ({type(expr).__name__})")


def check_formula(expr: sp.Expr | str, units: Mapping[str, str], target: str | None = None) -> tuple[bool, str]:
    """Whether ``expr`` is dimensionally consistent; ``(True, "")`` or ``(False, reason)``.

    ``units`` maps columns (and the target) to unit strings; a string ``expr`` is parsed with the
    safe parser over those names. With ``target``, the result must have the target's units.
    Raises ConfigError for a bad unit string and FormulaError for an unreadable formula.
    """
    dims = parse_unit_table(units)
    if isinstance(expr, str):
        expr = _parse(expr, list(units))
    try:
        dim = _dim_of(expr, dims)
    except _Mismatch as err:
        return False, str(err)
    if target is not None:
        if target not in dims:
            raise ConfigError(f"units: the target {target!r} has no units")
        if dim != dims[target]:
            return False, f"the formula has units {format_dim(dim)}, the target {target} has {format_dim(dims[target])}"
    return True, ""


def _parse(text: str, names: Sequence[str]) -> sp.Expr:
    # Imported here: the formula parser loads the function library (torch), which validating the
    # units of a config does not need.
    from kandisc.knowledge.formula import parse_formula

    return parse_formula(text, names)


def drop_inconsistent(
    rows: Sequence[dict], units: Mapping[str, str], target: str, names: Sequence[str]
) -> tuple[list[dict], int]:
    """The formula rows (dicts with a ``"sympy"`` string over ``names``) that are consistent.

    A row without a formula, or whose formula the safe parser cannot read, is kept: there is
    nothing to judge. Returns ``(kept rows in their order, number dropped)``.
    """
    kept = []
    for row in rows:
        text = row.get("sympy")
        try:
            ok = not text or check_formula(_parse(str(text), names), units, target)[0]
        except FormulaError:
            ok = True
        if ok:
            kept.append(row)
    return kept, len(rows) - len(kept)
