"""``report.md``: a fit run as a short document a scientist can read or paste from.

Built only from what the run already wrote into ``summary.json`` and the stage reports: the symbols
standing for renamed columns, results per target with each formula as LaTeX math, the formula
candidates, the data (rows, split, ranges), the search's candidates, input importances, the
model's structure (separability, symmetries, tree), the per-edge symbolic fits, the stages that
ran, the configuration and seed, and the figures.
:mod:`kandisc.pipeline.report_html` renders the same text as a self-contained ``report.html``.
"""

from __future__ import annotations

from kandisc.pipeline.structure_summary import structure_lines


def _num(value, fmt: str = ".4g") -> str:
    """A number for the tables; a dash where it is missing or undefined (None, NaN)."""
    return "–" if value is None or value != value else format(value, fmt)


def _results(summary: dict) -> list[str]:
    lines = [
        "## Results",
        "",
        "| target | law found | formula test R² | formula test RMSE | network test R² | formula |",
        "|---|---|---|---|---|---|",
    ]
    for t in summary["targets"]:
        formula = summary["formulas"].get(t)
        found = "yes" if summary["law_found_per_target"].get(t) else "no (approximation)"
        lines.append(
            f"| {t} | {found} | {_num(summary['formula_test_r2'].get(t), '.6f')} | "
            f"{_num(summary['formula_test_rmse'].get(t))} | {_num(summary['test_r2'].get(t), '.6f')} | "
            f"{f'`{formula}`' if formula else '(no formula: edges stayed splines)'} |"
        )
    if not summary["law_found"]:
        lines += [
            "",
            f"No formula reached test R² {summary['accept_r2']:g} for every target: the formulas above are "
            "approximations, not laws.",
        ]
    in_columns = summary.get("formulas_in_columns") or {}
    if summary.get("auxiliary") and any(in_columns.values()):
        lines += ["", "In the CSV's own columns (auxiliary features substituted):", ""]
        lines += [f"- {t} = `{f}`" for t, f in in_columns.items() if f]
    return lines


def _cell(text: str) -> str:
    """Text for a table cell: a ``|`` (an absolute value in LaTeX) would end the cell."""
    return text.replace("|", "\\|")


def _math(latex: str | None) -> str:
    """Inline LaTeX math for a table cell, followed by a space; nothing without LaTeX."""
    return f"${_cell(latex)}$ " if latex else ""


def _display_formulas(formulas: dict, labels: dict) -> list[str]:
    from kandisc.knowledge.latex import symbol_latex

    lines = []
    for target, entry in formulas.items():
        best = (entry or {}).get("best") or {}
        if best.get("latex"):
            lines += ["", f"$$ {symbol_latex(target, labels)} = {best['latex']} $$"]
    return lines


def task_lines(summary: dict) -> list[str]:
    """What a physics task's formula gives: the equations of motion of L, the conservation of H
    (plain text lines, for the terminal and the report)."""
    task = summary.get("task")
    if not task:
        return []
    if task["kind"] == "lagrangian":
        eom = task.get("equations_of_motion")
        if eom is None and summary["formulas"].get("L"):
            return ["equation of motion: none (the Hessian of L in the velocities is singular)"]
        if not eom:
            return []
        err = task.get("eom_max_relative_error")
        lines = [f"{name} = {expr}" for name, expr in eom.items()]
        names = ", ".join(eom)
        return lines + [f"equation of motion from L: max error on the test rows' {names} {_num(err, '.2e')} (relative)"]
    if task.get("constant"):
        return ["H is constant: it conserves nothing (try another seed or more steps)"]
    if task.get("max_abs_cosine") is None:
        return []
    return [f"conservation of H on the test rows: max |cos(grad H, xdot)| = {_num(task['max_abs_cosine'], '.2e')}"]


def _task(summary: dict) -> list[str]:
    lines = task_lines(summary)
    if not lines:
        return []
    kind = summary["task"]["kind"]
    title = "Equation of motion" if kind == "lagrangian" else "Conserved quantity"
    return ["", f"## {title}", ""] + [f"- `{line}`" if " = " in line else f"- {line}" for line in lines]


def _candidates(formulas: dict) -> list[str]:
    lines = []
    for target, entry in formulas.items():
        rows = entry.get("candidates") or []
        if not rows:
            continue
        lines += [
            "",
            f"### Candidates for {target}",
            "",
            "| complexity | test RMSE | test R² | formula | |",
            "|---|---|---|---|---|",
        ]
        for row in rows:
            mark = "**best**" if row["is_best"] else ""
            lines.append(
                f"| {row['complexity']} | {_num(row['test_rmse'])} | {_num(row['test_r2'], '.6f')} | "
                f"{_math(row.get('latex'))}`{_cell(row['sympy'])}` | {mark} |"
            )
    return lines


def _data(summary: dict, labels: dict) -> list[str]:
    data = summary.get("data")
    if not data:
        return []
    dropped = f", {data['dropped_rows']} with NaN/inf dropped" if data["dropped_rows"] else ""
    lines = [
        "## Data",
        "",
        f"`{data['path']}` (sha256 {data['sha256'][:12]}…): {data['rows']} rows{dropped}; "
        f"{data['train_rows']} for training, {data['test_rows']} held out for testing "
        f"(test_fraction {data['test_fraction']:g}, seed {data['seed']}).",
        "",
        "| column | role | min | max | mean |",
        "|---|---|---|---|---|",
    ]
    for name, r in data["columns"].items():
        role = "target" if name in summary["targets"] else "input"
        shown = f"{name} (`{labels[name]}`)" if name in labels else name
        lines.append(f"| {_cell(shown)} | {role} | {_num(r['min'])} | {_num(r['max'])} | {_num(r['mean'])} |")
    return lines + [""]


def _symbols(labels: dict) -> list[str]:
    if not labels:
        return []
    lines = ["## Symbols", "", "Columns whose names a formula cannot use stand for these symbols:", ""]
    lines += ["| symbol | column |", "|---|---|"] + [f"| {s} | `{_cell(c)}` |" for s, c in labels.items()]
    return lines + [""]


def _edge_fits(reports, inputs: list[str]) -> list[str]:
    from kandisc.symbolic.edge_form import edge_source, edge_text, raw_params

    rows = []
    for r in (r for r in reports if r.stage == "symbolic"):
        r2 = {tuple(f["edge"]): f["r2"] for f in r.details.get("fits") or []}
        scaling = r.details.get("input_scaling")
        for e in r.details.get("edges") or []:
            key = (e["layer"], e["i"], e["j"])
            source = edge_source(e["layer"], e["i"], inputs)
            params = e["params"]
            if scaling and e["layer"] == 0:
                params = raw_params(params, scaling["mean"][e["i"]], scaling["std"][e["i"]])
            form = edge_text(e["fn"], params, source)
            rows.append(f"| {key} | {_cell(source)} | {e['fn']} | `{_cell(form)}` | {_num(r2.get(key), '.6f')} |")
    if not rows:
        return []
    return [
        "## Symbolic edges",
        "",
        "Each edge is c·f(a·x + b) + d of its input (an input column in its own units; h[l,i] is hidden "
        "node i of layer l); R² of the function's fit to the edge's spline when it was snapped.",
        "",
        "| edge (layer, in, out) | input | function | fitted form | R² |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


def _configuration(config_yaml: str | None, summary: dict) -> list[str]:
    if config_yaml is None:
        return []
    seed = (summary.get("data") or {}).get("seed")
    head = f"Seed {seed}; the" if seed is not None else "The"
    return ["", "## Configuration", "", f"{head} resolved config (`config.yaml`):", "", "```yaml"] + [
        config_yaml.rstrip("\n"),
        "```",
    ]


def _importance(tables: dict, pruned: list[str]) -> list[str]:
    lines = ["## Input importance", "", "| rank | input | score |", "|---|---|---|"]
    rows = tables["inputs"]
    lines += [f"| {row['rank']} | {row['name']} | {row['score']:.4g} |" for row in rows if not row.get("pruned")]
    at_pruning = {row["name"]: row["score"] for row in rows if row.get("pruned")}
    for name in pruned:
        score = f"{at_pruning[name]:.4g} when pruned" if name in at_pruning else "pruned"
        lines.append(f"| – | {name} | {score} |")
    return lines


def _fit_text(d: dict) -> str:
    return f"{d['steps']} steps, train RMSE {_num(d['train_rmse'])}, test RMSE {_num(d['test_rmse'])}"


def _prune_text(d: dict) -> str:
    return f"{d['shape_before']} → {d['shape_after']}, inputs removed: {', '.join(d['pruned_inputs']) or 'none'}"


def _symbolic_text(d: dict) -> str:
    return f"{d['snapped_edges']} edges snapped, {len(d['numeric_edges'])} left as splines"


STAGE_TEXT = {
    "fit": _fit_text,
    "prune": _prune_text,
    "refine": lambda d: f"grid {d['grid_before']} → {d['grid']}",
    "symbolic": _symbolic_text,
    "search": lambda d: f"formulas of every candidate merged; the model is candidate {d['winner']}'s",
    "units": lambda d: f"every formula checked against the units; {d['dropped_inconsistent']} inconsistent dropped",
}


def _stages(reports) -> list[str]:
    lines = ["## Stages", ""]
    for r in reports:
        describe = STAGE_TEXT.get(r.stage, lambda d: ", ".join(f"{k} {v}" for k, v in d.items()))
        text = describe(r.details)
        lines.append(f"- **{r.label}** ({r.status}): {text}" + (f" — {r.message}" if r.message else ""))
    return lines


def _search(summary: dict) -> list[str]:
    search = summary.get("search")
    if not search:
        return []
    lines = [
        "## Search",
        "",
        f"{len(search['candidates'])} candidates, {search['jobs']} parallel job(s), budget "
        f"{search['time_budget']:g} s, {search['seconds']:.1f} s spent; the model is candidate {search['winner']}'s."
        + (f" The search stopped early: {search['stopped_early']}." if search.get("stopped_early") else "")
        + (
            " Skipped once a formula found without a network was exact (only a model was still needed): "
            + ", ".join(f"`{name}`" for name in search["skipped"])
            + "."
            if search.get("skipped")
            else ""
        ),
        *_units(search.get("units")),
        "",
        "| candidate | network | seed | status | seconds | best formula (test R²) |",
        "|---|---|---|---|---|---|",
    ]
    for c in search["candidates"]:
        best = "; ".join(
            f"{t}: `{b['formula']}` ({_num(b['test_r2'], '.6f')})" for t, b in c["best"].items() if b.get("formula")
        )
        lines.append(
            f"| {c['name']} | {c['width']} | {c['seed']} | {c['status']} | {c['seconds']:.1f} | "
            f"{'; '.join(t for t in (best, c['message']) if t) or '–'} |"  # divide's message names its split
        )
    return lines + [""]


def _units(units: dict | None) -> list[str]:
    if not units:
        return []
    if "skipped" in units:
        return ["", f"Units: no dimensionless candidates ({units['skipped']})."]
    groups = ", ".join(f"{n} = `{g}`" for n, g in zip(units["group_names"], units["groups"], strict=True)) or "none"
    forms = "; ".join(f"`{f}`" for f in units["forms"].values())
    return [
        "",
        f"Units: dimensionless groups {groups}; law form {forms}; "
        f"{units['dropped_inconsistent']} formula(s) dropped as dimensionally inconsistent.",
    ]


def _structure(summary: dict) -> list[str]:
    """The model's separability, symmetries and tree, per target (kandisc explain shows the same)."""
    structures = summary.get("structure") or {}
    if not structures:
        return []
    lines = ["## Structure", "", "Tests on the fitted model (the surrogate of the data), as `kandisc test` runs them:"]
    lines.append("")
    for structure in structures.values():
        lines += ["```text", *structure_lines(structure), "```", ""]
    return lines


def render_report(
    run_name: str,
    summary: dict,
    tables: dict,
    formulas: dict,
    reports,
    config_yaml: str | None = None,
    labels: dict | None = None,
) -> str:
    labels = dict(labels or {})
    lines = [
        f"# kandisc run {run_name}",
        "",
        f"Inputs: {', '.join(summary['inputs'])}; targets: {', '.join(summary['targets'])}; "
        f"network {summary['shape_initial']} → {summary['shape_final']} ({summary['n_edges']} edges); "
        f"{_num(summary['wall_seconds'], '.1f')} s.",
        "",
    ]
    lines += _symbols(labels) + _results(summary) + _task(summary) + _display_formulas(formulas, labels)
    lines += _candidates(formulas) + [""] + _data(summary, labels) + _search(summary)
    lines += _importance(tables, summary.get("pruned_inputs", [])) + [""] + _structure(summary)
    lines += _edge_fits(reports, summary.get("kept_inputs") or summary["inputs"]) + _stages(reports)
    lines += _configuration(config_yaml, summary)
    if summary.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    pngs = [f for f in summary.get("figures", []) if f.endswith(".png")]
    if pngs:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in pngs]
    return "\n".join(lines) + "\n"
