"""Every returned formula dimensionally consistent when the config gives ``units:``: the rows of a
run's formulas that are not (``q + d``, ``exp(r)``, a wrong overall unit) are dropped and counted.

The search applies it to every candidate's formulas; an explicit ``pipeline:`` run to its own.
"""

from __future__ import annotations

from kandisc.errors import KandiscError
from kandisc.knowledge.auxiliary import substitute_auxiliary
from kandisc.knowledge.formula import parse_formula
from kandisc.knowledge.units import check_formula


def drop_inconsistent(formulas: dict, units: dict, names: list[str], aux: dict) -> int:
    """Drop, in place, the formula rows of ``formulas`` (target -> {best, candidates}) that are
    not consistent with ``units`` (columns of ``names``, auxiliary features ``aux``); a dropped
    best is replaced by the most accurate row kept. Returns how many rows went."""
    if not units:
        return 0
    dropped = 0
    for target, entry in formulas.items():
        rows = entry.get("candidates", [])
        kept = [row for row in rows if _consistent(row, units, target, names, aux)]
        dropped += len(rows) - len(kept)
        best = entry.get("best")
        if best not in kept:
            best = min(kept, key=lambda r: r["test_rmse"]) if kept else None
            for row in kept:
                row["is_best"] = row is best
        entry["candidates"], entry["best"] = kept, best
    return dropped


def _consistent(row: dict, units, target: str, names: list[str], aux: dict) -> bool:
    text = row.get("sympy")
    if not text:
        return True
    try:
        expr = substitute_auxiliary(parse_formula(str(text), names), aux)
    except KandiscError:
        return True  # nothing the safe parser can read, nothing to judge
    return check_formula(expr, units, target)[0]
