"""One candidate of the search: the staged pipeline on a copy of the prepared run, in memory.

``run_candidate`` returns an ``Outcome`` that pickles (it crosses process boundaries): the trained
bundle, the stage reports, the formulas found and every optimiser step, for the parent process to
write. A candidate that passes the search's deadline, or is told to stop because another one
already found an exact law, ends at its next optimiser step.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from kandisc.errors import KandiscError
from kandisc.io.config import validate_config
from kandisc.knowledge.auxiliary import substitute_auxiliary
from kandisc.knowledge.formula import parse_formula
from kandisc.knowledge.user_functions import register_definitions
from kandisc.pipeline.runner import Prepared, build_bundle, model_space_data, with_auxiliary
from kandisc.pipeline.stages import run_pipeline
from kandisc.pipeline.state import RunState, StageReport, held_out_predictions
from kandisc.search.factorize import MIN_PRODUCT_R2, start_from_factors
from kandisc.search.plan import Candidate
from kandisc.symbolic.scorer import complexity
from kandisc.symbolic.simplify import round_significant
from kandisc.train import StepRecord


class SearchStopped(Exception):
    """Raised inside a candidate's training when its time is up or the search no longer needs it."""


@dataclass
class Outcome:
    candidate: Candidate
    status: str  # completed | skipped (the data rules the candidate out) | failed | timeout | stopped
    seconds: float
    message: str = ""
    state: RunState | None = None
    steps: list[tuple[str, StepRecord, int]] = field(default_factory=list)  # (stage label, record, n_edges)
    # target -> test RMSE in the target's units of the network after its last fit stage (before
    # the symbolic stage made it a formula): how close a flexible fit gets, for the noise-floor stop
    network_rmse: dict[str, float] = field(default_factory=dict)


class _StepRecorder:
    """A progress sink that keeps every step for metrics.csv and enforces the deadline."""

    def __init__(self, prefix: str, deadline: float, should_stop):
        self.prefix, self.deadline, self.should_stop = prefix, deadline, should_stop
        self.steps: list[tuple[str, StepRecord, int]] = []

    def stage_started(self, label: str, total_steps: int) -> None:
        self._check()

    def step(self, label: str, record: StepRecord, global_step: int, n_edges: int) -> None:
        self.steps.append((f"{self.prefix}: {label}", record, n_edges))
        self._check()

    def stage_finished(self, label: str, report: StageReport) -> None:
        pass

    def _check(self) -> None:
        if time.monotonic() > self.deadline:
            raise SearchStopped("timeout")
        if self.should_stop():
            raise SearchStopped("stopped")


def candidate_prepared(prep: Prepared, candidate: Candidate) -> Prepared:
    """The prepared run with the candidate's width, pipeline, seed, features and standardised data."""
    raw = prep.cfg.model_dump()
    raw["seed"] = candidate.seed
    raw["pipeline"] = candidate.pipeline
    raw["structure"] = "off"  # a candidate is one pipeline; splitting the law is the search's
    raw["data"]["standardize"] = True  # scale-free: the penalty and grids see unit-sized data
    raw["model"].update(candidate.model)
    raw["auxiliary"] = {**raw["auxiliary"], **candidate.auxiliary}
    cfg = validate_config(raw, f"search candidate {candidate.name}")
    masks = list(candidate.masks) if candidate.masks is not None else prep.module_masks
    if not candidate.auxiliary:
        return dataclasses.replace(prep, cfg=cfg, width=candidate.width, module_masks=masks)
    x_all, model_inputs, aux_exprs = with_auxiliary(prep.table, dict(cfg.auxiliary))
    return dataclasses.replace(
        prep,
        cfg=cfg,
        width=candidate.width,
        x_all=x_all,
        model_inputs=model_inputs,
        aux_exprs=aux_exprs,
        module_masks=masks,
    )


def _in_columns(state: RunState, features: dict, names: list[str]) -> None:
    """Rewrite the formulas of a candidate's own features in the data columns, so that every
    candidate's formulas compare (the user's auxiliary features stay, as in a single run)."""
    exprs = {n: state.aux_exprs[n] for n in features}
    for entry in state.formulas.values():
        rows = [_row_in_columns(row, exprs, names) for row in entry.get("candidates", [])]
        entry["candidates"] = rows
        entry["best"] = next((row for row in rows if row["is_best"]), None)


def _row_in_columns(row: dict, exprs: dict, names: list[str]) -> dict:
    import sympy as sp

    expr = round_significant(substitute_auxiliary(parse_formula(row["sympy"], names), exprs), 15)
    return {**row, "sympy": str(expr), "latex": sp.latex(expr), "complexity": complexity(expr)}


def run_candidate(
    prep: Prepared,
    candidate: Candidate,
    train_idx: np.ndarray,
    test_idx: np.ndarray,
    deadline: float,
    should_stop=lambda: False,
) -> Outcome:
    """Fit one candidate; errors and timeouts become the outcome's status, never an exception."""
    if hasattr(candidate, "run_on"):  # a problem of its own (search.subproblem.DerivedCandidate)
        return candidate.run_on(prep, train_idx, test_idx, deadline, should_stop)
    start = time.monotonic()
    recorder = _StepRecorder(candidate.name, deadline, should_stop)
    try:
        register_definitions(prep.cfg.functions)  # a worker process starts with the built-ins only
        cand = candidate_prepared(prep, candidate)
        bundle = build_bundle(cand, train_idx, y_log=candidate.y_log)
        dataset = model_space_data(bundle, cand.x_all, cand.table.Y, train_idx, test_idx)
        if candidate.family == "product" and dataset.y_train.shape[1] == 1:
            r2 = start_from_factors(bundle.model, dataset.x_train, dataset.y_train)
            if r2 < MIN_PRODUCT_R2:
                message = f"not a product of one-input factors (the closest one: R² {r2:.3g} < {MIN_PRODUCT_R2:g})"
                return Outcome(candidate, "skipped", time.monotonic() - start, message)
        state = RunState(bundle, dataset, torch.Generator().manual_seed(candidate.seed), recorder)
        state.aux_exprs = dict(cand.aux_exprs)
        state.shape_history.append(bundle.model.spec.display_width())
        network: dict[str, float] = {}
        state.on_stage_end = lambda _, stage: network.update(_network_errors(state) if stage == "fit" else {})
        run_pipeline(state, cand.cfg.pipeline)
        if candidate.auxiliary:
            _in_columns(state, candidate.auxiliary, cand.model_inputs)
    except SearchStopped as stop:
        return Outcome(candidate, str(stop), time.monotonic() - start, steps=recorder.steps)
    except (KandiscError, ValueError, RuntimeError, torch.linalg.LinAlgError) as err:
        message = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        return Outcome(candidate, "failed", time.monotonic() - start, message, steps=recorder.steps)
    state.sink, state.generator, state.on_stage_end = None, None, None  # none crosses a process boundary
    seconds = time.monotonic() - start
    return Outcome(candidate, "completed", seconds, state=state, steps=recorder.steps, network_rmse=network)


def _network_errors(state: RunState) -> dict[str, float]:
    """Test RMSE per target of the state's network, in the target's units."""
    pred, truth = held_out_predictions(state)
    rmse = torch.sqrt(torch.mean((pred - truth) ** 2, dim=0))
    return {name: float(v) for name, v in zip(state.bundle.output_names, rmse, strict=True)}
