"""The library of one-variable functions a symbolic edge may compute: one record per function.

A :class:`SymbolicFunction` holds every fact about one function that the rest of kandisc needs:

- ``name``: the stable library name stored in model files and config files (``"x^2"``, ``"sin"``);
- ``complexity``: what the symbolic stage trades against accuracy;
- ``torch_fn``: the model's implementation, finite everywhere (clamped near poles and overflow);
- ``sympy``: the builder of its sympy expression (sympy is imported only when it is called, so the
  engine stays cheap to import);
- ``domain`` (low, high, low_open, high_open), ``clamp`` (the argument interval outside which
  ``torch_fn`` clamps), ``zero_margin`` (|argument| below which ``torch_fn`` is pushed away from a
  pole at 0) and ``periodic_poles`` (tan): where edge fitting may put a·x+b;
- ``canonical`` and ``period``: the exact identity that makes a fitted (a, b) canonical;
- ``parse_names`` (names in formula text, the first one shown in messages), ``sympy_head`` (the
  sympy function it is, for the compiler and the tensor evaluator) and ``power`` (the exponent of
  a power function): how the formula parser and the compiler recognise it;
- ``formula``: the defining formula of ``x`` for functions users add (None for built-ins).

``FUNCTION_NAMES`` fixes the integer id of each function inside a model's state_dict: built-ins
are never reordered, and functions added with :func:`register_function` take the next ids.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch

# Arguments closer than this to a pole are pushed away from it; results stay below ~1e8.
_POLE_EPS = 1e-8
_INF = math.inf
# Canonical forms of a fitted (a, b) (see kandisc.symbolic.edge_fit): the identity that allows it.
CANONICAL_FORMS = ("", "unit_a", "sign_a", "zero_b", "positive_a")


def _sp():
    import sympy

    return sympy


def _away_from_zero(x: torch.Tensor, eps: float) -> torch.Tensor:
    sign = torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    return torch.where(x.abs() < eps, sign * eps, x)


def _inv_pow(n: int) -> Callable[[torch.Tensor], torch.Tensor]:
    eps = _POLE_EPS ** (1.0 / n)
    return lambda x: _away_from_zero(x, eps) ** (-n)


def _tan(x: torch.Tensor) -> torch.Tensor:
    # Keep cos away from zero so tan stays below ~1e8.
    c = torch.cos(x)
    return torch.sin(x) / _away_from_zero(c, _POLE_EPS)


@dataclass(frozen=True)
class SymbolicFunction:
    """One library entry; see the module docstring for the meaning of each field."""

    name: str
    complexity: float
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    sympy_fn: Callable[[Any], Any]
    domain: tuple[float, float, bool, bool] = (-_INF, _INF, True, True)
    clamp: tuple[float, float] = (-_INF, _INF)
    zero_margin: float = 0.0
    periodic_poles: bool = False
    canonical: str = ""
    period: float | None = None
    parse_names: tuple[str, ...] = ()
    sympy_head: str | None = None
    power: Fraction | None = None
    formula: str | None = None

    def sympy(self, arg):
        """The sympy expression of this function applied to ``arg``."""
        return self.sympy_fn(arg)

    @property
    def excludes_zero(self) -> bool:
        return self.zero_margin > 0

    @property
    def builtin(self) -> bool:
        return self.formula is None


def _clamped(fn: Callable[[torch.Tensor], torch.Tensor], lo: float, hi: float):
    """``fn`` of the argument clamped to [lo, hi] (infinite ends are not clamped)."""
    low, high = (lo if math.isfinite(lo) else None), (hi if math.isfinite(hi) else None)
    if low is None and high is None:
        return fn
    return lambda x: fn(x.clamp(min=low, max=high))


def _entry(name, complexity, fn, sympy_fn, clamp=(-_INF, _INF), **kw) -> SymbolicFunction:
    return SymbolicFunction(name, complexity, _clamped(fn, *clamp), sympy_fn, clamp=clamp, **kw)


def _head(head: str) -> Callable[[Any], Any]:
    return lambda a: getattr(_sp(), head)(a)


def _named(name, complexity, head, fn, names=None, **kw) -> SymbolicFunction:
    """A function that is one sympy function (``head``), written ``names`` in formulas."""
    names = names or (name,)
    return _entry(name, complexity, fn, _head(head), parse_names=names, sympy_head=head, **kw)


def _power(name, complexity, n: int) -> SymbolicFunction:
    return _entry(name, complexity, lambda x: x**n, lambda a: a**n, power=Fraction(n), canonical="unit_a")


def _inverse_power(name, complexity, n: int) -> SymbolicFunction:
    # The 1% keeps fitted arguments clear of the interval where the torch function is pushed away from 0.
    margin = 1.01e-8 ** (1 / n)
    return _entry(
        name,
        complexity,
        _inv_pow(n),
        (lambda a: 1 / a) if n == 1 else (lambda a: a**-n),
        zero_margin=margin,
        power=Fraction(-n),
        canonical="unit_a",
    )


_UNIT_CLOSED = (-1.0, 1.0, False, False)
_UNIT_OPEN = (-1.0, 1.0, True, True)
_POSITIVE = (0.0, _INF, True, True)
_NON_NEGATIVE = (0.0, _INF, False, True)
_PI = math.pi
_ON_UNIT_INTERVAL = {"clamp": (-1.0, 1.0), "domain": _UNIT_CLOSED, "canonical": "positive_a"}

_BUILTINS = [
    _entry("x", 1, lambda x: x, lambda a: a, power=Fraction(1)),
    _power("x^2", 2, 2),
    _power("x^3", 3, 3),
    _power("x^4", 3, 4),
    _power("x^5", 3, 5),
    _inverse_power("1/x", 2, 1),
    _inverse_power("1/x^2", 2, 2),
    _inverse_power("1/x^3", 3, 3),
    _inverse_power("1/x^4", 4, 4),
    _inverse_power("1/x^5", 5, 5),
    _entry(
        "sqrt",
        2,
        torch.sqrt,
        _head("sqrt"),
        (1e-16, _INF),
        domain=_NON_NEGATIVE,
        canonical="sign_a",
        parse_names=("sqrt",),
        power=Fraction(1, 2),
    ),
    _entry(
        "1/sqrt",
        2,
        torch.rsqrt,
        lambda a: 1 / _sp().sqrt(a),
        (_POLE_EPS**2, _INF),
        domain=_POSITIVE,
        canonical="sign_a",
        power=Fraction(-1, 2),
    ),
    _entry(
        "x^1.5",
        4,
        lambda x: x**1.5,
        lambda a: a ** _sp().Rational(3, 2),
        (0.0, _INF),
        domain=_NON_NEGATIVE,
        canonical="sign_a",
        power=Fraction(3, 2),
    ),
    _named("exp", 2, "exp", torch.exp, clamp=(-_INF, 50.0), canonical="zero_b"),
    _named("log", 2, "log", torch.log, clamp=(_POLE_EPS, _INF), domain=_POSITIVE, canonical="sign_a"),
    _named("sin", 2, "sin", torch.sin, canonical="positive_a", period=_PI),
    _named("cos", 2, "cos", torch.cos, canonical="positive_a", period=_PI),
    _named("tan", 3, "tan", _tan, canonical="positive_a", period=_PI, periodic_poles=True),
    _named("tanh", 3, "tanh", torch.tanh, canonical="positive_a"),
    _named("abs", 3, "Abs", torch.abs, ("abs", "Abs"), canonical="unit_a"),
    _named("sgn", 3, "sign", torch.sign, ("sign", "sgn"), canonical="unit_a"),
    _named("arcsin", 4, "asin", torch.asin, ("arcsin", "asin"), **_ON_UNIT_INTERVAL),
    _named("arccos", 4, "acos", torch.acos, ("arccos", "acos"), **_ON_UNIT_INTERVAL),
    _named("arctan", 4, "atan", torch.atan, ("arctan", "atan"), canonical="positive_a"),
    _named(
        "arctanh",
        4,
        "atanh",
        torch.atanh,
        ("arctanh", "atanh"),
        clamp=(-1.0 + 1e-8, 1.0 - 1e-8),
        domain=_UNIT_OPEN,
        canonical="positive_a",
    ),
    _entry("gaussian", 3, lambda x: torch.exp(-(x**2)), lambda a: _sp().exp(-(a**2)), canonical="positive_a"),
    _entry("0", 0, torch.zeros_like, lambda a: _sp().Integer(0)),
    _named("sinh", 3, "sinh", torch.sinh, clamp=(-50.0, 50.0), canonical="positive_a"),
    _named("cosh", 3, "cosh", torch.cosh, clamp=(-50.0, 50.0), canonical="positive_a"),
]

# The registry. These containers are shared by reference (kandisc.model.layer reads them): they
# are changed in place, never rebound.
FUNCTIONS: dict[str, SymbolicFunction] = {f.name: f for f in _BUILTINS}
FUNCTION_NAMES: list[str] = [f.name for f in _BUILTINS]
FUNCTION_IDS: dict[str, int] = {name: i for i, name in enumerate(FUNCTION_NAMES)}
BUILTIN_NAMES: tuple[str, ...] = tuple(FUNCTION_NAMES)

# The library used by the symbolic stage when the config names none (sinh/cosh exist for the compiler).
DEFAULT_LIBRARY: list[str] = [n for n in FUNCTION_NAMES if n not in ("sinh", "cosh")]


def register_function(fn: SymbolicFunction) -> int:
    """Add ``fn`` to the library (or replace an added function of that name); returns its id.

    Built-in functions cannot be replaced. An added function keeps its id when it is registered
    again, so models that use it stay valid.
    """
    if fn.name in BUILTIN_NAMES:
        raise ValueError(f"'{fn.name}' is a built-in library function and cannot be redefined")
    if fn.canonical not in CANONICAL_FORMS:
        raise ValueError(f"canonical must be one of {CANONICAL_FORMS}, got {fn.canonical!r}")
    taken = {n: f.name for f in FUNCTIONS.values() for n in f.parse_names if f.name != fn.name}
    clash = next((n for n in fn.parse_names if n in taken), None)
    if clash is not None:
        raise ValueError(f"formula name '{clash}' of '{fn.name}' is already used by '{taken[clash]}'")
    if fn.name not in FUNCTION_IDS:
        FUNCTION_IDS[fn.name] = len(FUNCTION_NAMES)
        FUNCTION_NAMES.append(fn.name)
    FUNCTIONS[fn.name] = fn
    return FUNCTION_IDS[fn.name]


def unregister_function(name: str) -> None:
    """Remove an added function (for tests and notebooks); ids of later added functions move down."""
    if name in BUILTIN_NAMES:
        raise ValueError(f"'{name}' is a built-in library function and cannot be removed")
    if name in FUNCTIONS:
        del FUNCTIONS[name]
        FUNCTION_NAMES.remove(name)
        FUNCTION_IDS.clear()
        FUNCTION_IDS.update({n: i for i, n in enumerate(FUNCTION_NAMES)})


def parse_table() -> dict[str, SymbolicFunction]:
    """Formula-text name -> function, for every function that formulas may call."""
    return {n: f for f in FUNCTIONS.values() for n in f.parse_names}


def parse_listing() -> str:
    """The callable functions for messages: ``exp, ..., arcsin (asin), ...``."""
    shown = [f.parse_names for f in FUNCTIONS.values() if f.parse_names]
    return ", ".join(names[0] + (f" ({', '.join(names[1:])})" if len(names) > 1 else "") for names in shown)


def get_function(name: str) -> SymbolicFunction:
    """Look up a library function by name, with a helpful error for unknown names."""
    from kandisc.errors import ConfigError

    try:
        return FUNCTIONS[name]
    except KeyError:
        close = difflib.get_close_matches(name, FUNCTION_NAMES, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"unknown symbolic function '{name}'{hint}; known: {', '.join(FUNCTION_NAMES)}") from None
