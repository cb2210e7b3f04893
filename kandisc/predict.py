"""``kandisc predict``: apply a saved model to new rows matched by column name.

The model reads the columns it was fitted on (by name, in any order, under their original names
even when the fit renamed them into formula symbols); every other column (ids, other
measurements) is copied to the output unchanged, and ``<target>_pred`` columns are added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kandisc.errors import DataError, RunDirError
from kandisc.io.atomic import atomic_write_text
from kandisc.io.data import Rows, read_columns, read_header
from kandisc.io.model_file import ModelBundle, load_model
from kandisc.io.names import column_of
from kandisc.knowledge.user_functions import restore_functions
from kandisc.metrics import r2_score
from kandisc.tasks import task_from_dict


@dataclass
class PredictResult:
    out_path: Path | None  # None: nothing written (the CLI prints ``frame`` as CSV)
    n_rows: int
    warnings: list[str] = field(default_factory=list)
    r2: dict[str, float] = field(default_factory=dict)  # when the CSV holds the target columns
    used: list[str] = field(default_factory=list)  # CSV columns the model read
    passed: list[str] = field(default_factory=list)  # other CSV columns, copied unchanged
    frame: pd.DataFrame | None = None  # every CSV column as written, then <target>_pred


def needed_columns(bundle: ModelBundle) -> list[str]:
    """Data columns the model needs: its direct inputs plus every column an auxiliary feature uses."""
    from kandisc.knowledge.formula import formula_variables

    needed = {n for n in bundle.input_names if n in bundle.data_columns}
    for text in bundle.auxiliary.values():  # all features are computed, so all their columns count
        needed |= {v for v in formula_variables(text) if v in bundle.data_columns}
    return [c for c in bundle.data_columns if c in needed]


def _labels(bundle: ModelBundle) -> dict[str, str]:
    """Symbol -> CSV column for the columns the fit renamed (kandisc.io.names)."""
    return dict(bundle.extras.get("column_labels") or {})


def read_model_rows(
    bundle: ModelBundle, data_path: Path, measured: tuple | list = ()
) -> tuple[Rows, dict[str, np.ndarray], list[str]]:
    """The CSV's rows, the model's columns by symbol, and the CSV names of those columns
    (the targets, and ``measured``: a task's measured columns such as q̈, when present).

    A renamed column is found under its original name (``speed (m/s)``) or under its symbol.
    """
    labels, header = _labels(bundle), read_header(data_path)

    def column(symbol: str) -> str:  # the original name, unless only the symbol is in the header
        name = column_of(symbol, labels)
        return symbol if name not in header and symbol in header else name

    wanted = {s: column(s) for s in needed_columns(bundle)}
    targets = {s: column(s) for s in [*bundle.output_names, *measured]}
    rows = read_columns(data_path, list(wanted.values()), list(targets.values()))
    by_symbol = {s: rows.values[c] for s, c in {**wanted, **targets}.items() if c in rows.values}
    return rows, by_symbol, list(wanted.values())


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
    """Predictions for every row of ``data_path``; the CSV's columns are copied through unchanged.

    Written to ``out_path`` when given; otherwise nothing is written and ``result.frame`` holds the
    table (the CLI prints it as CSV on stdout).
    """
    out_path = Path(out_path) if out_path else None
    for what, source in (("data file", data_path), ("model file", model_path)):
        if out_path is not None and out_path.resolve() == Path(source).resolve():
            raise RunDirError(f"-o {out_path} is the {what} itself; write the predictions to another file")
    bundle = load_model(model_path)
    restore_functions(bundle)
    if out_path is not None and out_path.exists() and not overwrite:
        raise RunDirError(f"{out_path} exists; pass --overwrite or choose another -o")
    task = task_from_dict(bundle.extras.get("task"))
    rows, columns, used = read_model_rows(bundle, data_path, task.targets if task else ())
    x = model_inputs(bundle, columns)
    names, pred = predicted_columns(bundle, task, x)
    frame = rows.text.copy()
    r2 = {}
    for t, target in enumerate(names):
        name = f"{column_of(target, _labels(bundle))}_pred"
        if name in frame.columns:
            raise DataError(f"{data_path}: already has a column {name!r}; rename it so the predictions can be added")
        frame[name] = pred[:, t]
        if target in columns:
            r2[target] = r2_score(columns[target], pred[:, t])
    if out_path is not None:
        atomic_write_text(out_path, frame.to_csv(index=False))
    passed = [c for c in rows.columns if c not in used]
    return PredictResult(out_path, len(frame), range_warnings(bundle, x), r2, used, passed, frame)


def reference_rows(bundle: ModelBundle, data: Path | None) -> tuple[torch.Tensor, str]:
    """Raw model inputs to compute statistics on: the given CSV or the sample stored at fit time."""
    if data is not None:
        x = model_inputs(bundle, read_model_rows(bundle, data)[1])
        return torch.as_tensor(x), str(data)
    if "reference_x" in bundle.tensors:
        return bundle.tensors["reference_x"], "training rows stored in the model file"
    raise DataError("this model file stores no reference rows (e.g. a compiled formula); pass --data CSV")
