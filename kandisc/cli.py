"""The ``kandisc`` command line: parse arguments, call :mod:`kandisc.api`, print, map errors to exit codes.

Exit codes: 0 success; 2 bad input (any ``KandiscError`` or usage error: one line on stderr); 130
interrupted, 143 stopped by SIGTERM, 129 by SIGHUP (the run is marked and its last model kept); 1 is
a bug (traceback). Results go to stdout, logs
and progress to stderr. Heavy modules (torch, matplotlib, sympy) are imported inside commands so
``kandisc --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kandisc import __version__
from kandisc.cli_errors import OneLineErrors, user_errors
from kandisc.errors import ConfigError

app = typer.Typer(
    name="kandisc",
    cls=OneLineErrors,
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
    help="Scientific discovery with Kolmogorov-Arnold Networks: CSV + YAML in, formulas out.",
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect configuration: resolved values and the schema.")
app.add_typer(config_app, name="config")
from kandisc.batch.cli import batch_app  # noqa: E402 (typer and rich only: --help stays fast)

app.add_typer(batch_app, name="batch")

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        stdout.print(f"kandisc {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """kandisc: train MultKANs on CSV tables, prune them and extract formulas."""


SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a config key: section.key=value")]


@app.command()
def fit(
    data: Annotated[Path | None, typer.Argument(help="CSV table: input columns and target column(s).")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML run spec.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run directory (default runs/<time>_<data>_<hash>).")
    ] = None,
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (overrides the config).")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda or auto (overrides the config).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing run directory.")] = False,
    prior: Annotated[Path | None, typer.Option(help="Start from a saved model (e.g. from kandisc compile).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Search: candidate fits in parallel (default: all cores).")
    ] = None,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", help="Search: wall-clock seconds for all candidates.")
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue an interrupted run (its config and data) after its last stage checkpoint."),
    ] = None,
) -> None:
    """Find the law behind DATA: train, prune and symbolify MultKANs; write a run directory.

    Without a pipeline in the config, a search tries several candidate networks (with and without
    multiplication nodes, a log target where it applies, several seeds) and keeps the formula that
    is best on held-out rows for its complexity; with one, exactly that pipeline runs once.
    """
    if resume is not None:
        given = {"DATA": data, "--config": config, "--out": out, "--set": set_, "--seed": seed, "--device": device}
        given.update({"--overwrite": overwrite or None, "--prior": prior, "--jobs": jobs, "--time-budget": time_budget})
        _resume(resume, [name for name, value in given.items() if value is not None], quiet)
        return
    with user_errors():
        from kandisc.io.config import OptionOverride, load_config
        from kandisc.search.forkserver import start_early as start_search_workers_early

        if data is None:
            raise ConfigError("Missing argument 'data' (DATA.csv, or --resume RUN_DIR); see 'kandisc fit --help'")
        if prior is not None:
            set_ = [*(set_ or []), "prior.formula=null", OptionOverride("prior.model_file", prior, "--prior")]
        if jobs is not None:
            set_ = [*(set_ or []), OptionOverride("search.jobs", jobs, "--jobs")]
        if time_budget is not None:
            set_ = [*(set_ or []), OptionOverride("search.time_budget", time_budget, "--time-budget")]
        cfg = load_config(config, list(set_ or []))
        start_search_workers_early(cfg)  # before torch is imported here: the two imports overlap
        from kandisc.api import fit_run

        log_every = cfg.output.log_every
        sets = list(set_ or [])
        result = _with_progress(
            quiet, log_every, lambda sink: fit_run(data, config, out, sets, seed, device, overwrite, sink, sys.argv)
        )
        print_summary(result.summary, result.run_dir)


def _with_progress(quiet: bool, log_every: int, fit):
    """``fit(sink)`` with the progress display: none, a rich bar on a terminal, plain lines otherwise."""
    from kandisc.pipeline.state import NullSink
    from kandisc.progress import PlainSink, RichSink

    sink = NullSink() if quiet else (RichSink(stderr) if stderr.is_terminal else PlainSink(stderr, log_every))
    if not isinstance(sink, RichSink):
        return fit(sink)
    with sink:
        return fit(sink)


def _resume(run_dir: Path, extra: list[str], quiet: bool) -> None:
    """``kandisc fit --resume RUN_DIR``: the run's own config and data, nothing else."""
    from kandisc.api import resume_run
    from kandisc.io.config import OutputConfig, load_config

    with user_errors():
        if extra:
            raise ConfigError(
                f"--resume continues {run_dir} with its own config and data; drop {', '.join(extra)} "
                "(or start a new run without --resume)"
            )
        saved = run_dir / "config.yaml"
        log_every = load_config(saved).output.log_every if saved.is_file() else OutputConfig().log_every
        result = _with_progress(quiet, log_every, lambda sink: resume_run(run_dir, sink, sys.argv))
        print_summary(result.summary, result.run_dir)


def print_summary(summary: dict, run_dir: Path) -> None:
    from rich.table import Table

    if summary.get("symbols"):
        from kandisc.io.names import mapping_line

        # Said once, before the formulas that use them: which column each renamed symbol stands for.
        stdout.print(f"symbols: {mapping_line(summary['symbols'])}", markup=False)
    table = Table(title=None, show_edge=False)
    for col in ("target", "formula test R²", "test RMSE", "formula"):
        table.add_column(col)
    for target in summary["targets"]:
        r2, rmse = summary["formula_test_r2"].get(target), summary["formula_test_rmse"].get(target)
        table.add_row(
            target,
            "-" if r2 is None or r2 != r2 else f"{r2:.6f}",  # None or NaN: undefined (kandisc.metrics)
            "-" if rmse is None or rmse != rmse else f"{rmse:.3e}",
            summary["formulas"].get(target) or "- (no formula: an edge stayed a spline)",
        )
    stdout.print(table)
    for target, found in summary["law_found_per_target"].items():
        if not found:
            model_r2 = summary["test_r2"].get(target)
            model_text = "-" if model_r2 is None else f"{model_r2:.6f}"
            stdout.print(
                f"{target}: no formula reached test R² {summary['accept_r2']:g}; the formula shown is an "
                f"approximation (the network's own test R² is {model_text})"
            )
    if summary.get("task"):
        from kandisc.pipeline.report import task_lines

        for line in task_lines(summary):
            stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    if summary.get("pruned_inputs"):
        stdout.print(f"pruned inputs: {', '.join(summary['pruned_inputs'])}")
    search = summary.get("search")
    if search:
        done = sum(1 for c in search["candidates"] if c["status"] == "completed")
        stopped = f"; stopped early ({search['stopped_early']})" if search.get("stopped_early") else ""
        line = f"search: {done} of {len(search['candidates'])} candidates completed; best: {search['winner']}{stopped}"
        stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    stdout.print(f"shape: {summary['shape_initial']} -> {summary['shape_final']}; {summary['wall_seconds']:.1f} s")
    stdout.print(f"run directory: {run_dir}")


@app.command()
def explain(
    model: Annotated[Path, typer.Argument(help="A model.pt written by kandisc fit or compile.")],
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="CSV to compute scores on (default: rows stored in the model).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for explain.json and figures (default: <model dir>/explain)."),
    ] = None,
    no_figures: Annotated[bool, typer.Option("--no-figures", help="Skip the figures.")] = False,
) -> None:
    """Input importances, network shape, formulas and figures of a saved model."""
    from rich.table import Table

    from kandisc.api import explain as explain_model

    with user_errors():
        result = explain_model(model, data, out, figures=not no_figures)
    table = Table(title=f"input importance ({result.data_source})", show_edge=False)
    for col in ("rank", "input", "score"):
        table.add_column(col)
    for row in result.inputs:
        table.add_row(str(row["rank"]), row["name"], f"{row['score']:.4g}")
    for name in result.pruned_inputs:
        table.add_row("-", name, "pruned")
    stdout.print(table)
    before = f"{result.shape_initial} -> " if result.shape_initial else ""
    stdout.print(f"shape: {before}{result.shape_final}")
    if result.report.get("symbols"):
        from kandisc.io.names import mapping_line

        stdout.print(f"symbols: {mapping_line(result.report['symbols'])}", markup=False)
    for target, best in result.formulas.items():
        stdout.print(f"{target} = {best['sympy'] if best else '(no formula: the model still has spline edges)'}")
    print_structure(result.structure)
    stdout.print(f"wrote: {result.out_dir}")


def print_structure(structure: dict) -> None:
    """The structure part of ``kandisc explain``."""
    from kandisc.pipeline.structure_summary import structure_lines

    for line in structure_lines(structure):
        stdout.print(line, markup=False)


@app.command()
def predict(
    model: Annotated[Path, typer.Argument(help="A model.pt written by kandisc fit or compile.")],
    data: Annotated[Path, typer.Argument(help="CSV with the model's input columns (any order), and any others.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output CSV (default: the CSV on stdout, nothing written).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output file.")] = False,
) -> None:
    """Apply a saved model to new rows: every column of DATA unchanged, plus <target>_pred columns."""
    from kandisc.api import predict as predict_rows

    with user_errors():
        result = predict_rows(model, data, out, overwrite)
    # Without -o the table itself is the result on stdout, so everything said about it goes to stderr.
    notes = stdout if out is not None else stderr
    for warning in result.warnings:
        stderr.print(f"warning: {warning}", markup=False)
    passed = f"; passed through unchanged: {', '.join(result.passed)}" if result.passed else ""
    notes.print(f"columns used: {', '.join(result.used) or 'none'}{passed}", markup=False)
    for target, r2 in result.r2.items():
        notes.print(f"{target}: R² {r2:.6f} against the column in {data}", markup=False)
    if out is None:
        result.frame.to_csv(sys.stdout, index=False)
    else:
        stdout.print(f"wrote {result.n_rows} predictions to {result.out_path}", markup=False)


@app.command("test")
def hypothesis_command(
    model: Annotated[Path, typer.Argument(help="A model.pt written by kandisc fit or compile.")],
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="CSV to test on (default: rows stored in the model).")
    ] = None,
    separable: Annotated[
        str | None, typer.Option(help="Groups of inputs, e.g. 'a,b|c': is the model g(a, b) + h(c)?")
    ] = None,
    multiplicative: Annotated[bool, typer.Option(help="With --separable: g(a, b) · h(c) instead.")] = False,
    general: Annotated[bool, typer.Option(help="With --separable: h(p(a, b) + q(c)), h unknown.")] = False,
    symmetric: Annotated[
        str | None, typer.Option(help="A group, e.g. 'a,b': does the model see a, b only through one h(a, b)?")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Which output to test (default: the first).")] = None,
) -> None:
    """Test one structural hypothesis on a saved model: yes or no, with its score and threshold.

    Inputs the hypothesis does not name form one more group. Exit code 0 whatever the answer.
    """
    from kandisc.errors import HypothesisError
    from kandisc.hypothesis import answer_hypothesis

    with user_errors():
        if multiplicative and general:
            raise HypothesisError("choose one of --multiplicative and --general")
        if (multiplicative or general) and separable is None:
            raise HypothesisError("--multiplicative and --general qualify --separable 'a,b|c'")
        mode = "mul" if multiplicative else ("general" if general else "add")
        answer = answer_hypothesis(model, data, separable, mode, symmetric, target)
    stdout.print(f"{answer.hypothesis}: {'yes' if answer.holds else 'no'}", markup=False)
    relation = "<" if answer.holds else ">="
    stdout.print(f"{answer.kind} score {answer.score:.3g} {relation} threshold {answer.threshold:g}", markup=False)
    stdout.print(f"rows: {answer.data_source}", markup=False)


@app.command("compile")
def compile_(
    formula: Annotated[str, typer.Argument(help='A formula such as "x*y + sin(z)" (** for powers).')],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the model.")] = Path("model.pt"),
    variables: Annotated[
        str | None, typer.Option(help="Comma-separated input order (default: as they appear).")
    ] = None,
    output_name: Annotated[str, typer.Option(help="Name of the output.")] = "f",
    plot: Annotated[bool, typer.Option(help="Also write a network figure next to the model.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing model file.")] = False,
) -> None:
    """Turn a formula into a MultKAN whose edges are symbolic (KAN 2.0's kanpiler)."""
    from kandisc.api import compile_formula

    with user_errors():
        names = [v.strip() for v in variables.split(",")] if variables else None
        result = compile_formula(formula, out, names, output_name, plot, overwrite)
    stdout.print(f"inputs: {', '.join(result.input_names)}; output: {output_name}")
    stdout.print(f"shape: {result.shape}; {result.n_edges} symbolic edges")
    stdout.print(f"wrote {result.model_path}" + (f" and {result.figure}" if result.figure else ""))


@app.command()
def units(
    config: Annotated[Path, typer.Argument(help="YAML run spec with a units: section.")],
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="CSV whose header gives the columns (checked against units:).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the analysis as JSON.")] = False,
) -> None:
    """Dimensional analysis: per target, the dimensionless groups of the inputs and the prefactor."""
    import json

    from kandisc.api import units_report

    with user_errors():
        result = units_report(config, data)
    if json_:
        stdout.print(json.dumps(result.to_dict(), indent=1), markup=False)
        return
    for analysis in result.analyses:
        print_analysis(analysis)


def print_analysis(analysis) -> None:
    shown = ", ".join(f"{c} [{analysis.units[c]}]" for c in analysis.inputs)
    stdout.print(f"{analysis.target} [{analysis.units[analysis.target]}] from {shown}", markup=False)
    groups = "; ".join(f"{g.name} = {g.expr}" for g in analysis.groups) or "none"
    stdout.print(f"  groups:    {groups}", markup=False)
    stdout.print(f"  prefactor: {analysis.prefactor if analysis.prefactor is not None else 'none'}", markup=False)
    stdout.print(f"  form:      {analysis.form()}", markup=False)
    if analysis.unused:
        stdout.print(f"  unused:    {', '.join(analysis.unused)} (in no group: the target cannot depend on it)")


@config_app.command("show")
def config_show(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML run spec.")] = None,
    set_: SetOption = None,
) -> None:
    """Print the resolved config (defaults < file < --set) as YAML."""
    from kandisc.io.config import config_to_yaml, load_config

    with user_errors():
        stdout.print(config_to_yaml(load_config(config, list(set_ or []))), end="", markup=False)


@config_app.command("schema")
def config_schema() -> None:
    """List every config key with its type, default and meaning (one key per line)."""
    from kandisc.io.config import schema_rows

    clip = lambda text: text if len(text) <= 30 else text[:29] + "…"  # noqa: E731 (long defaults: see config show)
    rows = [("key", "type", "default", "meaning"), *((k, t, clip(d), m) for k, t, d, m in schema_rows())]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for row in rows:
        line = "  ".join(row[c].ljust(widths[c]) for c in range(3)) + "  " + row[3]
        stdout.print(line, markup=False, overflow="ignore", crop=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
