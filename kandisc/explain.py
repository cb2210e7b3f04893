"""``kandisc explain``: importances, structure, formulas and figures of a saved model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kandisc.attribution import attribute
from kandisc.errors import DataError, RunDirError
from kandisc.io.atomic import atomic_write_text, write_error
from kandisc.io.model_file import ModelBundle, load_model
from kandisc.io.rundir import to_jsonable


@dataclass
class ExplainResult:
    inputs: list[dict]  # name, score, rank (highest first)
    pruned_inputs: list[str]
    shape_initial: list | None
    shape_final: list
    formulas: dict
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    data_source: str = ""


def reference_rows(bundle: ModelBundle, data: Path | None) -> tuple[torch.Tensor, str]:
    """Raw model inputs to compute statistics on: the given CSV or the sample stored at fit time."""
    if data is not None:
        from kandisc.io.data import read_columns
        from kandisc.predict import model_inputs, needed_columns

        required = needed_columns(bundle)
        allowed = list(bundle.output_names) + [c for c in bundle.data_columns if c not in required]
        x = model_inputs(bundle, read_columns(data, required, allowed))
        return torch.as_tensor(x), str(data)
    if "reference_x" in bundle.tensors:
        return bundle.tensors["reference_x"], "training rows stored in the model file"
    raise DataError("this model file stores no reference rows (e.g. a compiled formula); pass --data CSV")


def explain(
    model_path: Path, data: Path | None = None, out: Path | None = None, formats=("png",), figures: bool = True
) -> ExplainResult:
    out_dir = Path(out) if out else Path(model_path).parent / "explain"
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"{out_dir} is a file, not a folder; give --out a folder for explain.json and figures")
    bundle = load_model(model_path)
    x_raw, source = reference_rows(bundle, data)
    x = bundle.to_model_space(x_raw.to(bundle.model.dtype))
    scores = attribute(bundle.model, x)
    from kandisc.pipeline.finalize import attribution_tables

    tables = attribution_tables(bundle, scores)
    extras = bundle.extras
    result = ExplainResult(
        inputs=tables["inputs"],
        pruned_inputs=list(extras.get("pruned_inputs", [])),
        shape_initial=extras.get("shape_initial"),
        shape_final=bundle.model.spec.display_width(),
        formulas=dict(extras.get("formulas") or {}),
        out_dir=out_dir,
        data_source=source,
    )
    report = {
        **tables,
        "pruned_inputs": result.pruned_inputs,
        "shape_initial": result.shape_initial,
        "shape_final": result.shape_final,
        "formulas": result.formulas,
        "data": source,
        "symbolic_edges": bundle.model.symbolic_edges(),
    }
    try:
        result.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(result.out_dir, exc) from None
    atomic_write_text(result.out_dir / "explain.json", json.dumps(to_jsonable(report), indent=2))
    result.files.append(result.out_dir / "explain.json")
    if figures:
        from kandisc import plots

        result.files += plots.plot_network(
            bundle.model, x, scores, bundle.input_names, bundle.output_names, result.out_dir / "network", formats
        )
        names = bundle.input_names + result.pruned_inputs
        values = scores.input_scores.tolist() + [0.0] * len(result.pruned_inputs)
        result.files += plots.plot_attribution(
            names, values, result.out_dir / "attribution", formats, pruned_inputs=result.pruned_inputs
        )
    return result
