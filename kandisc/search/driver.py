"""The discovery search of one run: plan the candidates, run them, merge their formulas.

``search`` returns the winning candidate's state (its model is the run's model.pt) with the merged
per-target Pareto fronts as its formulas and a record of every candidate in ``state.search``;
every candidate's optimiser steps go to metrics.csv, labelled with the candidate's name.
"""

from __future__ import annotations

import dataclasses
import math
import time

from kandisc import metrics
from kandisc.errors import SearchError
from kandisc.pipeline.state import RunState, StageReport
from kandisc.search.choose import Merged, at_noise_floor, is_exact, merge, target_scales
from kandisc.search.dimensionless import keep_consistent, with_units
from kandisc.search.divide import with_divide
from kandisc.search.forkserver import default_jobs
from kandisc.search.plan import plan
from kandisc.search.pool import run_candidates
from kandisc.search.subproblem import has_model
from kandisc.search.worker import Outcome, candidate_prepared


def _record(outcome: Outcome, accept_r2: float) -> dict:
    best = {}
    if outcome.state is not None:
        for target, entry in outcome.state.formulas.items():
            row = entry.get("best") or {}
            best[target] = {"formula": row.get("sympy"), "test_r2": row.get("test_r2")}
    found = bool(best) and all(metrics.reaches(b["test_r2"], accept_r2) for b in best.values())
    return {
        **outcome.candidate.describe(),
        "status": outcome.status,
        "seconds": round(outcome.seconds, 2),
        "message": outcome.message,
        "best": best,
        "law_found": found,
    }


def search(prep, split_idx, sink, best_so_far: list | None = None) -> tuple[RunState, object]:
    """Run the search for the prepared run on the fixed train/test split; see the module docstring.

    ``best_so_far`` receives the state of the best finished candidate as the search goes, so an
    interrupted run can still save a model. Returns the state and the winner's prepared run (its
    inputs include the candidate's own features, if any), for finalize_run.
    """
    cfg, targets = prep.cfg, list(prep.table.target_names)
    train_idx, test_idx = split_idx
    candidates = plan(cfg, prep.table.Y[train_idx], prep.x_all[train_idx], prep.model_inputs, prep.width)
    candidates, units = with_units(prep, with_divide(prep, candidates), train_idx)
    dropped: dict[str, int] = {}  # candidate -> formulas dropped as dimensionally inconsistent
    jobs = min(cfg.search.jobs or default_jobs(), len(candidates))
    y_scale = target_scales(prep.table.Y[test_idx], targets)
    outcomes: list[Outcome] = []
    records: list[dict] = []
    floors: dict[str, float] = {}  # target -> the best network's test RMSE so far
    stopped: list[str] = []  # why the search ended before its last candidate
    model_only = False  # once a formula is exact: candidates without a model are skipped
    start = time.monotonic()
    sink.stage_started(f"search: {len(candidates)} candidates, {jobs} job(s)", 0)

    def on_outcome(outcome: Outcome) -> bool:
        nonlocal model_only
        outcomes.append(outcome)
        dropped[outcome.candidate.name] = keep_consistent(outcome, prep)
        for label, record, n_edges in outcome.steps:
            sink.step(label, record, sink.global_step + 1, n_edges)
        records.append(_record(outcome, cfg.search.accept_r2))
        details = {**records[-1], "elapsed": round(time.monotonic() - start, 1)}
        report = StageReport("candidate", outcome.candidate.name, outcome.status, details, "")
        sink.stage_finished(outcome.candidate.name, report)
        merged = merge(outcomes, targets, y_scale)
        for target, error in outcome.network_rmse.items():
            if math.isfinite(error):
                floors[target] = min(error, floors.get(target, math.inf))
        modelled = any(o.state is not None and has_model(o.candidate) for o in outcomes)
        if best_so_far is not None and modelled:
            best_so_far[:] = [_winner_state(outcomes, merged, cfg.search.time_budget)]  # only the latest counts
        if not cfg.search.stop_when_exact:
            return False
        if is_exact(merged, y_scale):
            # Without a network over the run's inputs the run has no model.pt yet: only a
            # candidate that brings one can add anything now.
            model_only = True
            if modelled:
                stopped.append("exact: a formula reproduces the held-out rows")
        elif modelled and at_noise_floor(merged, floors, cfg.search.accept_r2):
            stopped.append("noise floor: a formula of snapped constants is as accurate as every network")
        return bool(stopped)

    def skip(candidate) -> bool:
        return model_only and not has_model(candidate)

    run_candidates(prep, candidates, split_idx, cfg.search.time_budget, jobs, on_outcome, skip)
    ran = {r["name"] for r in records}
    merged = merge(outcomes, targets, y_scale)
    state = _winner_state(outcomes, merged, cfg.search.time_budget)
    state.sink = sink
    state.search = {
        "candidates": records,
        "winner": state.search,
        "jobs": jobs,
        "time_budget": cfg.search.time_budget,
        "seconds": round(time.monotonic() - start, 2),
        "stopped_early": stopped[0] if stopped else None,
        "skipped": [c.name for c in candidates if skip(c) and c.name not in ran],
    }
    if units:
        state.search["units"] = {
            **units,
            "dropped_inconsistent": sum(dropped.values()),
            "dropped_by_candidate": dropped,
        }
    state.reports.append(StageReport("search", "search", "ok", {"winner": state.search["winner"]}))
    winner = next(o.candidate for o in outcomes if o.candidate.name == state.search["winner"])
    return state, candidate_prepared(prep, winner)


def _winner_state(outcomes: list[Outcome], merged: Merged, budget: float) -> RunState:
    completed = [o for o in outcomes if o.state is not None and has_model(o.candidate)]
    if not completed:
        reasons = "; ".join(f"{o.candidate.name}: {o.status} {o.message}".strip() for o in outcomes)
        raise SearchError(
            f"the search finished no candidate within search.time_budget {budget:g} s ({reasons}); "
            "raise it with --time-budget SECONDS or set pipeline: in the config"
        )
    name = merged.winner()
    # A dimensionless candidate's network is over the groups: then the model is the most accurate other one.
    winner = next((o for o in completed if o.candidate.name == name), None) or min(completed, key=_own_error)
    formulas = {}
    for target, front in merged.fronts.items():
        own = winner.state.formulas.get(target) or {}
        formulas[target] = {"check": own.get("check"), "best": merged.best[target], "candidates": front}
    # A copy: the candidate's own formulas stay as they were, for later merges.
    state = dataclasses.replace(winner.state, formulas=formulas, search=winner.candidate.name)
    return state


def _own_error(outcome: Outcome) -> float:
    rows = [entry.get("best") or {} for entry in outcome.state.formulas.values()]
    return sum(row.get("test_rmse", float("inf")) for row in rows) if rows else float("inf")
