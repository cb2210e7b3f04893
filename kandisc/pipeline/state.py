"""What the pipeline stages share: the model bundle, the data in model space, RNG and reporting.

Stages are plain functions ``stage(state, params) -> StageReport`` that change ``state`` (train
the model in place, replace it by a pruned one, ...). Progress goes through ``ProgressSink``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch

from kandisc.io.model_file import ModelBundle
from kandisc.tasks import PhysicsTask
from kandisc.train import Dataset, StepRecord


class ProgressSink(Protocol):
    """Receives training progress (terminal bars, plain log lines, metrics.csv)."""

    def stage_started(self, label: str, total_steps: int) -> None: ...

    def step(self, label: str, record: StepRecord, global_step: int, n_edges: int) -> None: ...

    def stage_finished(self, label: str, report: StageReport) -> None: ...


class NullSink:
    def stage_started(self, label: str, total_steps: int) -> None:
        pass

    def step(self, label: str, record: StepRecord, global_step: int, n_edges: int) -> None:
        pass

    def stage_finished(self, label: str, report: StageReport) -> None:
        pass


@dataclass
class StageReport:
    stage: str
    label: str
    status: str = "ok"
    details: dict = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0  # wall time of the stage (summary.json "timings"; not stored in model.pt)


@dataclass
class RunState:
    bundle: ModelBundle
    data: Dataset  # standardised, model-input space; columns follow bundle.input_names
    generator: torch.Generator
    sink: ProgressSink = field(default_factory=NullSink)
    global_step: int = 0
    reports: list[StageReport] = field(default_factory=list)
    pruned_inputs: list[str] = field(default_factory=list)
    shape_history: list[list] = field(default_factory=list)
    formulas: dict = field(default_factory=dict)  # target -> {"best": {...}, "candidates": [...]}
    aux_exprs: dict = field(default_factory=dict)  # auxiliary name -> sympy expression of data columns
    search: dict | None = None  # the discovery search's record (candidates, winner), when one ran
    on_stage_end: Callable[[int, str], None] | None = None  # (1-based stage index, stage name): checkpoints
    task: PhysicsTask | None = None  # a physics task: its residual is the loss, its scorer rates formulas

    @property
    def model(self):
        return self.bundle.model


@torch.no_grad()
def held_out_predictions(state: RunState) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's predictions on the held-out rows and those rows' targets, in the target's units."""
    pred = state.bundle.to_target_units(state.model(state.data.x_test))
    return pred, state.bundle.to_target_units(state.data.y_test)


def pruned_scores(reports: list[StageReport]) -> dict[str, float]:
    """Each input a prune stage removed, with its attribution score when it was removed."""
    return {n: v for r in reports if r.stage == "prune" for n, v in (r.details.get("pruned_scores") or {}).items()}
