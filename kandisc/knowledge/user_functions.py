"""Functions users add to the library as a formula of ``x`` (``functions:`` in the config).

``functions: {sinc: {formula: "sin(x)/x", complexity: 3}}`` makes ``sinc`` a library function
like the built-ins: a symbolic stage may list it in ``library``, formulas (priors, auxiliary
features) may call it, and edge fitting, the model and formula assembly use it. Its formula is
read by the safe parser over the library's functions; a formula calling ``sinc(u)`` becomes
``sin(u)/u``, so reported formulas only use functions every reader knows.

A model whose edges use an added function stores its definition in ``extras["functions"]``
(name -> formula, complexity and the id its edges hold); :func:`restore_functions` registers it
again when the model is loaded and renumbers the edges if the id changed.
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping

import sympy as sp

from kandisc.errors import ConfigError, FormulaError
from kandisc.knowledge.formula import CONSTANTS, parse_formula, to_torch_function
from kandisc.model.functions import (
    BUILTIN_NAMES,
    FUNCTION_IDS,
    FUNCTION_NAMES,
    FUNCTIONS,
    SymbolicFunction,
    register_function,
)

_X = "x"


def _builtin_formula_names() -> set[str]:
    return {n for name in BUILTIN_NAMES for n in FUNCTIONS[name].parse_names}


def check_name(name: object) -> str:
    """``name`` if it can name an added function, else a one-line ConfigError saying why."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
        raise ConfigError(f"function name {name!r} is not a valid name; use letters, digits and _")
    if name in BUILTIN_NAMES or name in _builtin_formula_names():
        raise ConfigError(f"function name '{name}' is a built-in library function; choose another name")
    if name == _X or name in CONSTANTS:
        raise ConfigError(f"function name '{name}' is reserved (the argument x, or a constant); choose another name")
    return name


def parse_definition(name: str, formula: object) -> sp.Expr:
    """The sympy expression of an added function's formula of ``x``; one-line errors."""
    check_name(name)
    if not isinstance(formula, str):
        raise FormulaError(f"function '{name}': the formula must be text such as 'sin(x)/x', got {formula!r}")
    try:
        expr = parse_formula(formula, [_X])
    except FormulaError as err:
        raise FormulaError(f"function '{name}': {err}") from None
    if sp.Symbol(_X) not in expr.free_symbols:
        raise FormulaError(f"function '{name}': formula {formula.strip()!r} does not depend on x")
    return expr


def function_from_formula(name: str, formula: str, complexity: float) -> SymbolicFunction:
    """A library record for ``name(x) = formula``, evaluated in torch and built in sympy."""
    expr = parse_definition(name, formula)
    evaluate = to_torch_function(expr, [_X])
    x = sp.Symbol(_X)

    def torch_fn(t):
        out = evaluate({_X: t})
        return out.clone() if out is t else out  # callers may change the result in place

    return SymbolicFunction(
        name,
        float(complexity),
        torch_fn,
        lambda arg: expr.xreplace({x: arg}),
        parse_names=(name,),
        formula=formula.strip(),
    )


def register_definitions(definitions: Mapping[str, object]) -> list[str]:
    """Register ``name -> {formula, complexity}`` (mappings or config objects); returns the names."""
    for name, entry in definitions.items():
        get = entry.get if isinstance(entry, Mapping) else lambda key, e=entry: getattr(e, key)
        register_function(function_from_formula(name, get("formula"), get("complexity")))
    return list(definitions)


def used_definitions(model) -> dict[str, dict]:
    """The added functions ``model``'s symbolic edges use, as ``extras["functions"]`` stores them."""
    ids = set()
    for kan in model.layers:
        ids |= set(kan.sym_fn[kan.sym_mask].tolist())
    names = [FUNCTION_NAMES[i] for i in sorted(ids)]
    return {
        n: {"formula": FUNCTIONS[n].formula, "complexity": FUNCTIONS[n].complexity, "id": FUNCTION_IDS[n]}
        for n in names
        if not FUNCTIONS[n].builtin
    }


def restore_functions(bundle) -> None:
    """Register the added functions a loaded model uses and point its edges at their ids."""
    saved = bundle.extras.get("functions") or {}
    renumber = {}
    for name, entry in saved.items():
        new_id = register_function(function_from_formula(name, entry["formula"], entry["complexity"]))
        if int(entry["id"]) != new_id:
            renumber[int(entry["id"])] = new_id
    if not renumber:
        return
    import torch

    with torch.no_grad():
        for kan in bundle.model.layers:
            old = kan.sym_fn.clone()
            for before, after in renumber.items():
                kan.sym_fn[old == before] = after
            kan.invalidate()
