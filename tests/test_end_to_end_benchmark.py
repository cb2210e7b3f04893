"""benchmarks/end_to_end.py: the cases it times, and its table of medians (no process is started)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("end_to_end_benchmark", ROOT / "benchmarks" / "end_to_end.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["end_to_end_benchmark"] = bench
_spec.loader.exec_module(bench)


def _run(wall, fit, formula="x*y", r2=1.0):
    parts = {"fit": fit, "prune": 0.1, "symbolic": 1.0, "summarize": 0.1, "write": 0.2, "figures": 0.5}
    return {"wall": wall, "cpu": wall - 1, "startup": 1.0, "parts": parts, "formula": formula, "formula_r2": r2}


def test_cases_are_the_quickstart_then_every_bundled_example():
    cases = bench.example_cases()
    assert list(cases)[0] == "quickstart"
    assert set(cases) == {p.stem for p in (ROOT / "configs").glob("*.yaml")}
    assert all(data.is_file() and config.is_file() for data, config in cases.values())


def test_a_case_reports_medians_and_shows_a_formula_that_changed():
    runs = [_run(3.0, 2.0), _run(9.0, 8.0), _run(4.0, 3.0), {"wall": 1.0, "cpu": 1.0, "error": "exit 2"}]
    row = bench.summarize_case("product", runs)
    assert (row["wall"], row["cpu"], row["failed"]) == (4.0, 3.0, 1)  # medians of the 3 that finished
    assert list(row["parts"]) == ["fit", "prune", "symbolic", "summarize", "write", "figures"]
    assert row["parts"]["fit"] == 3.0 and row["formula"] == "x*y"
    line = bench.table([row]).splitlines()[-1]
    assert line.startswith("| product | 4 (1 failed) | 4.00 | 3.00 | 1.00 | fit 3.00 · prune 0.10 ·")
    assert line.endswith("| `x*y` | 1.000000 |")
    worse = bench.summarize_case("product", [_run(3.0, 2.0), _run(3.0, 2.0, "x*y + 0.01", 0.99)])
    assert worse["formula"] == "2 different" and worse["formula_r2_min"] == 0.99
