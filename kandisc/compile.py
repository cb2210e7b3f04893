"""``kandisc compile``: a formula as a symbolic MultKAN model file (and optionally its figure)."""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from pathlib import Path

from kandisc.defaults import GRID, ORDER
from kandisc.errors import FormulaError, RunDirError
from kandisc.io.model_file import ModelBundle, save_model


@dataclass
class CompileResult:
    model_path: Path
    input_names: list[str]
    shape: list
    n_edges: int
    figure: Path | None = None


def compile_bundle(text_or_expr, variables: list[str] | None = None, output_name: str = "f", **build):
    """Formula text (or a sympy expression) -> a ModelBundle whose MultKAN computes it exactly.

    ``variables`` are the model's inputs in order (default: the formula's variables in order of
    appearance); inputs the formula does not use are left unconnected. ``build`` goes to
    :meth:`~kandisc.knowledge.compiler.NetworkPlan.build` (grid, k, dtype). Raises FormulaError
    for anything the compiler cannot translate exactly.
    """
    from kandisc.knowledge.compiler import plan_network, read_formula

    expr, names, source = read_formula(text_or_expr, variables)
    model = plan_network(expr, names).build(**{"grid": GRID, "k": ORDER, **build})
    return ModelBundle(
        model=model,
        input_names=names,
        output_names=[output_name],
        data_columns=list(names),
        extras={"compiled_from": source},
    )


def _check_names(variables: list[str] | None, output_name: str) -> None:
    """--variables must be formula identifiers, listed once; the output name must be a usable column name."""
    for name in variables or []:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            raise FormulaError(
                f"--variables: {name!r} is not a variable name; use letters, digits and _ (not first), "
                "comma-separated, e.g. --variables x,y"
            )
    twice = sorted({n for n in variables or [] if variables.count(n) > 1})
    if twice:
        raise FormulaError(f"--variables lists {twice[0]!r} twice; list each variable once")
    if not output_name.strip() or any(ord(c) < 32 or ord(c) == 127 or c in ',"' for c in output_name):
        raise FormulaError(
            f"--output-name {output_name!r}: give a column name without control characters, commas or quotes"
        )


def compile_formula(
    formula: str,
    out: Path,
    variables: list[str] | None = None,
    output_name: str = "f",
    plot: bool = False,
    overwrite: bool = False,
) -> CompileResult:
    out = Path(out)
    _check_names(variables, output_name)
    # The formula first: a typo in it is the error to report, even when the output exists too.
    bundle = compile_bundle(formula, variables, output_name=output_name)
    if out.exists() and not overwrite:
        raise RunDirError(f"{out} exists; pass --overwrite or choose another --out")
    figure_path = out.with_suffix(".png")
    if plot and figure_path.exists() and not overwrite:
        raise RunDirError(f"{figure_path} (the --plot figure) exists; pass --overwrite or choose another --out")
    from kandisc.knowledge.formula import parse_formula

    expr = parse_formula(formula, bundle.input_names)
    bundle.extras["formulas"] = {output_name: {"sympy": str(expr), "complexity": None, "test_rmse": None}}
    save_model(bundle, out)
    figure = None
    if plot:
        import torch

        from kandisc import plots

        x_ref = torch.rand(200, bundle.model.spec.n_inputs, dtype=bundle.model.dtype) * 2 - 1
        title = f"{', '.join(bundle.output_names)} = {formula}" if len(bundle.output_names) == 1 else None
        figure = plots.plot_network(
            bundle.model, x_ref, None, bundle.input_names, bundle.output_names, out.with_suffix(""), ("png",),
            title=title,
        )[0]  # fmt: skip
    return CompileResult(
        out, list(bundle.input_names), bundle.model.spec.display_width(), bundle.model.n_edges(), figure
    )
