"""The named library of one-variable functions a symbolic edge may compute.

Each entry has a stable name (stored in model files), a torch implementation that stays finite
near singularities, a sympy builder for formulas, a complexity (used to trade accuracy against
simplicity) and the open/closed domain of its argument (so fitting can keep a·x+b inside it).
``FUNCTION_NAMES`` fixes the integer id of each function inside a model's state_dict: append new
names at the end, never reorder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

# Arguments closer than this to a pole are pushed away from it; results stay below ~1e8.
_POLE_EPS = 1e-8
_INF = math.inf


def _away_from_zero(x: torch.Tensor, eps: float) -> torch.Tensor:
    sign = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    return torch.where(x.abs() < eps, sign * eps, x)


def _inv_pow(n: int) -> Callable[[torch.Tensor], torch.Tensor]:
    eps = _POLE_EPS ** (1.0 / n)
    return lambda x: _away_from_zero(x, eps) ** (-n)


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x.clamp(min=1e-16))


def _inv_sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.rsqrt(x.clamp(min=_POLE_EPS**2))


def _pow15(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(min=0.0) ** 1.5


def _log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x.clamp(min=_POLE_EPS))


def _exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x.clamp(max=50.0))


def _tan(x: torch.Tensor) -> torch.Tensor:
    # Keep cos away from zero so tan stays below ~1e8.
    c = torch.cos(x)
    return torch.sin(x) / _away_from_zero(c, _POLE_EPS)


def _unit_clamp(fn: Callable[[torch.Tensor], torch.Tensor], margin: float):
    return lambda x: fn(x.clamp(-1.0 + margin, 1.0 - margin))


@dataclass(frozen=True)
class SymbolicFunction:
    """One library entry. ``domain`` is (low, high, low_open, high_open) for the argument."""

    name: str
    complexity: float
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    sympy_name: str
    domain: tuple[float, float, bool, bool] = (-_INF, _INF, True, True)
    excludes_zero: bool = False

    def sympy(self, arg):
        """The sympy expression of this function applied to ``arg``."""
        import sympy as sp

        builders = {
            "x": lambda a: a,
            "x^2": lambda a: a**2,
            "x^3": lambda a: a**3,
            "x^4": lambda a: a**4,
            "x^5": lambda a: a**5,
            "1/x": lambda a: 1 / a,
            "1/x^2": lambda a: a**-2,
            "1/x^3": lambda a: a**-3,
            "1/x^4": lambda a: a**-4,
            "1/x^5": lambda a: a**-5,
            "sqrt": sp.sqrt,
            "1/sqrt": lambda a: 1 / sp.sqrt(a),
            "x^1.5": lambda a: a ** sp.Rational(3, 2),
            "exp": sp.exp,
            "log": sp.log,
            "sin": sp.sin,
            "cos": sp.cos,
            "tan": sp.tan,
            "tanh": sp.tanh,
            "abs": sp.Abs,
            "sgn": sp.sign,
            "arcsin": sp.asin,
            "arccos": sp.acos,
            "arctan": sp.atan,
            "arctanh": sp.atanh,
            "gaussian": lambda a: sp.exp(-(a**2)),
            "0": lambda a: sp.Integer(0),
            "sinh": sp.sinh,
            "cosh": sp.cosh,
        }
        return builders[self.name](arg)


_UNIT_CLOSED = (-1.0, 1.0, False, False)
_UNIT_OPEN = (-1.0, 1.0, True, True)
_POSITIVE = (0.0, _INF, True, True)
_NON_NEGATIVE = (0.0, _INF, False, True)

_ENTRIES = [
    SymbolicFunction("x", 1, lambda x: x, "x"),
    SymbolicFunction("x^2", 2, lambda x: x**2, "x^2"),
    SymbolicFunction("x^3", 3, lambda x: x**3, "x^3"),
    SymbolicFunction("x^4", 3, lambda x: x**4, "x^4"),
    SymbolicFunction("x^5", 3, lambda x: x**5, "x^5"),
    SymbolicFunction("1/x", 2, _inv_pow(1), "1/x", excludes_zero=True),
    SymbolicFunction("1/x^2", 2, _inv_pow(2), "1/x^2", excludes_zero=True),
    SymbolicFunction("1/x^3", 3, _inv_pow(3), "1/x^3", excludes_zero=True),
    SymbolicFunction("1/x^4", 4, _inv_pow(4), "1/x^4", excludes_zero=True),
    SymbolicFunction("1/x^5", 5, _inv_pow(5), "1/x^5", excludes_zero=True),
    SymbolicFunction("sqrt", 2, _sqrt, "sqrt", _NON_NEGATIVE),
    SymbolicFunction("1/sqrt", 2, _inv_sqrt, "1/sqrt", _POSITIVE),
    SymbolicFunction("x^1.5", 4, _pow15, "x^1.5", _NON_NEGATIVE),
    SymbolicFunction("exp", 2, _exp, "exp"),
    SymbolicFunction("log", 2, _log, "log", _POSITIVE),
    SymbolicFunction("sin", 2, torch.sin, "sin"),
    SymbolicFunction("cos", 2, torch.cos, "cos"),
    SymbolicFunction("tan", 3, _tan, "tan"),
    SymbolicFunction("tanh", 3, torch.tanh, "tanh"),
    SymbolicFunction("abs", 3, torch.abs, "abs"),
    SymbolicFunction("sgn", 3, torch.sign, "sgn"),
    SymbolicFunction("arcsin", 4, _unit_clamp(torch.asin, 0.0), "arcsin", _UNIT_CLOSED),
    SymbolicFunction("arccos", 4, _unit_clamp(torch.acos, 0.0), "arccos", _UNIT_CLOSED),
    SymbolicFunction("arctan", 4, torch.atan, "arctan"),
    SymbolicFunction("arctanh", 4, _unit_clamp(torch.atanh, 1e-8), "arctanh", _UNIT_OPEN),
    SymbolicFunction("gaussian", 3, lambda x: torch.exp(-(x**2)), "gaussian"),
    SymbolicFunction("0", 0, torch.zeros_like, "0"),
    SymbolicFunction("sinh", 3, lambda x: torch.sinh(x.clamp(-50.0, 50.0)), "sinh"),
    SymbolicFunction("cosh", 3, lambda x: torch.cosh(x.clamp(-50.0, 50.0)), "cosh"),
]

FUNCTIONS: dict[str, SymbolicFunction] = {f.name: f for f in _ENTRIES}
FUNCTION_NAMES: list[str] = [f.name for f in _ENTRIES]
FUNCTION_IDS: dict[str, int] = {name: i for i, name in enumerate(FUNCTION_NAMES)}

# The library used by the symbolic stage when the config names none (sinh/cosh exist for the compiler).
DEFAULT_LIBRARY: list[str] = [n for n in FUNCTION_NAMES if n not in ("sinh", "cosh")]


def get_function(name: str) -> SymbolicFunction:
    """Look up a library function by name, with a helpful error for unknown names."""
    from kandisc.errors import ConfigError

    try:
        return FUNCTIONS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, FUNCTION_NAMES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown symbolic function '{name}'{hint}; known: {', '.join(FUNCTION_NAMES)}") from None
