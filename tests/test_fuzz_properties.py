"""Property-based fuzzing (issue 19) of what a user hands kandisc: formulas, YAML, CSV, model files.

Whatever the input, the contract holds: exit 0 or 2; on 2 exactly one stderr line and no new file;
never a traceback; no file that existed before is changed. Every case runs in-process through
typer's runner (no subprocess per case). The normal suite runs a few hundred derandomised cases
in seconds; ``KANDISC_FUZZ_EXAMPLES=5000`` runs that many random cases per property instead.
"""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import typer.testing
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kandisc.cli import app
from kandisc.io.model_checks import checksum

runner = CliRunner()
_MANY = int(os.environ.get("KANDISC_FUZZ_EXAMPLES", "0"))
_names = itertools.count()


def budget(examples: int):
    """Hypothesis settings: ``examples`` derandomised cases, or KANDISC_FUZZ_EXAMPLES random ones."""
    return settings(
        max_examples=_MANY or examples,
        derandomize=not _MANY,
        deadline=None,
        database=None,  # no .hypothesis folder in the repository
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# ------------------------------------------------------------------ the contract


def snapshot(case: Path) -> dict[Path, bytes]:
    """Every file of the case's folder and the shared inputs beside it (not the other cases')."""
    shared = [p for p in case.parent.iterdir() if p.is_file()]
    return {p: p.read_bytes() for p in [*shared, *case.rglob("*")] if p.is_file()}


def holds_contract(case: Path, *args: str) -> int:
    """Run ``kandisc args`` (its inputs and outputs in ``case``); assert the contract; return the exit code."""
    before = snapshot(case)
    result = runner.invoke(app, list(args))
    shown = f"kandisc {' '.join(map(repr, args))}\n{result.output[-800:]}"
    assert result.exit_code in (0, 2), f"{shown}\n{result.exc_info!r}"
    assert "Traceback" not in result.output, shown
    after = snapshot(case)
    assert {p: after.get(p) for p in before} == before, f"a file that existed was changed: {shown}"
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), shown
        assert set(after) == set(before), f"a refused command left files: {shown}"
    return result.exit_code


@pytest.fixture(scope="module", autouse=True)
def built_once():
    """typer's runner rebuilds the whole command tree on every call (most of a refused case's
    time); the tree does not change, so build it once for this module."""
    command = typer.testing._get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda _app: command)
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """data.csv (x, y -> f), a fast config and a real model file, shared by every case."""
    path = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 30), rng.uniform(-1, 1, 30)
    pd.DataFrame({"x": x, "y": y, "f": x * y + np.sin(y)}).to_csv(path / "data.csv", index=False)
    fast = "model: {width: [2, 1], grid: 3}\npipeline: [{fit: {steps: 1}}]\noutput: {figures: false}\n"
    (path / "fast.yaml").write_text(fast)
    assert runner.invoke(app, ["compile", "x*y + sin(x)", "--out", str(path / "model.pt")]).exit_code == 0
    return path


def new_case(folder: Path) -> Path:
    """A folder of its own for one case's inputs and outputs: the snapshots stay small."""
    case = folder / f"case{next(_names)}"
    case.mkdir()
    return case


# ------------------------------------------------------------------ formulas

TOKENS = ["x", "y", "z", "1", "2.5", "1e9", "2**100", "-", "+", "*", "/", "**", "(", ")", ",", " ", "pi", "E"]
TOKENS += ["sin", "exp", "log", "sqrt", "abs", "arcsin", "__import__", "os", ".", "[", "]", "lambda", "'", "0"]
formulas = st.one_of(st.lists(st.sampled_from(TOKENS), max_size=14).map("".join), st.text(max_size=20))


@budget(150)
@given(text=formulas)
def test_compile_any_formula(folder, text):
    case = new_case(folder)
    holds_contract(case, "compile", "--out", str(case / "c.pt"), "--", text)


# ------------------------------------------------------------------ YAML configs

KEYS = ["seed", "data", "model", "modle", "pipeline", "output", "search", "prior", "auxiliary", "modules", "units"]
SUBKEYS = ["grid", "width", "k", "mult_arity", "grid_range", "noise_scale", "inputs", "targets", "test_fraction"]
SUBKEYS += ["figures", "formats", "checkpoints", "time_budget", "steps", "fit", "formula", "dtype", "base_fun"]
scalars = st.one_of(
    st.integers(-3, 12),
    st.sampled_from([10**12, 2**64, -(2**70), 0.0, -1.5, float("inf"), float("nan"), 1e308]),
    st.sampled_from(["x", "y", "f", "", "x**1e9", "log(-2-x*x)", "float32", "silu", "png", "0: [0]->[0]"]),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(SUBKEYS), inner, max_size=3),
    max_leaves=8,
)
configs = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)


def config_text(mapping: dict, cut: int) -> str:
    text = yaml.safe_dump(mapping, default_flow_style=True)
    return text[: len(text) - cut] if cut else text  # a cut file is malformed YAML


@budget(150)
@given(mapping=configs, cut=st.integers(0, 3))
def test_config_show_any_yaml(folder, mapping, cut):
    case = new_case(folder)
    (case / "c.yaml").write_text(config_text(mapping, cut))
    holds_contract(case, "config", "show", "--config", str(case / "c.yaml"))


@budget(25)
@given(mapping=configs)
def test_fit_any_yaml_on_real_data(folder, mapping):
    case = new_case(folder)
    (case / "c.yaml").write_text(config_text(mapping, 0))
    fast = ["--set", "pipeline=[{fit: {steps: 1}}]", "--set", "output.figures=false"]  # never the long search
    holds_contract(
        case, "fit", str(folder / "data.csv"), "-c", str(case / "c.yaml"), "-o", str(case / "run"), "-q", *fast
    )


# ------------------------------------------------------------------ CSV tables

HEADERS = ["x", "y", "f", "", "x y", "speed (m/s)", "é", "x", "nan", '"q"', "a,b"]
CELLS = ["1", "-2.5", "0", "nan", "inf", "1e308", "-1e308", "", "abc", '"3"', "1e-320", "  4 "]
ENDINGS = ["\n", "\r\n", "\r"]


@st.composite
def tables(draw) -> bytes:
    header = draw(st.lists(st.sampled_from(HEADERS), min_size=0, max_size=4))
    width = max(len(header), 1)
    rows = draw(st.lists(st.lists(st.sampled_from(CELLS), min_size=width, max_size=width), max_size=12))
    end = draw(st.sampled_from(ENDINGS))
    text = end.join([",".join(header)] + [",".join(r) for r in rows]) + end
    return draw(st.sampled_from(["", "\ufeff", "\x00"])).encode() + text.encode()


@budget(40)
@given(table=tables())
def test_fit_any_csv(folder, table):
    case = new_case(folder)
    (case / "t.csv").write_bytes(table)
    holds_contract(case, "fit", str(case / "t.csv"), "-c", str(folder / "fast.yaml"), "-o", str(case / "run"), "-q")


# ------------------------------------------------------------------ model files

GARBAGE = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(st.sampled_from(SUBKEYS), scalars))


def _tensor_garbage(value: torch.Tensor, how: int) -> torch.Tensor:
    return [
        value * float("nan"),
        value.flatten()[:-1],
        value.to(torch.int64),
        value.t() if value.dim() == 2 else value[:0],
    ][how]


@st.composite
def damaged(draw, payload: dict) -> bytes:
    """A real model file with one field replaced (the checksum recomputed, so that the field checks
    run), or its bytes cut or flipped."""
    kind = draw(st.sampled_from(["field", "state", "bytes", "other"]))
    if kind == "other":  # a config, CSV or log passed as the model by mistake
        return draw(st.sampled_from([b"", b"seed: 0\n", b"x,y\n1,2\n", b"PK\x03\x04junk"]) | st.binary(max_size=64))
    if kind == "bytes":
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        raw = bytearray(buffer.getvalue())
        at = draw(st.integers(0, len(raw) - 1))
        if draw(st.booleans()):
            return bytes(raw[:at])
        raw[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(raw)
    crafted = dict(payload)
    if kind == "field":
        crafted[draw(st.sampled_from(sorted(crafted)))] = draw(GARBAGE)
    else:
        state = dict(crafted["state_dict"])
        name = draw(st.sampled_from(sorted(state)))
        state[name] = _tensor_garbage(state[name], draw(st.integers(0, 3)))
        crafted["state_dict"] = state
    crafted["checksum"] = checksum(crafted)
    buffer = io.BytesIO()
    torch.save(crafted, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def payload(folder) -> dict:
    return torch.load(folder / "model.pt", weights_only=True)


@budget(40)
@given(data=st.data())
def test_explain_and_predict_any_model_file(folder, payload, data):
    case = new_case(folder)
    (case / "m.pt").write_bytes(data.draw(damaged(payload)))
    holds_contract(case, "explain", str(case / "m.pt"), "--no-figures", "--out", str(case / "explain"))
    holds_contract(case, "predict", str(case / "m.pt"), str(folder / "data.csv"), "-o", str(case / "p.csv"))
