"""report.md says what the run found (formula, R², candidates, importances, stages), and a run
writes exactly the files the run-directory contract lists."""

import json

import numpy as np
from typer.testing import CliRunner

from kandisc.cli import app
from kandisc.io.rundir import RUN_DIRS, RUN_FILES
from kandisc.pipeline.report import render_report
from kandisc.pipeline.state import StageReport

SUMMARY = {
    "inputs": ["x", "y", "z"],
    "targets": ["f", "g"],
    "test_r2": {"f": 0.99999912, "g": float("nan")},
    "test_rmse": {"f": 1.25e-4, "g": 0.5},
    "train_rmse": {"f": 1.0e-4, "g": None},
    "formulas": {"f": "x*y", "g": None},
    "formula_test_r2": {"f": 0.99999912, "g": None},
    "formula_test_rmse": {"f": 1.25e-4, "g": None},
    "accept_r2": 0.999,
    "law_found": False,
    "law_found_per_target": {"f": True, "g": False},
    "shape_initial": [3, 5, 2],
    "shape_final": [2, 1, 2],
    "n_edges": 4,
    "wall_seconds": 2.25,
    "pruned_inputs": ["z"],
    "warnings": ["1 edge(s) stayed splines"],
    "figures": ["figures/loss.png", "figures/loss.pdf"],
}
TABLES = {"inputs": [{"name": "x", "score": 0.75, "rank": 1}, {"name": "y", "score": 0.5, "rank": 2}]}
FORMULAS = {
    "f": {
        "candidates": [
            {"complexity": 3, "test_rmse": 1.25e-4, "test_r2": 0.99999912, "sympy": "x*y", "is_best": True},
            {"complexity": 1, "test_rmse": 0.3, "test_r2": 0.5, "sympy": "x", "is_best": False},
        ]
    }
}
REPORTS = [
    StageReport("fit", "fit 1", details={"steps": 40, "train_rmse": 0.01, "test_rmse": 0.02}),
    StageReport(
        "prune", "prune", details={"shape_before": [3, 5, 2], "shape_after": [2, 1, 2], "pruned_inputs": ["z"]}
    ),
    StageReport("refine", "refine G=10", details={"grid_before": 5, "grid": 10}),
    StageReport("symbolic", "symbolic", "ok", {"snapped_edges": 3, "numeric_edges": [{"edge": [0, 1, 0]}]}, "note"),
]


def test_report_sections_and_tables():
    lines = render_report("run7", SUMMARY, TABLES, FORMULAS, REPORTS).splitlines()
    assert lines[0] == "# kandisc run run7"
    assert lines[2] == "Inputs: x, y, z; targets: f, g; network [3, 5, 2] → [2, 1, 2] (4 edges); 2.2 s."
    results = lines.index("## Results")
    assert lines[results + 4] == "| f | yes | 0.999999 | 0.000125 | 0.999999 | `x*y` |"
    # g: no formula, the network's R² undefined
    assert lines[results + 5] == "| g | no (approximation) | – | – | – | (no formula: edges stayed splines) |"
    assert "No formula reached test R² 0.999 for every target" in lines[results + 7]
    candidates = lines.index("### Candidates for f")
    assert lines[candidates + 4] == "| 3 | 0.000125 | 0.999999 | `x*y` | **best** |"
    assert lines[candidates + 5] == "| 1 | 0.3 | 0.500000 | `x` |  |"
    importance = lines.index("## Input importance")
    assert lines[importance + 4 : importance + 7] == ["| 1 | x | 0.75 |", "| 2 | y | 0.5 |", "| – | z | pruned |"]
    stages = lines.index("## Stages")
    assert lines[stages + 2 : stages + 6] == [
        "- **fit 1** (ok): 40 steps, train RMSE 0.01, test RMSE 0.02",
        "- **prune** (ok): [3, 5, 2] → [2, 1, 2], inputs removed: z",
        "- **refine G=10** (ok): grid 5 → 10",
        "- **symbolic** (ok): 3 edges snapped, 1 left as splines — note",
    ]
    assert "- 1 edge(s) stayed splines" in lines
    assert lines[-1] == "![figures/loss.png](figures/loss.png)"  # PNGs only


def test_a_run_reports_its_formula_and_writes_the_listed_files(example_run):
    out, _, _ = example_run("product")  # configs/product.yaml, figures off
    summary = json.loads((out / "summary.json").read_text())
    report = (out / "report.md").read_text().splitlines()
    assert summary["formulas"]["f"] == "x*y"
    row = f"| f | yes | {summary['formula_test_r2']['f']:.6f} | "
    assert any(line.startswith(row) and line.endswith("| `x*y` |") for line in report)
    assert summary["law_found"] is True and summary["search"] is None
    stages = report[report.index("## Stages") + 2 :]
    assert [line.split("**")[1] for line in stages[:4]] == ["fit 1", "prune", "fit 2 (after prune)", "symbolic"]
    fit_1_steps = sum(line.split(",")[1] == "fit 1" for line in (out / "metrics.csv").read_text().splitlines()[1:])
    assert 0 < fit_1_steps <= 40  # the plateau rule may end the stage before its budget
    assert stages[0].startswith(f"- **fit 1** (ok): {fit_1_steps} steps, train RMSE ")
    assert "edges snapped, 0 left as splines" in stages[3]
    written = {p.name for p in out.iterdir()}
    assert written == set(RUN_FILES) | {"formulas"}  # figures off, no checkpoints
    assert set(RUN_DIRS) >= written - set(RUN_FILES)


def test_a_fit_writes_the_models_structure_into_summary_and_report(tmp_path):
    """a·exp(b)·c: multiplicative {a} | {b} | {c}, not additive; the same in report.md."""
    rng = np.random.default_rng(0)
    a, b, c = rng.uniform(1, 3, (3, 300))
    data = tmp_path / "mul.csv"
    data.write_text(
        "a,b,c,y\n" + "\n".join(f"{p},{q},{r},{p * np.exp(q) * r}" for p, q, r in zip(a, b, c, strict=True))
    )
    run = tmp_path / "run"
    result = CliRunner().invoke(
        app, ["fit", str(data), "--out", str(run), "--jobs", "1", "--set", "output.figures=false"]
    )
    assert result.exit_code == 0, result.stderr
    structure = json.loads((run / "summary.json").read_text())["structure"]["y"]
    assert structure["multiplicative"] == [["a"], ["b"], ["c"]] and structure["additive"] == [["a", "b", "c"]]
    report = (run / "report.md").read_text()
    assert "## Structure" in report and "multiplicative: {a} | {b} | {c}" in report
