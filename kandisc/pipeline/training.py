"""Training a run's model in place with every step streamed to the run's progress sink.

Shared by the ``fit`` stage and the symbolic stage's retraining rounds.
"""

from __future__ import annotations

from kandisc.pipeline.state import RunState, StageReport
from kandisc.train import TrainSettings, train


def run_training(state: RunState, label: str, settings: TrainSettings) -> StageReport:
    """Train in place, streaming every step to the sink; shared by fit and symbolic retraining."""
    state.sink.stage_started(label, settings.steps)

    def on_step(record):
        state.global_step += 1
        state.sink.step(label, record, state.global_step, state.model.n_edges())

    task = state.task
    if task is not None:
        task.check(state.model, state.data.x_train)  # a singular start is an error, not a run of NaNs
    residual = task.residual if task is not None else None
    result = train(state.model, state.data, settings, state.generator, on_step, residual)
    last = result.history[-1] if result.history else None
    details = {
        "steps": result.steps_done,
        "rollbacks": result.rollbacks,
        "plateaued": result.plateaued,
        "train_rmse": last.train_loss if last else None,
        "test_rmse": last.test_loss if last else None,
    }
    return StageReport("fit", label, result.status, details, result.message)
