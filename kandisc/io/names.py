"""Column names as formula symbols: the one rule that turns any CSV header into names a formula can use.

A column called ``speed (m/s)``, ``x pos`` or ``2nd`` cannot appear in a formula that is printed and
parsed again, so every such column gets a *symbol*: its name with each run of other characters
replaced by ``_`` (``speed_m_s``, ``x_pos``, ``c_2nd``). Identifiers stay as they are, unicode ones
too (``θ``), as long as Python reads them back unchanged (it folds some characters, ``µ`` into ``μ``,
when it parses). The model, its formulas and summary.json speak in symbols; ``labels`` (symbol ->
column, only for the renamed ones) is kept in the model file so that ``predict`` and ``explain``
read the original columns and the report and LaTeX show the original names.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Mapping, Sequence

_OTHER = re.compile(r"\W+")


def _usable(name: str) -> bool:
    """A name the formula parser reads back as itself."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("__")  # the parser refuses dunder names
        and unicodedata.normalize("NFKC", name) == name
    )


def _sanitise(name: str) -> str:
    text = _OTHER.sub("_", unicodedata.normalize("NFKC", name)).strip("_")
    if not text:
        return "col"
    if text[0].isdigit():
        text = "c_" + text
    if keyword.iskeyword(text):
        text += "_"
    return text if _usable(text) else "col"


def column_symbols(columns: Sequence[str]) -> dict[str, str]:
    """Column -> symbol for every column, unique: usable names are kept, others sanitised.

    A sanitised name that another column already has (``x pos`` next to ``x_pos``) gets ``_2``,
    ``_3``, ... so two columns never share a symbol.
    """
    kept = {c for c in columns if _usable(c)}
    taken = set(kept)
    out = {}
    for column in columns:
        if column in kept:
            out[column] = column
            continue
        base = _sanitise(column)
        symbol, n = base, 1
        while symbol in taken:
            n += 1
            symbol = f"{base}_{n}"
        taken.add(symbol)
        out[column] = symbol
    return out


def renamed(symbols: Mapping[str, str]) -> dict[str, str]:
    """Symbol -> column for the columns whose symbol differs from their name (the mapping to show)."""
    return {s: c for c, s in symbols.items() if s != c}


def mapping_line(labels: Mapping[str, str]) -> str:
    """One readable line of the renamed columns: ``speed_m_s = 'speed (m/s)', x_pos = 'x pos'``."""
    return ", ".join(f"{s} = {c!r}" for s, c in labels.items())


def column_of(symbol: str, labels: Mapping[str, str]) -> str:
    """The CSV column a symbol stands for."""
    return labels.get(symbol, symbol)
