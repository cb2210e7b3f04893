"""One Pareto front per target over the formulas of every candidate, and the search's verdict.

Every candidate scores its formulas on the same held-out rows, in the target's units, so their
test RMSEs compare directly. The front and the reported "best" follow the rule of a single fit
(:func:`kandisc.symbolic.simplify.pick_best`: the simplest formula within a factor of the most
accurate). A search is *exact* when every target's best formula matches the held-out rows to
``EXACT_FRACTION`` of their spread: nothing better can be found, so it may stop.

Noisy rows are never matched that closely, so a search on them also stops *at the noise floor*:
when every target's best formula has only snapped constants, reaches ``search.accept_r2`` and is
at least as accurate on the held-out rows as the most accurate network so far. A network has
far more freedom than a formula of a few simple numbers; when the formula does as well, what is
left of the error is noise, which no later candidate can explain either.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from kandisc import metrics
from kandisc.search.worker import Outcome
from kandisc.symbolic.simplify import pareto_front, pick_best

EXACT_FRACTION = 1e-7  # test RMSE / std(y) below which a formula is the law up to rounding


@dataclass
class _Row:
    """A formula row of some candidate, with the attributes the Pareto helpers read."""

    row: dict
    complexity: int
    test_rmse: float
    is_best: bool = False


@dataclass
class Merged:
    """Per target, the merged front (rows carry the candidate they came from) and its best row."""

    fronts: dict[str, list[dict]] = field(default_factory=dict)
    best: dict[str, dict | None] = field(default_factory=dict)

    def winner(self) -> str | None:
        """The candidate that gave the most targets their best formula (ties: the first target's)."""
        names = [row["candidate"] for row in self.best.values() if row]
        return max(names, key=lambda n: (names.count(n), -names.index(n))) if names else None


def merge(outcomes: list[Outcome], targets: list[str], y_scale: dict[str, float]) -> Merged:
    merged = Merged()
    for target in targets:
        pool = []
        for outcome in outcomes:
            if outcome.state is None:
                continue
            entry = outcome.state.formulas.get(target) or {}
            for row in entry.get("candidates", []):
                if math.isfinite(row["test_rmse"]):
                    tagged = {**row, "candidate": outcome.candidate.name, "is_best": False}
                    pool.append(_Row(tagged, row["complexity"], row["test_rmse"]))
        front = pareto_front(pool)
        best = pick_best(front, y_scale[target])
        for item in front:
            item.row["is_best"] = item is best
        merged.fronts[target] = [item.row for item in front]
        merged.best[target] = best.row if best else None
    return merged


def is_exact(merged: Merged, y_scale: dict[str, float]) -> bool:
    """Every target has a formula that reproduces the held-out rows to rounding."""
    return all(
        row is not None and row["test_rmse"] <= EXACT_FRACTION * y_scale[target] for target, row in merged.best.items()
    )


_FLOAT = re.compile(r"\d\.\d|\de-?\d")  # a number the snapping left as a decimal: 12.5687*B*mom/h


def at_noise_floor(merged: Merged, floors: dict[str, float], accept_r2: float) -> bool:
    """Every target's best formula has only snapped constants, reaches ``accept_r2`` and is at
    least as accurate on the held-out rows as the best network (``floors``: target -> its test RMSE)."""
    return all(
        row is not None
        and not _FLOAT.search(row["sympy"])
        and metrics.reaches(row.get("test_r2"), accept_r2)
        and row["test_rmse"] <= floors.get(target, -math.inf)
        for target, row in merged.best.items()
    )


def target_scales(y_test: np.ndarray, targets: list[str]) -> dict[str, float]:
    return {t: float(np.std(y_test[:, i])) or 1.0 for i, t in enumerate(targets)}
