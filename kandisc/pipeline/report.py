"""``report.md``: a fit run as a short document a scientist can read or paste from.

Built only from what the run already wrote into ``summary.json`` and the stage reports: results per
target, the formula candidates, input importances, the stages that ran, and the figures.
"""

from __future__ import annotations


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
                f"`{row['sympy']}` | {mark} |"
            )
    return lines


def _importance(tables: dict, pruned: list[str]) -> list[str]:
    lines = ["## Input importance", "", "| rank | input | score |", "|---|---|---|"]
    lines += [f"| {row['rank']} | {row['name']} | {row['score']:.4g} |" for row in tables["inputs"]]
    lines += [f"| – | {name} | pruned |" for name in pruned]
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
        f"{search['time_budget']:g} s, {search['seconds']:.1f} s spent; the model is candidate {search['winner']}'s.",
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


def render_report(run_name: str, summary: dict, tables: dict, formulas: dict, reports) -> str:
    lines = [
        f"# kandisc run {run_name}",
        "",
        f"Inputs: {', '.join(summary['inputs'])}; targets: {', '.join(summary['targets'])}; "
        f"network {summary['shape_initial']} → {summary['shape_final']} ({summary['n_edges']} edges); "
        f"{_num(summary['wall_seconds'], '.1f')} s.",
        "",
    ]
    lines += _results(summary) + _candidates(formulas) + [""] + _search(summary)
    lines += _importance(tables, summary.get("pruned_inputs", [])) + [""] + _stages(reports)
    if summary.get("warnings"):
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in summary["warnings"]]
    pngs = [f for f in summary.get("figures", []) if f.endswith(".png")]
    if pngs:
        lines += ["", "## Figures", ""] + [f"![{f}]({f})" for f in pngs]
    return "\n".join(lines) + "\n"
