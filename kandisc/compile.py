"""``kandisc compile``: a formula as a symbolic MultKAN model file (and optionally its figure)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kandisc.errors import RunDirError
from kandisc.io.model_file import save_model


@dataclass
class CompileResult:
    model_path: Path
    input_names: list[str]
    shape: list
    n_edges: int
    figure: Path | None = None


def compile_formula(
    formula: str,
    out: Path,
    variables: list[str] | None = None,
    output_name: str = "f",
    plot: bool = False,
    overwrite: bool = False,
) -> CompileResult:
    from kandisc.knowledge.compiler import compile_formula as compile_bundle

    out = Path(out)
    if out.exists() and not overwrite:
        raise RunDirError(f"{out} exists; pass --overwrite or choose another --out")
    bundle = compile_bundle(formula, variables, output_name=output_name)
    from kandisc.knowledge.formula import parse_formula

    expr = parse_formula(formula, bundle.input_names)
    bundle.extras["formulas"] = {output_name: {"sympy": str(expr), "complexity": None, "test_rmse": None}}
    save_model(bundle, out)
    figure = None
    if plot:
        import torch

        from kandisc import plots

        x_ref = torch.rand(200, bundle.model.spec.n_inputs, dtype=bundle.model.dtype) * 2 - 1
        figure = plots.plot_network(
            bundle.model, x_ref, None, bundle.input_names, bundle.output_names, out.with_suffix(""), ("png",)
        )[0]
    return CompileResult(
        out, list(bundle.input_names), bundle.model.spec.display_width(), bundle.model.n_edges(), figure
    )
