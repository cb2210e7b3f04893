"""``kandisc predict``: apply a saved model to new rows matched by column name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kandisc.errors import DataError, RunDirError
from kandisc.io.atomic import atomic_write_text
from kandisc.io.data import read_columns
from kandisc.io.model_file import ModelBundle, load_model
from kandisc.knowledge.user_functions import restore_functions
from kandisc.metrics import r2_score
from kandisc.tasks import task_from_dict


@dataclass
class PredictResult:
    out_path: Path
    n_rows: int
    warnings: list[str] = field(default_factory=list)
    r2: dict[str, float] = field(default_factory=dict)  # when the CSV holds the target columns


def needed_columns(bundle: ModelBundle) -> list[str]:
    """Data columns the model needs: its direct inputs plus every column an auxiliary feature uses."""
    from kandisc.knowledge.formula import formula_variables

    needed = {n for n in bundle.input_names if n in bundle.data_columns}
    for text in bundle.auxiliary.values():  # all features are computed, so all their columns count
        needed |= {v for v in formula_variables(text) if v in bundle.data_columns}
    return [c for c in bundle.data_columns if c in needed]


def model_inputs(bundle: ModelBundle, columns: dict[str, np.ndarray]) -> np.ndarray:
    """(N, model inputs) raw values: data columns and auxiliary features, in the model's order."""
    values = dict(columns)
    if bundle.auxiliary:
        from kandisc.knowledge.auxiliary import compute_auxiliary

        data_cols = {c: columns[c] for c in bundle.data_columns if c in columns}
        names, aux_values, _ = compute_auxiliary(data_cols, bundle.auxiliary)
        values.update({n: aux_values[:, k] for k, n in enumerate(names)})
    return np.column_stack([values[n] for n in bundle.input_names])


def range_warnings(bundle: ModelBundle, x: np.ndarray) -> list[str]:
    """Rows outside the training range of an input, when the model still has spline edges."""
    if all(not bool((kan.num_mask > 0).any()) for kan in bundle.model.layers):
        return []  # a fully symbolic model is a formula: it extends beyond the data like the formula
    ranges = bundle.extras.get("input_ranges", {})
    out = []
    for k, name in enumerate(bundle.input_names):
        if name not in ranges:
            continue
        lo, hi = ranges[name]
        outside = int(((x[:, k] < lo) | (x[:, k] > hi)).sum())
        if outside:
            out.append(
                f"{outside} row(s) have {name} outside the training range [{lo:.4g}, {hi:.4g}]; "
                "splines do not extrapolate, treat those predictions with care"
            )
    return out


def predicted_columns(bundle: ModelBundle, task, x: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(names, values) predicted on raw rows ``x``: the outputs; for a Lagrangian L (network plus
    the kinetic term) and the accelerations its Euler–Lagrange equations give."""
    if task is None or task.kind != "lagrangian":
        return list(bundle.output_names), bundle.predict(torch.as_tensor(x)).cpu().numpy()
    rows = torch.as_tensor(x, dtype=bundle.model.dtype)
    scalar = task.scalar(bundle.model)
    with torch.no_grad():
        lagrangian = scalar(rows).cpu().numpy()[:, None]
    return [task.output, *task.qddot], np.concatenate([lagrangian, task.predict(scalar, x)], axis=1)


def predict(model_path: Path, data_path: Path, out_path: Path | None = None, overwrite: bool = False) -> PredictResult:
    out_path = Path(out_path) if out_path else Path(data_path).with_suffix(".predictions.csv")
    for what, source in (("data file", data_path), ("model file", model_path)):
        if out_path.resolve() == Path(source).resolve():
            raise RunDirError(f"-o {out_path} is the {what} itself; write the predictions to another file")
    bundle = load_model(model_path)
    restore_functions(bundle)
    if out_path.exists() and not overwrite:
        raise RunDirError(f"{out_path} exists; pass --overwrite or choose another -o")
    required = needed_columns(bundle)
    task = task_from_dict(bundle.extras.get("task"))
    allowed = list(bundle.output_names) + [c for c in bundle.data_columns if c not in required]
    allowed += task.targets if task else []
    columns = read_columns(data_path, required, allowed)
    x = model_inputs(bundle, columns)
    names, pred = predicted_columns(bundle, task, x)
    frame = pd.DataFrame({c: columns[c] for c in required})
    r2 = {}
    for t, target in enumerate(names):
        frame[f"{target}_pred"] = pred[:, t]
        if target in columns:
            r2[target] = r2_score(columns[target], pred[:, t])
    atomic_write_text(out_path, frame.to_csv(index=False))
    return PredictResult(out_path, len(frame), range_warnings(bundle, x), r2)


def reference_rows(bundle: ModelBundle, data: Path | None) -> tuple[torch.Tensor, str]:
    """Raw model inputs to compute statistics on: the given CSV or the sample stored at fit time."""
    if data is not None:
        required = needed_columns(bundle)
        allowed = list(bundle.output_names) + [c for c in bundle.data_columns if c not in required]
        x = model_inputs(bundle, read_columns(data, required, allowed))
        return torch.as_tensor(x), str(data)
    if "reference_x" in bundle.tensors:
        return bundle.tensors["reference_x"], "training rows stored in the model file"
    raise DataError("this model file stores no reference rows (e.g. a compiled formula); pass --data CSV")
