"""Auxiliary input features (KAN 2.0 "adding important features"): ``auxiliary:`` in the YAML.

Each auxiliary is ``name: formula`` over the input columns and the auxiliaries defined before it
(in order), e.g. ``beta: v/c`` then ``gamma: 1/sqrt(1-beta**2)``. :func:`compute_auxiliary`
evaluates them on the data (they become extra model inputs, carried by name into attribution,
plots and formulas) and returns each one's expression substituted back into the original columns
(``gamma`` -> ``1/sqrt(1 - v**2/c**2)``), so a found formula can be reported both ways through
:func:`substitute_auxiliary`.

Rows in messages are 1-based data rows: "row 17" is the 17th data row (the CSV header is not
counted). Formulas are parsed by :mod:`kandisc.knowledge.formula` (never ``eval``).
"""

from __future__ import annotations

import keyword
from collections.abc import Mapping

import numpy as np
import sympy as sp

from kandisc.errors import ConfigError, DataError, FormulaError
from kandisc.knowledge.formula import CONSTANTS, formula_variables, parse_formula, to_numpy_function

_SHOWN_VALUES = 6  # at most this many column values in a non-finite-row message


def _check_name(name: object, columns: Mapping[str, np.ndarray], earlier: list[str]) -> None:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ConfigError(
            f"auxiliary name {name!r} is not a valid name; use letters, digits and _ (not starting with a digit)"
        )
    if name.startswith("__"):
        raise ConfigError(f"auxiliary name '{name}' is not allowed (names starting with '__' are reserved)")
    if name in CONSTANTS:
        raise ConfigError(f"auxiliary name '{name}' would hide the constant {name}; choose another name")
    if name in columns:
        raise ConfigError(f"auxiliary name '{name}' clashes with the input column '{name}'; choose another name")
    if name in earlier:
        raise ConfigError(f"auxiliary name '{name}' is defined twice")


def _parse_aux(name: str, text: object, known: list[str], later: list[str]) -> sp.Expr:
    if not isinstance(text, str | int | float) or isinstance(text, bool):
        raise ConfigError(f"auxiliary '{name}' must be a formula string, got {type(text).__name__} {text!r}")
    try:
        return parse_formula(str(text), known)
    except FormulaError as err:
        try:
            mentioned = formula_variables(str(text))
        except FormulaError:
            mentioned = []
        used_later = [n for n in mentioned if n in later]
        hint = f" (auxiliaries are defined in order; '{used_later[0]}' comes later)" if used_later else ""
        raise FormulaError(f"auxiliary '{name}': {err}{hint}") from None


def _format_row(columns: Mapping[str, np.ndarray], names: list[str], row: int) -> str:
    shown = [f"{n}={float(columns[n][row]):.6g}" for n in names[:_SHOWN_VALUES]]
    if len(names) > _SHOWN_VALUES:
        shown.append("...")
    return ", ".join(shown)


def _check_finite(name: str, text: str, values: np.ndarray, expr: sp.Expr, columns: Mapping[str, np.ndarray]) -> None:
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size == 0:
        return
    used = [c for c in columns if sp.Symbol(c) in expr.free_symbols]
    first = int(bad[0])
    raise DataError(
        f"auxiliary '{name}' = {text.strip()} is not finite on row {first + 1} "
        f"({_format_row(columns, used, first)}); {bad.size} row{'s' if bad.size != 1 else ''} in all"
    )


def _as_columns(columns: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
    arrays = {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in columns.items()}
    lengths = {a.shape[0] for a in arrays.values()}
    if len(lengths) > 1:
        raise DataError(f"input columns have different lengths: {sorted(lengths)}")
    return arrays, lengths.pop() if lengths else 0


def compute_auxiliary(
    columns: Mapping[str, np.ndarray], aux: Mapping[str, str]
) -> tuple[list[str], np.ndarray, dict[str, sp.Expr]]:
    """Evaluate the auxiliary features on the data.

    ``columns``: input column name -> values (N,), in order; ``aux``: auxiliary name -> formula,
    in order. Returns ``(names, values (N, n_aux), exprs)`` where ``exprs[name]`` is the auxiliary
    written in the original columns only. Raises ConfigError (bad or clashing name, constant
    auxiliary), FormulaError (bad formula) and DataError (NaN/inf on some row).
    """
    arrays, n_rows = _as_columns(columns)
    names: list[str] = []
    exprs: dict[str, sp.Expr] = {}
    env = dict(arrays)  # columns, then each auxiliary's values as it is computed
    aux_items = list(aux.items())
    for k, (name, text) in enumerate(aux_items):
        _check_name(name, arrays, names)
        later = [str(n) for n, _ in aux_items[k + 1 :]]
        staged = _parse_aux(name, text, list(arrays) + names, later)
        full = substitute_auxiliary(staged, exprs)
        if not full.free_symbols:
            raise ConfigError(
                f"auxiliary '{name}' = {str(text).strip()} does not depend on any input column; "
                "a constant input carries no information"
            )
        used = [n for n in env if sp.Symbol(n) in staged.free_symbols]
        values = to_numpy_function(staged, used)(env)
        _check_finite(name, str(text), values, full, arrays)
        env[name] = values
        names.append(name)
        exprs[name] = full
    matrix = np.column_stack([env[n] for n in names]) if names else np.empty((n_rows, 0))
    return names, matrix, exprs


def substitute_auxiliary(expr: sp.Expr, exprs: Mapping[str, sp.Expr]) -> sp.Expr:
    """Replace auxiliary symbols in ``expr`` by their expressions in the original columns.

    Auxiliaries that refer to other auxiliaries are substituted repeatedly until none is left.
    """
    if not exprs:
        return expr
    by_name = {name: e for name, e in exprs.items()}
    for _ in range(len(by_name) + 1):
        mapping = {s: by_name[s.name] for s in expr.free_symbols if s.name in by_name}
        if not mapping:
            return expr
        expr = expr.xreplace(mapping)
    raise ConfigError(f"auxiliary definitions refer to each other in a cycle: {', '.join(by_name)}")
