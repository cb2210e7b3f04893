"""AI Feynman laws for the discovery benchmark: loading, sampling with SRBench noise, formula scoring.

Scoring rules (strict, srbench, R²) are stated in ``discovery.py``'s docstring; this module is the
part with no subprocesses, so the tests exercise it directly.
"""

from __future__ import annotations

import csv
import signal
import sys
import tokenize
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr

ROUND_DECIMALS, ZERO_BELOW, REL_TOL, R2_PASS = 3, 1e-4, 1e-9, 0.999
N_CHECK, SIMPLIFY_CAP_S = 1000, 10.0
PARSE_ERRORS = (SyntaxError, TypeError, ValueError, tokenize.TokenError, sp.SympifyError)


@dataclass(frozen=True)
class Law:
    id: str
    formula: str
    variables: tuple[str, ...]
    ranges: tuple[tuple[float, float], ...]
    output: str


def load_laws(path: Path) -> list[Law]:
    if not path.is_file():
        sys.exit(f"error: laws file {path} not found; pass --laws PATH (a feynman-dev.csv)")
    with path.open(newline="") as fh:
        return [_law(row) for row in csv.DictReader(fh)]


def _law(row: dict[str, str]) -> Law:
    pairs = tuple(tuple(float(v) for v in pair.split(",")) for pair in row["ranges"].split())
    variables = tuple(row["variables"].split())
    if len(pairs) != len(variables):
        raise ValueError(f"{row['id']}: {len(variables)} variables but {len(pairs)} ranges")
    return Law(row["id"], row["formula"], variables, pairs, row["output"])


def load_units(path: Path) -> dict[str, dict[str, str]]:
    """``feynman_units.csv`` (id, variable, units): law id -> variable (and output) -> SI units."""
    if not path.is_file():
        sys.exit(f"error: units table {path} not found; pass --units-table PATH")
    table: dict[str, dict[str, str]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            table.setdefault(row["id"], {})[row["variable"]] = row["units"]
    return table


# --- sampling -------------------------------------------------------------------------------------


def rng_for(law: Law, seed: int, stream: int) -> np.random.Generator:
    """Independent streams per (seed, law, purpose) so results do not depend on the order of laws."""
    return np.random.default_rng([seed, zlib.crc32(law.id.encode()), stream])


def sample(law: Law, rows: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = np.array(law.ranges).T
    return rng.uniform(lo, hi, size=(rows, len(law.variables)))


def add_noise(y: np.ndarray, gamma: float, rng: np.random.Generator) -> np.ndarray:
    """SRBench target noise: Gaussian with standard deviation γ times the RMS of the clean target."""
    if gamma == 0:
        return y.copy()
    return y + rng.normal(0.0, gamma * float(np.sqrt(np.mean(y**2))), size=y.shape)


def training_data(law: Law, rows: int, seed: int, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    x = sample(law, rows, rng_for(law, seed, 0))
    y = evaluate(parse(law.formula, law.variables), law.variables, x)
    return x, add_noise(y, gamma, rng_for(law, seed, 3))


def write_data(path: Path, law: Law, x: np.ndarray, y: np.ndarray) -> None:
    header = ",".join((*law.variables, law.output))
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=header, comments="", fmt="%.17g")


# --- scoring --------------------------------------------------------------------------------------


def parse(text: str, variables: Sequence[str]) -> sp.Expr:
    """Every variable a plain Symbol: ``I``, ``gamma``, ``beta``, ``E``... must not become sympy objects."""
    return parse_expr(text, local_dict={name: sp.Symbol(name) for name in variables})


def round_constants(expr: sp.Expr) -> sp.Expr:
    """Floats to exact 3-decimal rationals (tiny ones to 0); integers, rationals and pi untouched."""
    mapping = {}
    for c in expr.atoms(sp.Float):
        value = 0.0 if abs(float(c)) < ZERO_BELOW else round(float(c), ROUND_DECIMALS)
        mapping[c] = sp.Rational(f"{value:.{ROUND_DECIMALS}f}")
    return expr.xreplace(mapping)


def evaluate(expr: sp.Expr, variables: Sequence[str], x: np.ndarray) -> np.ndarray:
    """float64 values on the rows of x; complex results become NaN (not a real-valued law)."""
    symbols = [sp.Symbol(v) for v in variables]
    if not expr.free_symbols <= set(symbols):
        return np.full(x.shape[0], np.nan)  # a name that is no column: scores as not found
    fn = sp.lambdify(symbols, expr, "numpy")
    try:
        with np.errstate(all="ignore"):
            raw = np.asarray(fn(*x.T))
    except (NameError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        # a sympy object numpy cannot take: scores as not found
        return np.full(x.shape[0], np.nan)
    if np.iscomplexobj(raw):
        raw = np.where(raw.imag == 0, raw.real, np.nan)
    return np.broadcast_to(raw.astype(float), (x.shape[0],)).copy()


def numerically_equal(f: np.ndarray, t: np.ndarray) -> bool:
    keep = np.isfinite(t)
    if not keep.any() or not np.isfinite(f[keep]).all():
        return False
    return float(np.max(np.abs(f[keep] - t[keep]))) <= REL_TOL * float(np.max(np.abs(t[keep])))


@contextmanager
def time_cap(seconds: float) -> Iterator[None]:
    """SIGALRM cap for sympy calls that can run for minutes; a no-op off the main thread."""
    try:
        previous = signal.signal(signal.SIGALRM, _raise_timeout)
    except ValueError:
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _raise_timeout(signum, frame) -> None:
    raise TimeoutError


def simplifies_to_zero(expr: sp.Expr, cap: float = SIMPLIFY_CAP_S) -> bool:
    try:
        with time_cap(cap):
            return sp.simplify(expr) == 0
    except (TimeoutError, RecursionError, TypeError, ValueError):
        return False


def strict_match(formula: str | None, law: Law, seed: int) -> tuple[bool, str]:
    """(equal, method): method is symbolic, numeric, unparsable or '' when not equal."""
    checked = _rounded_on_points(formula, law, seed)
    if isinstance(checked, str):
        return False, checked
    f, truth, fv, tv = checked
    if not numerically_equal(fv, tv):
        return False, ""
    return True, "symbolic" if simplifies_to_zero(_positive(f - truth, law)) else "numeric"


def srbench_match(formula: str | None, law: Law, seed: int) -> bool:
    """SRBench's looser rule: the rounded formula differs from the truth by a constant term or factor.

    It credits a right structure whose constant is not a 3-decimal number, such as 0.159155 = 1/(2π).
    """
    checked = _rounded_on_points(formula, law, seed)
    if isinstance(checked, str):
        return False
    _, _, fv, tv = checked
    keep = np.isfinite(tv) & (tv != 0)
    if not keep.any() or not np.isfinite(fv[keep]).all():
        return False
    offset, ratio = fv[keep] - tv[keep], fv[keep] / tv[keep]
    scale = float(np.max(np.abs(tv[keep])))
    if float(np.ptp(offset)) <= REL_TOL * scale:
        return True
    return float(np.mean(ratio)) != 0 and float(np.ptp(ratio)) <= REL_TOL * abs(float(np.mean(ratio)))


def _rounded_on_points(formula: str | None, law: Law, seed: int) -> tuple | str:
    """(rounded formula, truth, their values on the check points), or why there is nothing to check."""
    if not formula:
        return ""
    try:
        f = round_constants(parse(formula, law.variables))
    except PARSE_ERRORS:
        return "unparsable"
    truth = parse(law.formula, law.variables)
    x = sample(law, N_CHECK, rng_for(law, seed, 2))
    return f, truth, evaluate(f, law.variables, x), evaluate(truth, law.variables, x)


def _positive(expr: sp.Expr, law: Law) -> sp.Expr:
    """Variables whose range is above 0 as positive symbols, so simplify may join sqrt(a)*sqrt(b)."""
    return expr.xreplace(
        {
            sp.Symbol(v): sp.Symbol(v, positive=True)
            for v, (lo, _) in zip(law.variables, law.ranges, strict=True)
            if lo > 0
        }
    )


def formula_r2(formula: str | None, law: Law, seed: int) -> float:
    """R² of the formula on fresh clean points; NaN when it is absent, unparsable or not finite."""
    if not formula:
        return float("nan")
    try:
        f = parse(formula, law.variables)
    except PARSE_ERRORS:
        return float("nan")
    x = sample(law, N_CHECK, rng_for(law, seed, 1))
    t, p = evaluate(parse(law.formula, law.variables), law.variables, x), evaluate(f, law.variables, x)
    if not np.isfinite(p).all():
        return float("nan")
    return float(1.0 - np.sum((t - p) ** 2) / np.sum((t - np.mean(t)) ** 2))


def candidate_strict(run: Path, law: Law, seed: int) -> bool | None:
    """Whether any Pareto candidate (not only the chosen formula) is strictly the law."""
    path = run / "formulas.csv"
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("target") == law.output]
    return any(strict_match(r.get("sympy"), law, seed)[0] for r in rows)
