"""Stage checkpoints of an explicit pipeline: the model after each stage, and the run state to resume.

A checkpoint (``checkpoints/NN_stage.pt``) is an ordinary model file, so ``explain`` and ``predict``
read it, with two additions: ``extras["resume"]`` holds the run state after the stage (its index,
the step counter, the stage reports, pruned inputs, shapes, formulas) and ``tensors["rng_state"]``
the training generator's state. A run resumed from stage k therefore continues with the same
model, the same data columns and the same minibatch draws as one that never stopped: its
formulas and metrics are the uninterrupted run's.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from kandisc.errors import CheckpointError
from kandisc.io.model_file import load_model, save_model
from kandisc.pipeline.runner import Prepared, model_space_data
from kandisc.pipeline.state import RunState, StageReport

_NAME = re.compile(r"^(\d{2,})_([a-z_]+)\.pt$")


def _plain(obj: Any) -> Any:
    """Python scalars and containers only: a model file loads with weights_only, which refuses numpy."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if obj is None:
        return None
    for kind in (bool, int, float, str):  # np.float64 is a float subclass: made a plain float here
        if isinstance(obj, kind):
            return kind(obj)
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def save_checkpoint(state: RunState, index: int, stage: str, path: Path) -> Path:
    """Write the model after stage ``index`` (1-based) with what :func:`restore_state` needs."""
    resume = {
        "stage_index": index,
        "stage": stage,
        "global_step": state.global_step,
        "reports": [_plain(vars(r)) for r in state.reports],
        "pruned_inputs": list(state.pruned_inputs),
        "shape_history": _plain(state.shape_history),
        "formulas": _plain(state.formulas),
    }
    bundle = state.bundle
    snapshot = replace(
        bundle,
        extras={**bundle.extras, "resume": resume},
        tensors={**bundle.tensors, "rng_state": state.generator.get_state()},
    )
    return save_model(snapshot, path)


def latest_checkpoint(folder: Path) -> tuple[int, str, Path] | None:
    """The checkpoint of the last finished stage in ``folder``: (index, stage, path), or None."""
    found = []
    for path in folder.glob("*.pt") if folder.is_dir() else ():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), match.group(2), path))
    return max(found) if found else None


def restore_state(prep: Prepared, split_idx, sink, path: Path, stages: list[str]) -> RunState:
    """The run state saved in checkpoint ``path``, for the prepared run; ``stages`` are the config's
    pipeline stage names (the checkpoint must belong to this pipeline)."""
    bundle = load_model(path, device=prep.device)
    resume = bundle.extras.pop("resume", None)
    rng = bundle.tensors.pop("rng_state", None)
    if not isinstance(resume, dict) or not isinstance(rng, torch.Tensor):
        raise CheckpointError(f"{path} is a model file but not a stage checkpoint; remove it to resume")
    index = resume.get("stage_index")
    if not isinstance(index, int) or not 1 <= index <= len(stages) or stages[index - 1] != resume.get("stage"):
        raise CheckpointError(
            f"{path} is stage {index} ({resume.get('stage')}) of another pipeline than the run's config.yaml; "
            "remove the checkpoints to start over"
        )
    missing = [n for n in bundle.input_names if n not in prep.model_inputs]
    if missing:
        raise CheckpointError(f"{path} reads input {missing[0]!r}, which the run's data does not have")
    columns = [prep.model_inputs.index(n) for n in bundle.input_names]  # the inputs left after pruning
    train_idx, test_idx = split_idx
    data = model_space_data(bundle, prep.x_all[:, columns], prep.table.Y, train_idx, test_idx)
    generator = torch.Generator()
    try:
        generator.set_state(rng)
    except (RuntimeError, TypeError) as err:
        raise CheckpointError(f"{path}: damaged generator state ({str(err)[:120]}); remove it") from None
    state = RunState(bundle, data, generator, sink, aux_exprs=prep.aux_exprs)
    try:
        state.global_step = int(resume["global_step"])
        state.reports = [StageReport(**r) for r in resume["reports"]]
        state.pruned_inputs = list(resume["pruned_inputs"])
        state.shape_history = list(resume["shape_history"])
        state.formulas = dict(resume["formulas"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: damaged resume record ({type(err).__name__}: {err}); remove it") from None
    return state
