"""End-to-end wall time of whole ``kandisc fit`` processes, and where it goes.

Runs the quickstart (``kandisc fit sample_data/quickstart.csv --config configs/quickstart.yaml``),
every other bundled example (``configs/NAME.yaml`` on ``sample_data/NAME.csv``) and, with
``--discovery``, ``benchmarks/discovery.py --quick`` as separate processes, ``--repeat`` times each,
and prints one table: median wall and CPU seconds of the process, the start-up (process wall minus
the run's own ``wall_seconds``: interpreter, imports, reading the config and data, exit), each stage,
the end of the fit (metrics and attribution, model and formula files, figures) from
``summary.json``'s ``timings``, and the formula with its held-out R² so that a faster run that finds
a worse formula shows. Start-up alone is also timed as ``kandisc --version``.

    .venv/bin/python benchmarks/end_to_end.py                         # every example, 5 runs each
    .venv/bin/python benchmarks/end_to_end.py --cases quickstart --repeat 5
    taskset -c 0 .venv/bin/python benchmarks/end_to_end.py --repeat 3 # one core (children inherit it)
    .venv/bin/python benchmarks/end_to_end.py --discovery --cases none
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/end_to_end.py --json before.json

Children get ``OMP_NUM_THREADS=1`` unless it is set; ``PYTHONPATH`` passes through, which is how to
time another checkout with the same environment. ``--json`` also writes every run's numbers.
Medians hide noise on a shared machine only partly: compare two versions interleaved, in the same
conditions, and say how loaded the machine was (``uptime`` is printed with the table).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUICKSTART = "quickstart"
END_PARTS = ("summarize", "write", "figures")  # summary.json timings after the stages, in that order


def example_cases() -> dict[str, tuple[Path, Path]]:
    """Case name -> (data CSV, config): the quickstart first, then every other bundled example."""
    configs = sorted((REPO / "configs").glob("*.yaml"), key=lambda p: (p.stem != QUICKSTART, p.stem))
    return {c.stem: (REPO / "sample_data" / f"{c.stem}.csv", c) for c in configs}


def timed(cmd: Sequence[str], env: dict, timeout: float, cwd: Path) -> tuple[float, float, int, str]:
    """(wall s, CPU s of the child and its children, exit code, stderr tail) of one process.

    ``cwd`` is never this checkout: ``python -m`` puts the working directory before ``PYTHONPATH``.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode, done.stderr[-500:]


def fit_once(python: str, data: Path, config: Path, env: dict, timeout: float) -> dict:
    """One ``kandisc fit`` process into a fresh folder: its times, stage times and formula."""
    out = Path(tempfile.mkdtemp(prefix="kandisc-e2e-"))
    try:
        cmd = [python, "-m", "kandisc", "fit", str(data), "--config", str(config), "--out", str(out / "run"), "--quiet"]
        wall, cpu, rc, err = timed(cmd, env, timeout, out)
        if rc != 0:
            return {"wall": wall, "cpu": cpu, "error": f"exit {rc}: {err.strip().splitlines()[-1:]}"}
        summary = json.loads((out / "run" / "summary.json").read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    timings = summary.get("timings") or {}
    parts: dict[str, float] = {}
    for stage in timings.get("stages", []):
        name = stage["label"].split(" ")[0]  # "fit 2 (after prune)" -> fit: one column per stage kind
        parts[name] = parts.get(name, 0.0) + stage["seconds"]
    for key in END_PARTS:
        parts[key] = timings.get(key, 0.0)
    target = summary["targets"][0]
    return {
        "wall": wall,
        "cpu": cpu,
        "startup": wall - summary["wall_seconds"],
        "parts": parts,
        "formula": summary["formulas"].get(target),
        "formula_r2": summary.get("formula_test_r2", {}).get(target),
    }


def discovery_once(python: str, jobs: int, env: dict, timeout: float) -> dict:
    """``benchmarks/discovery.py --quick`` as one process: wall, CPU and how many laws it recovered."""
    out = Path(tempfile.mkdtemp(prefix="kandisc-e2e-disc-"))
    try:
        cmd = [python, str(REPO / "benchmarks" / "discovery.py"), "--quick", "--jobs", str(jobs), "--out", str(out)]
        wall, cpu, rc, err = timed(cmd, env, timeout, out)
        if rc != 0:
            return {"wall": wall, "cpu": cpu, "error": f"exit {rc}: {err.strip().splitlines()[-1:]}"}
        rows = json.loads((out / "results.json").read_text())["results"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "wall": wall,
        "cpu": cpu,
        "laws": len(rows),
        "strict": sum(bool(r.get("strict")) for r in rows),
        "r2": sum(r.get("r2") is not None and r["r2"] >= 0.999 for r in rows),  # discovery.py's R2_PASS
    }


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def summarize_case(name: str, runs: list[dict]) -> dict:
    ok = [r for r in runs if "error" not in r]
    parts = list(dict.fromkeys(p for r in ok for p in r["parts"]))  # stage kinds as they ran, then END_PARTS
    row = {"case": name, "runs": len(runs), "failed": len(runs) - len(ok)}
    row.update({k: median(ok, k) for k in ("wall", "cpu", "startup")})
    row["parts"] = {p: statistics.median([r["parts"].get(p, 0.0) for r in ok]) for p in parts}
    formulas = {r["formula"] for r in ok}
    row["formula"] = formulas.pop() if len(formulas) == 1 else f"{len(formulas)} different"
    row["formula_r2_min"] = min((r["formula_r2"] for r in ok if r["formula_r2"] is not None), default=None)
    return row


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(rows: list[dict]) -> str:
    lines = [
        "| case | runs | wall s | CPU s | start-up s | stages and end of fit (s) | formula | min formula R² |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        parts = " · ".join(f"{k} {v:.2f}" for k, v in r.get("parts", {}).items())
        r2 = r.get("formula_r2_min")
        failed = f" ({r['failed']} failed)" if r.get("failed") else ""
        lines.append(
            f"| {r['case']} | {r['runs']}{failed} | {_s(r['wall'])} | {_s(r['cpu'])} | {_s(r.get('startup'))} "
            f"| {parts} | {'-' if r.get('formula') is None else '`' + r['formula'] + '`'} "
            f"| {'-' if r2 is None else f'{r2:.6f}'} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=None, help="example names (default: all; 'none' for no example)")
    p.add_argument("--repeat", type=int, default=5, help="processes per case; the table shows medians")
    p.add_argument("--discovery", action="store_true", help="also time benchmarks/discovery.py --quick")
    p.add_argument("--discovery-repeat", type=int, default=1, help="discovery runs (each takes minutes)")
    p.add_argument("--jobs", type=int, default=2, help="--jobs of the discovery run")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per process")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs kandisc")
    p.add_argument("--json", type=Path, default=None, help="write every run's numbers here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cases = example_cases()
    wanted = list(cases) if args.cases is None else [c for c in args.cases if c != "none"]
    unknown = [c for c in wanted if c not in cases]
    if unknown:
        sys.exit(f"error: unknown case(s) {' '.join(unknown)}; choose from {' '.join(cases)}")
    home = Path(tempfile.gettempdir())
    startup = [timed([args.python, "-m", "kandisc", "--version"], env, args.timeout, home) for _ in range(args.repeat)]
    rows = [{"case": "kandisc --version", "runs": len(startup), "wall": statistics.median(s[0] for s in startup),
             "cpu": statistics.median(s[1] for s in startup), "formula": None}]  # fmt: skip
    raw: dict[str, list[dict]] = {}
    for _ in range(args.repeat):  # round-robin, so that a burst of load spreads over every case
        for name in wanted:
            data, config = cases[name]
            raw.setdefault(name, []).append(fit_once(args.python, data, config, env, args.timeout))
    rows += [summarize_case(name, raw[name]) for name in wanted]
    if args.discovery:
        runs = [discovery_once(args.python, args.jobs, env, 3600) for _ in range(args.discovery_repeat)]
        raw["discovery --quick"] = runs
        ok = [r for r in runs if "error" not in r]
        recovered = ", ".join(f"strict {r['strict']}/{r['laws']}, R² {r['r2']}/{r['laws']}" for r in ok)
        rows.append({"case": f"discovery --quick --jobs {args.jobs}", "runs": len(runs), "failed": len(runs) - len(ok),
                     "wall": median(ok, "wall"), "cpu": median(ok, "cpu"), "formula": recovered})  # fmt: skip
    print(table(rows))
    load = os.getloadavg()
    print(f"\nload average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs; "
          f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "runs": raw}, indent=2) + "\n")


if __name__ == "__main__":
    main()
