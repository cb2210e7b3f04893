"""``kandisc explain``: importances, structure, formulas and figures of a saved model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kandisc.attribution import Attribution, attribute
from kandisc.errors import RunDirError
from kandisc.io.atomic import atomic_write_text, write_error
from kandisc.io.model_file import ModelBundle, load_model
from kandisc.io.rundir import to_jsonable
from kandisc.knowledge.user_functions import restore_functions


@dataclass
class ExplainResult:
    inputs: list[dict]  # name, score, rank (highest first)
    pruned_inputs: list[str]
    shape_initial: list | None
    shape_final: list
    formulas: dict
    out_dir: Path | None  # None: computed in memory (explain_bundle), nothing written
    files: list[Path] = field(default_factory=list)
    data_source: str = ""
    structure: dict = field(default_factory=dict)  # of the first target (kandisc.structure.Structure.to_dict)
    report: dict = field(default_factory=dict)  # the content of explain.json


def explain_bundle(bundle: ModelBundle, x_raw: torch.Tensor, source: str) -> tuple[ExplainResult, Attribution]:
    """Importances, structure and formulas of a model on raw model inputs ``x_raw``; writes nothing."""
    x = bundle.to_model_space(x_raw.to(bundle.model.dtype))
    scores = attribute(bundle.model, x)
    from kandisc.pipeline.finalize import attribution_tables

    tables = attribution_tables(bundle, scores)
    from kandisc.pipeline.structure_summary import model_structure

    structures = model_structure(bundle, x)
    extras = bundle.extras
    result = ExplainResult(
        inputs=tables["inputs"],
        pruned_inputs=list(extras.get("pruned_inputs", [])),
        shape_initial=extras.get("shape_initial"),
        shape_final=bundle.model.spec.display_width(),
        formulas=dict(extras.get("formulas") or {}),
        out_dir=None,
        data_source=source,
        structure=structures[bundle.output_names[0]],
    )
    result.report = {
        **tables,
        "pruned_inputs": result.pruned_inputs,
        "shape_initial": result.shape_initial,
        "shape_final": result.shape_final,
        "formulas": result.formulas,
        "data": source,
        "symbolic_edges": bundle.model.symbolic_edges(),
        "symbols": dict(extras.get("column_labels") or {}),  # formula symbol -> CSV column
        "structure": result.structure,
    }
    if len(structures) > 1:
        result.report["structure_by_target"] = structures
    return result, scores


def explain(
    model_path: Path, data: Path | None = None, out: Path | None = None, formats=("png",), figures: bool = True
) -> ExplainResult:
    from kandisc.predict import reference_rows

    out_dir = Path(out) if out else Path(model_path).parent / "explain"
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"{out_dir} is a file, not a folder; give --out a folder for explain.json and figures")
    bundle = load_model(model_path)
    restore_functions(bundle)
    x_raw, source = reference_rows(bundle, data)
    result, scores = explain_bundle(bundle, x_raw, source)
    x = bundle.to_model_space(x_raw.to(bundle.model.dtype))
    result.out_dir = out_dir
    try:
        result.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(result.out_dir, exc) from None
    atomic_write_text(result.out_dir / "explain.json", json.dumps(to_jsonable(result.report), indent=2))
    result.files.append(result.out_dir / "explain.json")
    if figures:
        from kandisc import plots
        from kandisc.pipeline.figures import network_title

        best = {t: [{**row, "is_best": True}] for t, row in result.formulas.items() if row}
        title, notes = network_title(best, bundle.extras.get("column_labels") or {})
        norm = bundle.normalization
        result.files += plots.plot_network(
            bundle.model, x, scores, bundle.input_names, bundle.output_names, result.out_dir / "network", formats,
            title=title, notes=notes, input_scaling=None if norm is None else (norm.x_mean, norm.x_std),
        )  # fmt: skip
        names = bundle.input_names + result.pruned_inputs
        values = scores.input_scores.tolist() + [0.0] * len(result.pruned_inputs)
        result.files += plots.plot_attribution(
            names, values, result.out_dir / "attribution", formats, pruned_inputs=result.pruned_inputs
        )
        first = result.structure
        if "tree_detail" in first:
            title, stem = f"Modular structure of {first['target']}", result.out_dir / "figures" / "tree"
            result.files += plots.plot_tree(first["tree_detail"], stem, formats, title, first["threshold"])
    return result
