"""Fuzz findings (issue 18) on configs, data, formulas and the command line, grouped by cause.

Every case is one bad input from /work/shared/reference/fuzz-findings.md, run through the real CLI
(typer's runner, in-process). Each must now be refused at validation: exit 2, exactly one stderr
line that says what is wrong, and no run directory, model or output file left behind. The ids are
the fuzzer's. Model files, file systems, signals and Slurm scripts have their own test files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from kandisc.cli import app

runner = CliRunner()
BASE = "pipeline:\n  - fit: {steps: 2}\noutput: {figures: false}\n"


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A folder with data.csv (x, y -> f) to run commands in."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 40), rng.uniform(-1, 1, 40)
    pd.DataFrame({"x": x, "y": y, "f": x * y + np.sin(y)}).to_csv(tmp_path / "data.csv", index=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kandisc(*args: str):
    return runner.invoke(app, list(args))


def assert_refused(result, *needles: str, code: int = 2) -> str:
    """Exit ``code`` with one stderr line holding every needle; returns that line."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, (result.exit_code, result.stderr, result.stdout)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def fit_refused(work, config: str, *needles: str, extra: tuple[str, ...] = ("--quiet",)) -> None:
    (work / "c.yaml").write_text(config)
    res = kandisc("fit", "data.csv", "--config", "c.yaml", "--out", "new_run", *extra)
    assert_refused(res, *needles)
    assert not (work / "new_run").exists()  # refused before the run directory exists


# ------------------------------------------------------------------ configs: limits and finiteness

CONFIG_CASES = {
    # hang: width_hidden_1e5; tracebacks: grid 1e12 / 1e5 / 1e30, refine 1e7, mult_arity 1e6
    "yaml.range.width_hidden_1e5": ("model: {width: [2, 100000, 1]}\n", "at most 1000 per layer"),
    "yaml.range.grid_1e12": (f"model: {{grid: {10**12}}}\n", "model.grid: out of range"),
    "yaml.range.grid_1e5": ("model: {grid: 100000}\n", "model.grid: out of range"),
    "yaml.range.grid_1e30": (f"model: {{grid: {10**30}}}\n", "model.grid: out of range"),
    "yaml.range.refine_huge": ("pipeline:\n  - refine: {grid: 10000000}\n", "grid: out of range"),
    "yaml.range.arity_huge": ("model: {width: [2, [1, 1], 1], mult_arity: 1000000}\n", "at most 32"),
    # Cholesky tracebacks: infinite or overflowing ranges
    "yaml.range.grid_range_inf": ("model: {grid_range: [-.inf, .inf]}\n", "model.grid_range", "finite"),
    "yaml.range.grid_range_1e308": ("model: {grid_range: [-1e308, 1e308]}\n", "model.grid_range", "within"),
    "yaml.range.noise_inf": ("model: {noise_scale: .inf}\n", "model.noise_scale", "out of range"),
    # Overflow when unpacking long (torch's seed)
    "yaml.range.seed_2_64": (f"seed: {2**64}\n", "seed: out of range"),
    "yaml.range.seed_2_200": (f"seed: {2**200}\n", "seed: out of range"),
    # mult_arity per layer that does not fit the width (engine ValueError / modules IndexError)
    "yaml.range.arity_list_len": (
        "model: {width: [2, [2, 1], 1], mult_arity: [[], [2], [], []]}\n",
        "model.mult_arity",
    ),
    "yaml.range.arity_list_short": ("model: {width: [2, [2, 1], 1], mult_arity: [[2]]}\n", "model.mult_arity"),
    "yaml.range.arity_list_len_modules": (
        "model: {width: [2, [2, 1], 1], mult_arity: [[], [2, 2], []]}\nmodules: ['0: [0]->[0]']\n",
        "model.mult_arity",
    ),
    # opt lm on a model too big for it: refused before the stages before it ran
    "yaml.range.lm_too_big": (
        "model: {width: [2, 30, 1], grid: 50}\npipeline:\n  - fit: {steps: 2, opt: lm}\n",
        "opt lm",
        "3000",
    ),
    "yaml.range.formats_empty": (
        "output: {figures: true, formats: []}\npipeline:\n  - fit: {steps: 2}\n",
        "output.formats is empty",
    ),
    # malformed YAML that PyYAML parses but Python cannot hold
    "yaml.malformed.deep_nesting": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    "yaml.malformed.huge_int": ("seed: " + "9" * 5000 + "\n", "cannot be read"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_limits(work, case) -> None:
    text, *needles = CONFIG_CASES[case]
    fit_refused(work, text if "pipeline" in text else text + BASE, *needles)


def test_lm_too_big_without_quiet_fails_before_any_progress(work) -> None:
    """yaml.opt.no_progress_late_error: the error came after the first stages had run."""
    text, *needles = CONFIG_CASES["yaml.range.lm_too_big"]
    fit_refused(work, text, *needles, extra=())


def test_huge_seed_flag(work) -> None:
    """yaml.opt.seed_huge."""
    (work / "c.yaml").write_text(BASE)
    res = kandisc("fit", "data.csv", "-c", "c.yaml", "--out", "new_run", "-q", "--seed", "9" * 23)
    assert_refused(res, "seed: out of range")


@pytest.mark.parametrize(("key", "value"), [("inputs", "5"), ("targets", "5")])
def test_config_show_refuses_a_number_for_column_names(work, key, value) -> None:
    """show.type.data_inputs.0 / show.type.data_targets.0."""
    (work / "c.yaml").write_text(f"data: {{{key}: {value}}}\n")
    assert_refused(kandisc("config", "show", "--config", "c.yaml"), f"data.{key}", "['5']")


# ------------------------------------------------------------------ formulas: exponents, constants, priors

FORMULA_CASES = {
    "aux.x_pow_2_100": ("auxiliary: {z: 'x**(2**100)'}\n", "too large"),
    "aux.huge_const": ("auxiliary: {z: '10**400*x'}\n", "beyond"),
    "prior.x_pow_2_100": ("prior: 'x**(2**100)'\n", "too large"),
    "prior.x_pow_1e9": ("prior: 'x**1e9'\n", "too large"),
    "prior.log_neg_x": ("prior: 'log(-2-x*x)'\n", "NaN/inf on 40 of 40 data rows"),
    "prior.constant_only": ("prior: '2*pi'\n", "constant 2*pi", "uses none of the inputs"),
    "prior.x_minus_x": ("prior: 'x-x'\n", "constant 0", "uses none of the inputs"),
}


@pytest.mark.parametrize("case", list(FORMULA_CASES))
def test_formulas_in_configs(work, case) -> None:
    text, *needles = FORMULA_CASES[case]
    fit_refused(work, text + BASE, *needles)


@pytest.mark.parametrize(
    ("case", "formula", "needle"),
    [("compile.x_pow_2_100", "x**(2**100)", "too large"), ("compile.x_pow_1e9", "x**1e9", "too large")],
)
def test_compile_refuses_huge_powers(work, case, formula, needle) -> None:
    assert_refused(kandisc("compile", formula, "--out", "m.pt"), needle)
    assert not (work / "m.pt").exists()


@pytest.mark.parametrize("names", ["x,y,not a name", "x,1y", "x,y,x", "x,__class__"])
def test_compile_refuses_bad_variable_names(work, names) -> None:
    """compile.vars_bad_name."""
    assert_refused(kandisc("compile", "x*y", "--variables", names, "--out", "m.pt"), "--variables")
    assert not (work / "m.pt").exists()


# ------------------------------------------------------------------ CSV data


def _write(work, text: str | bytes) -> None:
    path = work / "bad.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def _rows(n: int = 40, scale: float = 1.0, sign: bool = False) -> str:
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    f = x * y + y
    if sign:
        x, y, f = np.sign(x) * scale, np.sign(y) * scale, np.where(f > 0, scale, -scale)
    else:
        x = x * scale
    return "x,y,f\n" + "".join(f"{float(a)!r},{float(b)!r},{float(c)!r}\n" for a, b, c in zip(x, y, f, strict=True))


@pytest.mark.parametrize(
    ("case", "text", "standardize", "needle"),
    [
        ("csv.nul_header", _rows().replace("x,y,f", "x\x00,y,f", 1), False, "control character"),
        ("csv.huge_1e308_input", _rows(scale=1e308), False, "overflows float64"),
        ("csv.huge_all_std", _rows(scale=1e308, sign=True), True, "overflows float64"),
    ],
    ids=["csv.nul_header", "csv.huge_1e308_input", "csv.huge_all_std"],
)
def test_bad_csv(work, case, text, standardize, needle) -> None:
    _write(work, text)
    (work / "c.yaml").write_text(f"data: {{standardize: {str(standardize).lower()}}}\n" + BASE)
    res = kandisc("fit", "bad.csv", "--config", "c.yaml", "--out", "guard_run", "--quiet")
    assert_refused(res, "bad.csv", needle)
    assert not (work / "guard_run").exists()


def test_old_mac_line_endings_are_read(work) -> None:
    """csv.cr_only: a traceback before; rows separated by CR alone now read like any others."""
    _write(work, _rows().replace("\n", "\r"))
    (work / "c.yaml").write_text(BASE)
    res = kandisc("fit", "bad.csv", "--config", "c.yaml", "--out", "guard_run", "--quiet")
    assert res.exit_code == 0, res.output
    assert '"inputs": [\n    "x",\n    "y"\n  ]' in (work / "guard_run" / "summary.json").read_text()


# ------------------------------------------------------------------ typer usage errors: one line


@pytest.mark.parametrize(
    ("case", "args", "needle"),
    [
        ("yaml.opt.seed_abc", ["fit", "data.csv", "--seed", "abc"], "Invalid value for '--seed'"),
        ("yaml.opt.unknown_option", ["fit", "data.csv", "--frobnicate"], "No such option: --frobnicate"),
        ("yaml.opt.no_data_arg", ["fit", "--quiet"], "Missing argument 'data'"),
        ("compile.deep_unary_10000", ["compile", "-" * 10000 + "x", "--out", "m.pt"], "goes after '--'"),
        ("compile.no_formula", ["compile"], "Missing argument 'formula'"),
        ("compile.option_like_formula", ["compile", "--", "-x", "--out", "m.pt"], "unexpected extra argument"),
        ("batch.run_one.idx_abc", ["batch", "run-one", "b", "--index", "abc"], "Invalid value for '--index'"),
    ],
    ids=lambda v: v if isinstance(v, str) and "." in v and len(v) < 40 else "",
)
def test_usage_errors_are_one_line(work, case, args, needle) -> None:
    line = assert_refused(kandisc(*args), needle, "--help")
    assert line.startswith("error: ") and len(line) < 500
    assert not (work / "m.pt").exists()


def test_a_deeply_nested_formula_after_dashdash_is_refused(work) -> None:
    assert_refused(kandisc("compile", "--out", "m.pt", "--", "-" * 10000 + "x"), "nested too deeply")


# ------------------------------------------------------------------ found by fuzzing again (same groups)

NEW_CASES = {
    "threads_huge": ("threads: 1000000\n", "threads: out of range"),  # libgomp aborted (segfault)
    "edges_1e6": ("model: {width: [2, 1000, 1000, 1]}\n", "1003000 edges"),  # trained for ever
    "prior_extra_width_huge": ("prior: {formula: 'x*y', extra_width: 1000000}\n", "prior.extra_width"),
    "prior_extra_depth_huge": ("prior: {formula: 'x*y', extra_depth: 100000}\n", "prior.extra_depth"),  # hang
    "power_combined_by_sympy": ("auxiliary: {z: '(x**50)**50'}\n", "x**2500"),
}


@pytest.mark.parametrize("case", list(NEW_CASES))
def test_new_config_limits(work, case) -> None:
    text, *needles = NEW_CASES[case]
    fit_refused(work, text + BASE, *needles)


@pytest.mark.parametrize("target", ["data.csv", "m.pt", "./data.csv"])
def test_predict_never_writes_over_its_inputs(work, target) -> None:
    """predict -o DATA --overwrite replaced the data (and -o MODEL the model) with predictions."""
    assert kandisc("compile", "x*y", "--out", "m.pt").exit_code == 0
    before = {p: (work / p).read_bytes() for p in ("data.csv", "m.pt")}
    assert_refused(kandisc("predict", "m.pt", "data.csv", "-o", target, "--overwrite"), "itself")
    assert {p: (work / p).read_bytes() for p in before} == before


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        (f"data: data.csv\nseeds: [{2**64}]\n", "seeds[0]"),  # planned, then every row failed
        (
            "data: data.csv\nsweep: {model.grid: ["
            + ", ".join(map(str, range(1, 201)))
            + "]}\nseeds: "
            + str(list(range(101)))
            + "\n",
            "20200 fits",
        ),  # spent minutes validating sweep points
    ],
    ids=["seed_2_64", "sweep_too_big"],
)
def test_new_sweep_spec_limits(work, spec, needle) -> None:
    (work / "spec.yaml").write_text(spec)
    assert_refused(kandisc("batch", "plan", "spec.yaml", "--out", "b"), needle)
    assert not (work / "b").exists()


def test_training_memory_is_checked_against_the_free_memory() -> None:
    """width: [2, 100000, 1] hung; a shape within the caps can still need more memory than is free."""
    from kandisc.errors import ConfigError
    from kandisc.io.config import load_config
    from kandisc.io.sizes import check_size, training_memory

    cfg = load_config(None, ["model.grid=100"])
    need = training_memory(cfg, [2, 900, 1], 5000)
    with pytest.raises(ConfigError, match=r"needs about \d+\.\d GiB of memory to train, more than the 0\.5 GiB free"):
        check_size(cfg, [2, 900, 1], 5000, available=2**29)
    check_size(cfg, [2, 900, 1], 5000, available=need + 1)
