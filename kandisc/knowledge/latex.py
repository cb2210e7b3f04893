"""LaTeX of formulas with the columns' proper names.

Formulas are built on symbols (:mod:`kandisc.io.names`): ``speed_m_s`` stands for the column
``speed (m/s)``. In LaTeX the reader should see the column, so a renamed symbol is typeset as
``\\text{speed (m/s)}``; a Greek letter (a column called ``θ`` or ``θ1``) becomes ``\\theta``
(``\\theta_{1}``) as sympy writes ``theta``, so the result compiles with plain LaTeX too.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

import sympy as sp

from kandisc.knowledge.formula import parse_formula

_ESCAPES = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "_": r"\_",
    "^": r"\^{}",
    "#": r"\#",
    "$": r"\$",
    "%": r"\%",
    "&": r"\&",
    "~": r"\~{}",
}


def _text(label: str) -> str:
    return r"\text{" + "".join(_ESCAPES.get(ch, ch) for ch in label) + "}"


def _greek_spelled(name: str) -> str | None:
    """``θ1`` -> ``theta1`` (sympy typesets that as ``\\theta_{1}``); None if another non-ASCII letter remains."""
    out = []
    for ch in name:
        if ch.isascii():
            out.append(ch)
            continue
        parts = unicodedata.name(ch, "").split()
        if len(parts) != 4 or parts[0] != "GREEK" or parts[1] not in ("SMALL", "CAPITAL") or parts[2] != "LETTER":
            return None
        word = parts[3].lower()
        out.append(word.capitalize() if parts[1] == "CAPITAL" else word)
    return "".join(out)


def symbol_latex(name: str, labels: Mapping[str, str]) -> str:
    """How the symbol ``name`` reads in LaTeX."""
    if name in labels:
        return _text(labels[name])
    if name.isascii():
        return sp.latex(sp.Symbol(name))
    spelled = _greek_spelled(name)
    return sp.latex(sp.Symbol(spelled)) if spelled else _text(name)


def formula_latex(expr: sp.Expr | str, names: list[str], labels: Mapping[str, str]) -> str:
    """LaTeX of a formula (sympy, or its text over ``names``) with every symbol named for people."""
    if isinstance(expr, str):
        expr = parse_formula(expr, names)
    return sp.latex(expr, symbol_names={s: symbol_latex(s.name, labels) for s in expr.free_symbols})


def needs_relabel(names: list[str], labels: Mapping[str, str]) -> bool:
    """Whether sympy's own LaTeX would show a symbol instead of a proper name."""
    return bool(labels) or not all(n.isascii() for n in names)
