"""Discovery benchmark: does the default ``kandisc fit`` (no config) recover AI Feynman laws?

For every law of ``feynman-dev.csv`` (id, sympy formula, variables, uniform ranges, output) and every
seed and noise level γ, the script samples ``--rows`` rows uniformly in the ranges, adds noise to the
training targets only the SRBench way (``y += N(0, γ·RMS(y))``), writes ``data.csv`` (variables, then
the output column), runs ``kandisc fit data.csv --out RUN --quiet --seed SEED --overwrite`` as a
subprocess under ``--timeout`` and scores ``RUN/summary.json``'s formula:

- strict: every float constant is rounded to 3 decimals (|c| < 1e-4 becomes 0; integers, rationals
  such as 1/2 and ``pi`` stay exact) and the rounded formula must equal the truth. Equality is
  numeric on 1000 fresh points in the ranges: max|f - t| <= 1e-9 · max|t|, and any NaN/inf/complex
  value of f where t is finite means "not equal". Rounded constants are exact decimals, so a wrong
  constant is off by >= 5e-4 and cannot pass 1e-9; float64 rounding of an equal formula stays near
  1e-15. ``sympy.simplify(f - t) == 0`` (capped at 10 s) is then tried to label a match "symbolic"
  rather than only "numeric"; the verdict does not depend on it.
- srbench: SRBench's looser rule, reported beside strict: the rounded formula minus the truth, or
  over the truth, is constant on those points (credits 0.159155*h*omega for h/(2*pi)*omega).
- r2: R² of the returned formula (not the model) on 1000 fresh clean points (another seed) >= 0.999.
- also: wall time, status (completed / failed / timeout), the formula, the model's own test R²,
  ``law_found`` from summary.json when present, and whether any candidate in ``formulas.csv`` is
  strict (a right formula that selection did not pick).

Formulas are parsed with sympy, every variable a plain ``Symbol`` so names such as ``I``, ``gamma``
and ``beta`` (the Feynman names that clash with sympy) are not read as sympy objects.

    .venv/bin/python benchmarks/discovery.py --quick --jobs 2
    .venv/bin/python benchmarks/discovery.py --max-vars 3 --noise 0 0.01 --seeds 0 1
    .venv/bin/python benchmarks/discovery.py --ids I.12.5 --extra-args="--config short.yaml"
    .venv/bin/python benchmarks/discovery.py --units --max-vars 3 --jobs 2
    .venv/bin/python benchmarks/discovery.py --summary-only A/results.csv [B/results.csv ...]

``--units`` runs only the laws of ``feynman_units.csv`` (id, variable, SI units, written from the
physics of each law; ``tests/test_units_table.py`` checks every law against its own formula) and
gives each fit its units: a ``units.yaml`` in the law's folder, passed with ``--config`` (other
settings go in ``--extra-args`` as ``--set key=value``).

Run dirs, ``results.csv`` and ``results.json`` go to ``--out`` (default ``runs/discovery/<UTC time>``,
git-ignored). A rerun into the same ``--out`` re-scores the fits recorded there (``fit.json``) instead
of fitting again; ``--refit`` fits anyway. ``--extra-args`` is one string, shlex-split and appended
to ``kandisc fit``; write it as ``--extra-args="--flag"`` when it has no space. Children get
``OMP_NUM_THREADS=1``. Laws, sampling and scoring live in ``feynman_laws.py`` beside this script.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or loaded by the tests
from feynman_laws import (  # noqa: E402
    R2_PASS,
    Law,
    candidate_strict,
    formula_r2,
    load_laws,
    load_units,
    srbench_match,
    strict_match,
    training_data,
    write_data,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LAWS = Path(__file__).resolve().parents[2] / "shared/reference/feynman-dev.csv"
DEFAULT_UNITS = Path(__file__).resolve().parent / "feynman_units.csv"
# Chosen by character, cheapest first: 2-var product, quotient, square with 1/2, a 1/(2π) constant,
# sum in a denominator; 3-var triple product, sqrt (and the clash-prone name gamma), trig,
# relativistic sqrt(1 - v²/c²); exp needs 4 variables in this list (III.4.33, Planck).
QUICK_IDS = ("I.12.5", "I.25.13", "II.8.31", "I.34.27", "II.38.14")
QUICK_IDS += ("I.14.3", "I.47.23", "I.18.12", "I.48.2", "III.4.33")
FIELDS = ("id", "n_vars", "noise", "seed", "status", "seconds", "truth", "formula", "strict")
FIELDS += ("strict_method", "srbench", "r2", "model_test_r2", "candidate_strict", "law_found", "error")


@dataclass(frozen=True)
class Task:
    law: Law
    rows: int
    seed: int
    noise: float
    out: Path
    timeout: float
    kandisc: tuple[str, ...]
    extra: tuple[str, ...] = field(default_factory=tuple)
    refit: bool = False
    units: dict[str, str] = field(default_factory=dict)  # column -> SI units; empty: no units


def select(laws: Sequence[Law], ids: Sequence[str] | None, quick: bool, max_vars: int | None) -> list[Law]:
    wanted = list(ids or []) + (list(QUICK_IDS) if quick else [])
    known = {law.id for law in laws}
    if missing := [i for i in wanted if i not in known]:
        sys.exit(f"error: unknown law id(s): {', '.join(missing)}")
    chosen = [law for law in laws if not wanted or law.id in wanted]
    return [law for law in chosen if max_vars is None or len(law.variables) <= max_vars]


# --- running --------------------------------------------------------------------------------------


def run_fit(cmd: Sequence[str], log: Path, timeout: float) -> tuple[str, float]:
    """Run one fit in its own process group, so a timeout kills every process it started.

    PYTHONSAFEPATH: ``python -m kandisc`` would otherwise put the working directory (this
    checkout, as a rule) before ``PYTHONPATH`` on ``sys.path``, and a run meant to time another
    checkout (``PYTHONPATH=/path/to/it``) would import this one's code."""
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env = os.environ | threads | {"PYTHONSAFEPATH": "1"}
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return "timeout", time.perf_counter() - start
        except BaseException:
            # Ctrl-C reaches only our process group; the fit's own session must not outlive us
            _kill_group(proc)
            raise
    return ("completed" if rc == 0 else "failed"), time.perf_counter() - start


def _kill_group(proc: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_law(task: Task) -> dict:
    law, where = task.law, task.out / "runs" / f"{task.law.id}_g{task.noise:g}_s{task.seed}"
    run = where / "run"
    status, seconds = fit_once(task, where)
    summary = _read_json(run / "summary.json") if status == "completed" else {}
    formula = (summary.get("formulas") or {}).get(law.output)
    strict, method = strict_match(formula, law, task.seed)
    return {
        "id": law.id, "n_vars": len(law.variables), "noise": task.noise, "seed": task.seed,
        "status": status, "seconds": round(seconds, 2), "truth": law.formula, "formula": formula,
        "strict": strict, "strict_method": method, "srbench": srbench_match(formula, law, task.seed),
        "r2": formula_r2(formula, law, task.seed),
        "model_test_r2": (summary.get("test_r2") or {}).get(law.output),
        "candidate_strict": candidate_strict(run, law, task.seed) if summary else None,
        "law_found": _law_found(summary, law.output), "error": _log_tail(where / "fit.log", status),
    }  # fmt: skip


def fit_once(task: Task, where: Path) -> tuple[str, float]:
    """Fit unless ``fit.json`` records an earlier fit here: a rerun into the same --out only re-scores."""
    if not task.refit and (done := _read_json(where / "fit.json")):
        return done["status"], done["seconds"]
    where.mkdir(parents=True, exist_ok=True)
    write_data(where / "data.csv", task.law, *training_data(task.law, task.rows, task.seed, task.noise))
    cmd = [*task.kandisc, "fit", str(where / "data.csv"), "--out", str(where / "run"), "--quiet", "--overwrite"]
    if task.units:
        (where / "units.yaml").write_text(units_config(task.units))
        cmd += ["--config", str(where / "units.yaml")]
    status, seconds = run_fit([*cmd, "--seed", str(task.seed), *task.extra], where / "fit.log", task.timeout)
    (where / "fit.json").write_text(json.dumps({"status": status, "seconds": seconds, "cmd": cmd}) + "\n")
    return status, seconds


def units_config(units: dict[str, str]) -> str:
    """A config holding only ``units:`` (JSON is YAML; every unit a string, "1" included)."""
    return json.dumps({"units": units}, indent=1) + "\n"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _law_found(summary: dict, target: str) -> object:
    found = summary.get("law_found")
    return found.get(target) if isinstance(found, dict) else found


def _log_tail(log: Path, status: str) -> str:
    if status != "failed":
        return ""
    lines = log.read_text(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


def run_all(tasks: Sequence[Task], jobs: int) -> list[dict]:
    results = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_law, t) for t in tasks]
        for done, fut in enumerate(as_completed(futures), 1):
            r = fut.result()
            mark = "✓" if r["strict"] else "✗"
            print(f"[{done}/{len(tasks)}] {r['id']} γ={r['noise']:g} s{r['seed']}: {r['status']} {mark} "
                  f"{r['seconds']:.0f}s", file=sys.stderr, flush=True)  # fmt: skip
            results.append(r)
    return sorted(results, key=lambda r: (r["noise"], r["seed"], r["n_vars"], r["id"]))


# --- reporting ------------------------------------------------------------------------------------


def _cut(text: object, width: int) -> str:
    s = "-" if text in (None, "") else str(text)
    return s if len(s) <= width else s[: width - 1] + "…"


def table(results: Sequence[dict]) -> str:
    head = f"{'id':<10} {'n':>2} {'γ':>6} {'s':>2} {'truth':<34} {'found':<40} {'strict':^6} {'srb':^3} "
    lines = [head + f"{'R²':>9} {'sec':>6} status"]
    for r in results:
        r2 = "-" if r["r2"] is None or np.isnan(r["r2"]) else f"{r['r2']:.6f}"
        marks = f"{_mark(r['strict']):^6} {_mark(r.get('srbench')):^3}"
        lines.append(
            f"{r['id']:<10} {r['n_vars']:>2} {r['noise']:>6g} {r['seed']:>2} {_cut(r['truth'], 34):<34} "
            f"{_cut(r['formula'], 40):<40} {marks} {r2:>9} {r['seconds']:>6.0f} {r['status']}"
        )
    return "\n".join(lines)


def _mark(ok: object) -> str:
    return "✓" if ok else "✗"


def rates(results: Sequence[dict]) -> dict:
    """Per noise level, per variable count and overall: laws, strict and R² >= 0.999 counts."""
    out: dict = {}
    for r in results:
        level = out.setdefault(f"{r['noise']:g}", {})
        for key in (str(r["n_vars"]), "all"):
            cell = level.setdefault(key, {"runs": 0, "strict": 0, "srbench": 0, "r2": 0})
            cell["runs"] += 1
            cell["strict"] += bool(r["strict"])
            cell["srbench"] += bool(r.get("srbench"))
            cell["r2"] += r["r2"] is not None and r["r2"] >= R2_PASS
    return out


def rates_text(results: Sequence[dict]) -> str:
    lines = []
    for noise, level in rates(results).items():
        lines.append(f"noise γ={noise}:  n_vars  runs  strict       srbench      R²≥{R2_PASS}")
        for key in sorted(level, key=lambda k: (k == "all", k.zfill(3))):
            c = level[key]
            cells = [_pct(c[k], c["runs"]) for k in ("strict", "srbench", "r2")]
            lines.append(f"{'':14}{key:>6}  {c['runs']:>4}  " + " ".join(f"{v:<12}" for v in cells).rstrip())
    walls = [r["seconds"] for r in results]
    if walls:
        lines.append(f"median wall {statistics.median(walls):.1f} s, total {sum(walls) / 60:.1f} min")
    return "\n".join(lines)


def _pct(k: int, n: int) -> str:
    return f"{k} ({100 * k / n:.0f}%)"


def write_results(out: Path, results: Sequence[dict], meta: dict) -> None:
    with (out / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(results)
    clean = [{k: None if isinstance(v, float) and np.isnan(v) else v for k, v in r.items()} for r in results]
    doc = {"meta": meta, "rates": rates(results), "results": clean}
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")


def read_results(path: Path) -> list[dict]:
    """results.csv back into typed rows (for --summary-only)."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["n_vars"], r["seed"] = int(r["n_vars"]), int(r["seed"])
        r["noise"], r["seconds"] = float(r["noise"]), float(r["seconds"])
        r["r2"] = float(r["r2"]) if r["r2"] not in ("", "None") else float("nan")
        r["strict"], r["srbench"] = r["strict"] == "True", r.get("srbench") == "True"
    return rows


# --- command line ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--laws", type=Path, default=DEFAULT_LAWS, help="feynman-dev.csv")
    p.add_argument("--rows", type=int, default=1000, help="rows in each data.csv")
    p.add_argument("--seed", type=int, default=None, help="one seed (default 0)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="several seeds")
    p.add_argument("--noise", type=float, nargs="+", default=[0.0], help="γ values, e.g. 0 0.001 0.01 0.1")
    p.add_argument("--jobs", type=int, default=2, help="fits in parallel")
    p.add_argument("--max-vars", type=int, default=None, help="only laws with at most N variables")
    p.add_argument("--ids", nargs="+", default=None, help="only these law ids")
    p.add_argument("--quick", action="store_true", help=f"the fixed subset {' '.join(QUICK_IDS)}")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per fit")
    p.add_argument("--out", type=Path, default=None, help="run dirs and results (default runs/discovery/<time>)")
    p.add_argument("--extra-args", default="", help="appended to kandisc fit, e.g. --extra-args='--config c.yaml'")
    p.add_argument("--kandisc", default=str(Path(sys.executable).parent / "kandisc"), help="the kandisc command")
    p.add_argument("--refit", action="store_true", help="fit again where --out already holds a fit")
    p.add_argument("--units", action="store_true", help="only laws with units in --units-table; fits get units:")
    p.add_argument("--units-table", type=Path, default=DEFAULT_UNITS, help="id,variable,units CSV")
    p.add_argument(
        "--summary-only", type=Path, nargs="+", metavar="RESULTS.csv", help="re-print saved results (merged)"
    )
    return p.parse_args(argv)


def build_tasks(args: argparse.Namespace, laws: Sequence[Law], out: Path) -> list[Task]:
    seeds = args.seeds or [0 if args.seed is None else args.seed]
    kandisc, extra = tuple(shlex.split(args.kandisc)), tuple(shlex.split(args.extra_args))
    table = load_units(args.units_table) if args.units else {}
    return [
        Task(law, args.rows, seed, noise, out, args.timeout, kandisc, extra, args.refit, table.get(law.id, {}))
        for noise in args.noise
        for seed in seeds
        for law in laws
    ]


def meta(args: argparse.Namespace, argv: Sequence[str]) -> dict:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    dirty = "+dirty" if git("status", "--porcelain", "--untracked-files=no") else ""
    return {
        "argv": list(argv), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git("rev-parse", "--short", "HEAD") + dirty, "laws": str(args.laws),
        "cpus": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()},
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.summary_only:
        results = [r for path in args.summary_only for r in read_results(path)]
        print(table(results), rates_text(results), sep="\n\n")
        return
    laws = select(load_laws(args.laws), args.ids, args.quick, args.max_vars)
    if args.units:
        if {"--config", "-c"} & set(shlex.split(args.extra_args)):
            sys.exit("error: --units passes its own --config; give other settings as --extra-args='--set key=value'")
        with_units = load_units(args.units_table)
        laws = [law for law in laws if law.id in with_units]
        if not laws:
            sys.exit(f"error: no selected law has units in {args.units_table}")
    out = args.out or REPO / "runs/discovery" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)
    results = run_all(build_tasks(args, laws, out), args.jobs)
    write_results(out, results, meta(args, sys.argv if argv is None else argv))
    print(table(results), rates_text(results), f"results: {out / 'results.csv'}", sep="\n\n")


if __name__ == "__main__":
    main()
