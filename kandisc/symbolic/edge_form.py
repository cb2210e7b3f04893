"""The readable text of one fitted edge, ``c·f(a·x + b) + d`` with its numbers: ``1.5*sin(π*x) + 0.2``.

Used where a person looks at single edges (the network figure, the report's table of edge fits):
three significant digits, a slope that is a multiple of π written with π, and the terms a fit
leaves at zero or one dropped, so ``sin(πx)`` reads as ``sin(π*x)`` and not as
``1.0*sin(3.14159*x + 0.0) + 0.0``. An input edge of a model trained on standardised inputs is
shown on the raw input (``raw_params``), so the form reads in the column's own units.
"""

from __future__ import annotations

import math
import re

import sympy as sp

from kandisc.model.functions import FUNCTIONS

_PI_TOL = 2e-3  # relative: 3.1416 is π, 3.10 is not


def _number(value: float, scale: float = 1.0) -> sp.Expr:
    """``value`` to 3 significant digits; 0 when negligible next to ``scale``; integers exact."""
    if abs(value) <= 1e-6 * max(abs(scale), 1e-300):
        return sp.Integer(0)
    rounded = float(f"{value:.3g}")
    return sp.Integer(int(rounded)) if rounded == int(rounded) and abs(rounded) < 1e6 else sp.Float(rounded, 3)


def _slope(a: float) -> sp.Expr:
    k = a / math.pi
    if round(k) != 0 and abs(k - round(k)) <= _PI_TOL * abs(k):
        return sp.Integer(round(k)) * sp.pi
    return _number(a)


def edge_expr(fn: str, params, variable: str = "x") -> sp.Expr:
    """``c·f(a·x + b) + d`` of a symbolic edge as a sympy expression with rounded numbers."""
    a, b, c, d = (float(p) for p in params)
    x = sp.Symbol(variable)
    inner = _slope(a) * x + _number(b, a)
    return _number(c) * FUNCTIONS[fn].sympy(inner) + _number(d, c)


def edge_text(fn: str, params, variable: str = "x") -> str:
    """``edge_expr`` as short text: ``^`` for powers, ``π`` for pi."""
    text = sp.sstr(edge_expr(fn, params, variable))
    return re.sub(r"\bpi\b", "π", text.replace("**", "^"))


def edge_source(layer: int, i: int, inputs) -> str:
    """The name of an edge's input: the model input's for layer 0, ``h[l,i]`` for hidden node i of layer l."""
    return str(inputs[i]) if layer == 0 and i < len(inputs) else f"h[{layer},{i}]"


def raw_params(params, mean: float, std: float) -> tuple[float, float, float, float]:
    """An input edge's ``(a, b, c, d)`` on the raw input x rather than on ``u = (x - mean) / std``."""
    a, b, c, d = (float(p) for p in params)
    return a / std, b - a * mean / std, c, d
