"""What the search's derived problems share: a prepared run on new columns, and formulas scored back.

A derived problem (the dimensionless groups of :mod:`kandisc.search.dimensionless`, the separable
parts of :mod:`kandisc.search.divide`) is a table of its own on the same rows in the same order, so
the run's train/test split applies unchanged. Its formulas come back as formulas of the run's own
columns, scored on the run's held-out rows in the target's units (:func:`column_scorers`), and
stored in the shape of a fit's formulas (:func:`formula_entry`), so they merge with every other
candidate's. A derived candidate carries only formulas, ``RunState(None, None, None, formulas=...)``
(:func:`formulas_only`), unless it has a network over the run's own inputs (divide's surrogate),
which may then be the run's model (:func:`has_model`).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from typing import ClassVar

import sympy as sp

from kandisc.errors import KandiscError
from kandisc.io.data import Table
from kandisc.pipeline.runner import Prepared, prepare_table
from kandisc.pipeline.state import RunState
from kandisc.search.plan import Candidate
from kandisc.search.worker import Outcome
from kandisc.symbolic.scorer import Scorer
from kandisc.symbolic.simplify import pareto_front, pick_best


@dataclass(frozen=True)
class DerivedCandidate(Candidate, abc.ABC):
    """A candidate that solves a problem of its own; subclasses give ``_run`` (same arguments
    as ``run_on``, plus the start time)."""

    network_over_run_inputs: ClassVar[bool] = False  # its outcome's state has a model of the run's inputs

    def run_on(self, prep: Prepared, train_idx, test_idx, deadline: float, should_stop) -> Outcome:
        """The worker's entry (see :func:`kandisc.search.worker.run_candidate`): errors become the
        outcome's status, as for any candidate."""
        start = time.monotonic()
        try:
            return self._run(prep, train_idx, test_idx, deadline, should_stop, start)
        except (KandiscError, ValueError, RuntimeError, ArithmeticError) as err:
            message = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            return Outcome(self, "failed", time.monotonic() - start, message)

    @abc.abstractmethod
    def _run(self, prep, train_idx, test_idx, deadline, should_stop, start) -> Outcome:
        """Solve the derived problem; exceptions of the kinds ``run_on`` names may escape."""


def derived_prepared(prep: Prepared, table: Table) -> Prepared:
    """``table`` prepared with the run's settings, less the knowledge written for the old columns."""
    raw = prep.cfg.model_dump()
    raw.update(units={}, auxiliary={}, modules=[], pipeline=None, structure="off")
    # The user's families, less divide (which a derived problem never runs): a list of divide
    # alone would leave the problem no family at all, so it gets every one.
    families = [name for name in raw["search"]["candidates"] or [] if name != "divide"]
    raw["search"]["candidates"] = families or None
    raw["model"]["width"] = None
    raw["data"]["inputs"] = raw["data"]["targets"] = None
    return prepare_table(table, raw)


def column_scorers(prep: Prepared, train_idx, test_idx) -> dict[str, Scorer]:
    """Per target, a Scorer over the data columns on the run's train and held-out rows."""
    table = prep.table
    symbols = [sp.Symbol(n) for n in table.input_names]
    x_train, x_test = table.X[train_idx], table.X[test_idx]
    return {
        name: Scorer(symbols, x_train, table.Y[train_idx, t], x_test, table.Y[test_idx, t])
        for t, name in enumerate(table.target_names)
    }


def formula_entry(candidates: list, target: str, y_scale: float) -> dict:
    """A target's formulas entry (``best`` and the Pareto ``candidates`` rows) from Candidates."""
    front = pareto_front(candidates)
    for cand in front:
        cand.is_best = False
    pick_best(front, y_scale)
    rows = [cand.to_row(target) for cand in front]
    return {"best": next((r for r in rows if r["is_best"]), None), "candidates": rows}


def formulas_only(formulas: dict) -> RunState:
    """The state of a candidate that has formulas and no model of the run's inputs."""
    return RunState(None, None, None, formulas=formulas)


def has_model(candidate: Candidate) -> bool:
    """Whether the candidate's network is over the run's own inputs (it may be the run's model)."""
    return not isinstance(candidate, DerivedCandidate) or candidate.network_over_run_inputs
