"""The stages a YAML pipeline lists and the registry that runs them: ``fit``, ``prune``, ``refine``
here, ``symbolic`` in :mod:`kandisc.pipeline.symbolic_stage`. Each is one function over a
:class:`RunState`; ``STAGES`` maps the config's stage names to them.
"""

from __future__ import annotations

import time

from kandisc.attribution import prune
from kandisc.pipeline.state import RunState, StageReport
from kandisc.pipeline.training import run_training
from kandisc.train import Dataset, TrainSettings


def fit_stage(state: RunState, params: dict) -> StageReport:
    settings = TrainSettings(**params)
    count = sum(1 for r in state.reports if r.stage == "fit") + 1
    after = state.reports[-1].label if state.reports and state.reports[-1].stage != "fit" else ""
    label = f"fit {count}" + (f" (after {after})" if after else "")
    return run_training(state, label, settings)


def refine_stage(state: RunState, params: dict) -> StageReport:
    old = state.model.spec.grid
    state.sink.stage_started(f"refine G={params['grid']}", 0)
    state.model.refine(state.data.x_train, params["grid"])
    return StageReport("refine", f"refine G={params['grid']}", details={"grid_before": old, "grid": params["grid"]})


def _split_rows(state: RunState, which: str):
    return state.data.x_test if which == "test" and state.data.x_test.shape[0] else state.data.x_train


def prune_stage(state: RunState, params: dict) -> StageReport:
    state.sink.stage_started("prune", 0)
    result = prune(
        state.model,
        _split_rows(state, params["on"]),
        node_threshold=params["node_threshold"],
        edge_threshold=params["edge_threshold"],
        input_threshold=params["input_threshold"],
        # A physics task differentiates with respect to every one of its columns: they all stay.
        prune_inputs=params["prune_inputs"] and state.task is None,
    )
    bundle, keep = state.bundle, result.kept_inputs
    names_before = list(bundle.input_names)
    dropped = [n for i, n in enumerate(bundle.input_names) if i not in keep]
    state.pruned_inputs += dropped
    bundle.model = result.model
    bundle.input_names = [bundle.input_names[i] for i in keep]
    if bundle.normalization:
        bundle.normalization = bundle.normalization.select_inputs(keep)
    d = state.data
    state.data = Dataset(d.x_train[:, keep], d.y_train, d.x_test[:, keep], d.y_test)
    details = {
        "shape_before": result.shape_before,
        "shape_after": result.shape_after,
        "removed_edges": result.removed_edges,
        "pruned_inputs": dropped,
        # attribution.json lists pruned inputs with the score that removed them
        "pruned_scores": {n: result.input_scores[i] for i, n in enumerate(names_before) if i not in keep},
        "kept_inputs": list(bundle.input_names),
    }
    return StageReport("prune", "prune", details=details)


def symbolic_stage(state: RunState, params: dict) -> StageReport:
    """:func:`kandisc.pipeline.symbolic_stage.symbolic_stage`, imported when the stage runs: it
    pulls in sympy, which training does not need (a fit starts training sooner)."""
    from kandisc.pipeline.symbolic_stage import symbolic_stage as run_symbolic

    return run_symbolic(state, params)


STAGES = {"fit": fit_stage, "prune": prune_stage, "refine": refine_stage, "symbolic": symbolic_stage}


def run_pipeline(state: RunState, pipeline, first: int = 1) -> list[StageReport]:
    """Run the configured stages in order (items have ``.stage`` and ``.params()``), from the
    ``first`` (1-based; a resumed run starts after its last checkpoint)."""
    for index, item in enumerate(pipeline, 1):
        if index < first:
            continue
        start = time.perf_counter()
        report = STAGES[item.stage](state, item.params())
        report.seconds = round(time.perf_counter() - start, 3)
        state.reports.append(report)
        state.sink.stage_finished(report.label, report)
        if state.on_stage_end is not None:
            state.on_stage_end(index, item.stage)
    return state.reports
