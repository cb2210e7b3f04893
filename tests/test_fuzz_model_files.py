"""Fuzz findings (issue 18): a model.pt is input too. Crafted files must be refused on load.

Each case edits one field of a real model file (a tiny fit with standardisation and an auxiliary
feature, or a compiled formula for `fit --prior`) and saves it without the checksum, as an old or
hand-edited file would be. `explain` and `predict` (and `fit --prior`) must exit 2 with one stderr
line naming the file, write nothing and never evaluate an unsafe auxiliary formula. The flipped
bit keeps the checksum: that is what catches it.
"""

from __future__ import annotations

import copy
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from kandisc.cli import app

runner = CliRunner()
UNSAFE = "__import__('os').system('touch PWNED')"
FIT = """
data: {standardize: true}
auxiliary: {r: x*y}
model: {grid: 3}
pipeline:
  - fit: {steps: 2}
output: {figures: false}
"""


def _data(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 60), rng.uniform(-1, 1, 60)
    path = folder / "data.csv"
    pd.DataFrame({"x": x, "y": y, "f": x * y + np.sin(y)}).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict:
    """The payload of a fitted model (3 inputs x, y, r; standardised) and of a compiled x*r."""
    folder = tmp_path_factory.mktemp("base")
    data = _data(folder)
    (folder / "c.yaml").write_text(FIT)
    res = runner.invoke(app, ["fit", str(data), "-c", str(folder / "c.yaml"), "--out", str(folder / "run"), "-q"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["compile", "x*r", "--variables", "x,r", "--out", str(folder / "prior.pt")])
    assert res.exit_code == 0, res.output
    load = lambda p: torch.load(p, weights_only=True)  # noqa: E731
    return {"fit": load(folder / "run" / "model.pt"), "compiled": load(folder / "prior.pt")}


def _set(path: str, value):
    def craft(p: dict) -> None:
        *parents, last = path.split(".")
        node = p
        for key in parents:
            node = node[key]
        node[last] = value(node[last]) if callable(value) else value

    return craft


def _state(fn):
    def craft(p: dict) -> None:
        p["state_dict"] = {k: fn(k, v) for k, v in p["state_dict"].items()}

    return craft


def _refx(value):
    def craft(p: dict) -> None:
        p["tensors"]["reference_x"] = value(p["tensors"]["reference_x"])

    return craft


def _nan_first(t: torch.Tensor) -> torch.Tensor:
    t = t.contiguous().clone()
    t.view(-1)[0] = float("nan")
    return t


CRAFTED = {
    "version_neg": (_set("format_version", -1), "version -1"),
    "state_int": (_state(lambda k, v: v.long() if v.is_floating_point() else v), "int64"),
    "inputs_dup": (_set("input_names", ["x", "x", "r"]), "input_names lists 'x' twice"),
    "outputs_empty": (_set("output_names", []), "output_names has 0 names"),
    "outputs_many": (_set("output_names", ["f", "g"]), "output_names has 2 names"),
    "aux_unsafe": (_set("auxiliary", {"r": "x*y", "z": UNSAFE}), "auxiliary feature 'z'"),
    "aux_unsafe_used": (_set("auxiliary", {"r": UNSAFE}), "auxiliary feature 'r'"),
    "refx_nan": (_refx(_nan_first), "reference_x holds NaN"),
    "refx_wrong_shape": (_refx(lambda t: t[:, :2]), "reference_x must be rows x 3 inputs"),
    "refx_empty": (_refx(lambda t: t[:0]), "reference_x must be rows x 3 inputs"),
    "refx_str": (_refx(lambda t: "abc"), "tensors must map names to tensors"),
    "spec_garbage": (_set("spec", "garbage"), "spec must be a mapping"),
    "state_wrong_shape": (_state(lambda k, v: v[..., :1] if k == "layers.0.coef" else v), "layers.0.coef"),
    "state_nan": (_state(lambda k, v: _nan_first(v) if k == "layers.0.coef" else v), "NaN/inf"),
    "inputs_short": (_set("input_names", ["x", "y"]), "input_names has 2 names but the network has 3"),
    "grid_unsorted": (_state(lambda k, v: v.flip(-1) if k == "layers.0.grid" else v), "knots that do not increase"),
    "sym_fn_out_of_range": (_state(lambda k, v: v + 999 if k.endswith("sym_fn") else v), "outside the library"),
    "spec_unknown_key": (_set("spec", lambda s: {**s, "evil": 1}), "damaged"),
    "spec_grid_huge": (_set("spec", lambda s: {**s, "grid": 10**9}), "grid: out of range"),
    "norm_damaged": (_set("normalization", lambda n: {"x_mean": n["x_mean"]}), "normalization must hold"),
    "norm_wrong_len": (_set("normalization.x_mean", lambda m: m[:2]), "normalization.x_mean must be 3"),
    "norm_str": (_set("normalization", "garbage"), "normalization must hold"),
    "extras_formulas_bad": (_set("extras.formulas", {"f": 5}), "extras.formulas"),
    "extras_ranges_bad": (_set("extras.input_ranges", {"x": 5}), "extras.input_ranges"),
    "extras_shape_bad": (_set("extras.shape_initial", 5), "extras.shape_initial"),
}


def _save(payload: dict, folder: Path) -> Path:
    (folder / "m").mkdir(exist_ok=True)
    path = folder / "m" / "model.pt"
    payload = {k: v for k, v in payload.items() if k != "checksum"}
    torch.save(payload, path)
    return path


def _assert_refused(res, work: Path, *needles: str) -> None:
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (work / "PWNED").exists()


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    _data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", ["explain", "predict"])
@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_model_file_is_refused(base, work, case, command) -> None:
    craft, needle = CRAFTED[case]
    payload = copy.deepcopy(base["fit"])
    craft(payload)
    path = _save(payload, work)
    args = ["explain", str(path), "--no-figures"] if command == "explain" else ["predict", str(path), "data.csv"]
    res = runner.invoke(app, [*args, "-o", "out.csv" if command == "predict" else "exp"])
    _assert_refused(res, work, "m/model.pt", needle)
    assert not (work / "out.csv").exists() and not (work / "exp").exists()


@pytest.mark.parametrize("command", ["explain", "predict"])
@pytest.mark.parametrize("case", ["text_file", "bitflip_middle"])
def test_corrupt_model_file_is_refused(base, work, case, command) -> None:
    (work / "m").mkdir()
    path = work / "m" / "model.pt"
    if case == "text_file":
        path.write_text("this is not a model\n")
    else:  # flip one bit inside a tensor's bytes: the zip still reads, the checksum does not match
        torch.save(base["fit"], path)
        raw = bytearray(path.read_bytes())
        value = float(base["fit"]["state_dict"]["layers.0.coef"].reshape(-1)[3])
        at = bytes(raw).find(struct.pack("<d", value))
        assert at > 0
        raw[at + 3] ^= 0x10
        path.write_bytes(bytes(raw))
    args = (
        ["explain", str(path), "--no-figures", "-o", "exp"]
        if command == "explain"
        else ["predict", str(path), "data.csv", "-o", "out.csv"]
    )
    _assert_refused(runner.invoke(app, args), work, "m/model.pt")
    assert not (work / "out.csv").exists() and not (work / "exp").exists()


PRIOR_CRAFTED = {
    "state_nan": (_state(lambda k, v: _nan_first(v) if k == "layers.0.sym_params" else v), "NaN/inf"),
    "inputs_short": (_set("input_names", ["x"]), "input_names has 1 names but the network has 2"),
    "aux_unsafe_used": (_set("auxiliary", {"r": UNSAFE}), "auxiliary feature 'r'"),
}


@pytest.mark.parametrize("case", list(PRIOR_CRAFTED))
def test_crafted_prior_model_file_is_refused(base, work, case) -> None:
    """fitprior.*: `fit --prior` reads a model file too."""
    craft, needle = PRIOR_CRAFTED[case]
    payload = copy.deepcopy(base["compiled"])
    payload["data_columns"] = ["x", "y"]
    payload["auxiliary"] = {"r": "x*y"}
    craft(payload)
    path = _save(payload, work)
    (work / "c.yaml").write_text("auxiliary: {r: x*y}\npipeline:\n  - fit: {steps: 2}\noutput: {figures: false}\n")
    res = runner.invoke(app, ["fit", "data.csv", "-c", "c.yaml", "--out", "guard_run", "-q", "--prior", str(path)])
    _assert_refused(res, work, "m/model.pt", needle)
    assert not (work / "guard_run").exists()


def test_valid_files_still_load(base, work) -> None:
    path = _save(copy.deepcopy(base["fit"]), work)  # an old file without a checksum is fine
    res = runner.invoke(app, ["predict", str(path), "data.csv", "-o", "out.csv"])
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------------ where results are written


@pytest.mark.parametrize(
    ("case", "args", "needle"),
    [
        ("model.predict.out_dir_missing", ["predict", "{m}", "data.csv", "-o", "no/such/dir/p.csv"], "folder does not"),
        ("model.predict.out_is_dir", ["predict", "{m}", "data.csv", "-o", "adir", "--overwrite"], "is a folder"),
        ("compile.out_dir_missing", ["compile", "x*y", "--out", "no/such/dir/m.pt"], "folder does not exist"),
        ("compile.out_is_dir", ["compile", "x*y", "--out", "adir", "--overwrite"], "is a folder"),
        ("model.explain.out_is_file", ["explain", "{m}", "--out", "afile", "--no-figures"], "is a file"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.count(".") >= 1 and " " not in v and len(v) < 40 else "",
)
def test_unusable_output_paths(base, work, case, args, needle) -> None:
    path = _save(copy.deepcopy(base["fit"]), work)
    (work / "adir").mkdir()
    (work / "afile").write_text("keep me")
    res = runner.invoke(app, [a.format(m=path) for a in args])
    _assert_refused(res, work, needle)
    assert (work / "afile").read_text() == "keep me" and not any((work / "adir").iterdir())
    assert not (work / "no").exists()


def test_compile_plot_does_not_replace_an_existing_figure(work) -> None:
    """compile.plot_png_exists: the figure next to the model was overwritten without --overwrite."""
    (work / "m.png").write_bytes(b"my figure")
    res = runner.invoke(app, ["compile", "x*y", "--out", "m.pt", "--plot"])
    _assert_refused(res, work, "m.png", "--overwrite")
    assert (work / "m.png").read_bytes() == b"my figure" and not (work / "m.pt").exists()
