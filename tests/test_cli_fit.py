"""`kandisc fit` and `kandisc config` through the CLI: outputs, exit codes, messages, no damage."""

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from kandisc.cli import app

runner = CliRunner()

TINY = """
model: {width: [2, 3, 1], grid: 3}
pipeline:
  - fit: {steps: 3, lamb: 0.01}
  - prune: {}
  - refine: {grid: 5}
  - fit: {steps: 2}
  - symbolic: {retrain_steps: 2, rounds: 1}
output: {figures: false}
"""


@pytest.fixture
def data_csv(write_csv):
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 200), rng.uniform(-1, 1, 200)
    return write_csv({"x": x, "y": y, "f": x**2 + np.sin(y)})


@pytest.fixture
def tiny_config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def fit(*args):
    return runner.invoke(app, ["fit", *map(str, args)])


def test_fit_writes_a_complete_run(data_csv, tiny_config, tmp_path):
    out = tmp_path / "run"
    result = fit(data_csv, "--config", tiny_config, "--out", out)
    assert result.exit_code == 0, result.stderr
    assert f"run directory: {out}" in result.stdout
    for name in ("config.yaml", "run.json", "metrics.csv", "model.pt", "summary.json", "attribution.json", "report.md"):
        assert (out / name).exists(), name
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "completed" and run["seed"] == 0 and len(run["data"]["sha256"]) == 64
    summary = json.loads((out / "summary.json").read_text())
    assert summary["targets"] == ["f"] and summary["inputs"] == ["x", "y"]
    assert set(summary["test_r2"]) == {"f"} and "f" in summary["formulas"]
    metrics = (out / "metrics.csv").read_text().splitlines()
    assert metrics[0] == "step,stage,train_loss,test_loss,reg,n_edges" and len(metrics) == 1 + 5 + 2 + 2


def test_saved_config_reruns_to_the_same_metrics(data_csv, tiny_config, tmp_path):
    assert fit(data_csv, "--config", tiny_config, "--out", tmp_path / "a").exit_code == 0
    again = fit(data_csv, "--config", tmp_path / "a" / "config.yaml", "--out", tmp_path / "b")
    assert again.exit_code == 0, again.stderr
    first = json.loads((tmp_path / "a" / "summary.json").read_text())
    second = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert first["test_rmse"] == second["test_rmse"]


def test_existing_out_is_refused_and_left_intact(data_csv, tiny_config, tmp_path):
    out = tmp_path / "run"
    assert fit(data_csv, "--config", tiny_config, "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    result = fit(data_csv, "--config", tiny_config, "--out", out)
    assert result.exit_code == 2
    assert "exists; pass --overwrite" in result.stderr and result.stderr.count("\n") == 1
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert fit(data_csv, "--config", tiny_config, "--out", out, "--overwrite").exit_code == 0


@pytest.mark.parametrize(
    "columns,needle",
    [
        ({"x": ["1", "2", "a"] * 5, "f": list(range(15))}, "non-numeric"),
        ({"x": [1.0, np.nan] * 8, "f": list(range(16))}, "dropna"),
        ({"x": list(range(15)), "f": [1.0] * 15}, "constant"),
        ({"x": [1, 2, 3], "f": [1, 2, 4]}, "need at least 10"),
    ],
)
def test_bad_data_exits_2_with_one_line(write_csv, tiny_config, tmp_path, columns, needle):
    path = write_csv(columns)
    out = tmp_path / "run"
    result = fit(path, "--out", out, "--set", "pipeline=[{fit: {steps: 1}}]")
    assert result.exit_code == 2, result.stdout
    assert needle in result.stderr and result.stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "setting,needle",
    [
        ("pipeline.0.fit.stpes=3", "did you mean 'steps'"),
        ("model.grid=many", "model.grid"),
        ("data.inputs=[x, z]", "z"),
        ("model.width=[3, 2, 1]", "width"),
    ],
)
def test_bad_config_exits_2_and_writes_nothing(data_csv, tiny_config, tmp_path, setting, needle):
    out = tmp_path / "run"
    result = fit(data_csv, "--config", tiny_config, "--out", out, "--set", setting)
    assert result.exit_code == 2
    assert needle in result.stderr and result.stderr.count("\n") == 1
    assert not out.exists()


def test_missing_and_empty_files(tmp_path, tiny_config):
    result = fit(tmp_path / "nope.csv", "--config", tiny_config)
    assert result.exit_code == 2 and "not found" in result.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = fit(empty, "--config", tiny_config)
    assert result.exit_code == 2 and "empty" in result.stderr


def test_config_show_reflects_override():
    result = runner.invoke(app, ["config", "show", "--set", "search.time_budget=7"])
    assert result.exit_code == 0
    resolved = yaml.safe_load(result.stdout)
    assert resolved["search"]["time_budget"] == 7 and resolved["model"]["grid"] == 5
    assert resolved["pipeline"] is None


def test_config_schema_lists_every_stage_key():
    result = runner.invoke(app, ["config", "schema"])
    assert result.exit_code == 0
    for key in ("pipeline[].fit.steps", "pipeline[].symbolic.r2_threshold", "data.test_fraction"):
        assert key in result.stdout


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("kandisc ")


def test_compile_writes_a_symbolic_model(tmp_path):
    out = tmp_path / "model.pt"
    result = runner.invoke(app, ["compile", "x*y + sin(z)", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert "inputs: x, y, z" in result.stdout and "[3, [1, 1], 1]" in result.stdout
    from kandisc.io.model_file import load_model

    bundle = load_model(out)
    assert bundle.model.n_edges() == 5 and all(e["fn"] for e in bundle.model.symbolic_edges())
    again = runner.invoke(app, ["compile", "x*y", "--out", str(out)])
    assert again.exit_code == 2 and "exists" in again.stderr


@pytest.mark.parametrize(
    "formula,token",
    [
        ("__import__('os').system('x')", "__import__"),
        ("x.__class__", "__class__"),
        ("lambda: 1", "lambda"),
        ("open('f')", "open"),
        ("foo(x)", "foo"),
    ],
)
def test_compile_rejects_unsafe_formulas(formula, token, tmp_path):
    result = runner.invoke(app, ["compile", formula, "--out", str(tmp_path / "m.pt")])
    assert result.exit_code == 2 and token in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "m.pt").exists()


def test_cli_import_is_light():
    import subprocess
    import sys

    code = "import sys, kandisc.cli; print(sorted(m for m in ('torch', 'matplotlib', 'sympy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_training_starts_before_the_heavy_imports(data_csv, tmp_path):
    """The first training step of a fit runs with neither sympy nor matplotlib nor torch._dynamo
    loaded (each costs a large share of a second at start-up; they are needed after training)."""
    import subprocess
    import sys

    code = f"""
import sys
import kandisc.pipeline.training as training
from kandisc.fitting import fit_run
seen = []
real = training.train
def spy(*args, **kwargs):
    seen.append(sorted(m for m in ("sympy", "matplotlib", "torch._dynamo") if m in sys.modules))
    return real(*args, **kwargs)
training.train = spy
fit_run({str(data_csv)!r}, out={str(tmp_path / "run")!r},
        overrides=["pipeline=[{{fit: {{steps: 2}}}}]", "output.figures=false"])
print(seen[0])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_search_workers_start_before_torch_is_imported(data_csv, tmp_path):
    """With no pipeline and several jobs, `kandisc fit` starts the search's forkserver before its own
    torch import, so the two imports overlap (the spy ends the process at that moment)."""
    import subprocess
    import sys

    code = f"""
import sys
import multiprocessing.forkserver as forkserver
def spy():
    print("forkserver started; torch imported:", "torch" in sys.modules)
    raise SystemExit(0)
forkserver.ensure_running = spy
from kandisc.cli import app
app(["fit", {str(data_csv)!r}, "--out", {str(tmp_path / "run")!r}, "--jobs", "2", "--quiet"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "forkserver started; torch imported: False"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "starts"),
    [(["search.jobs=2"], True), (["search.jobs=1"], False), (["search.jobs=2", "pipeline=[{fit: {steps: 2}}]"], False)],
)
def test_search_workers_start_early_only_for_a_parallel_search(monkeypatch, overrides, starts):
    import multiprocessing.forkserver as forkserver

    from kandisc.io.config import load_config
    from kandisc.search.forkserver import start_early

    calls = []
    monkeypatch.setattr(forkserver, "ensure_running", lambda: calls.append(1))
    start_early(load_config(None, overrides))
    assert bool(calls) is starts


def test_unknown_symbolic_function_fails_before_training(data_csv, tmp_path):
    out = tmp_path / "run"
    result = fit(data_csv, "--out", out, "--set", "pipeline=[{fit: {steps: 1}}, {symbolic: {library: [x, sinn]}}]")
    assert result.exit_code == 2 and "pipeline[1].symbolic" in result.stderr and "did you mean 'sin'" in result.stderr
    assert not out.exists()


class _StopAt:
    """A progress sink that raises at a given global step (a stand-in for Ctrl-C or a crash)."""

    def __init__(self, step, error):
        self.at, self.error = step, error

    def stage_started(self, label, total_steps):
        pass

    def step(self, label, record, global_step, n_edges):
        if global_step == self.at:
            raise self.error

    def stage_finished(self, label, report):
        pass


def test_interrupted_run_is_marked_and_keeps_the_model(data_csv, tiny_config, tmp_path):
    from kandisc.api import fit_run
    from kandisc.io.model_file import load_model

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        fit_run(data_csv, tiny_config, out, progress=_StopAt(2, KeyboardInterrupt()))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "interrupted" and run["end_time"]
    assert load_model(out / "model.pt").model.spec.n_inputs == 2
    assert len((out / "metrics.csv").read_text().splitlines()) == 1 + 2


def test_failed_run_records_the_error(data_csv, tiny_config, tmp_path):
    from kandisc.api import fit_run

    out = tmp_path / "run"
    with pytest.raises(RuntimeError):
        fit_run(data_csv, tiny_config, out, progress=_StopAt(1, RuntimeError("boom")))
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "failed" and "boom" in run["error"]


def test_ctrl_c_exits_130(data_csv, tiny_config, monkeypatch):
    import kandisc.api

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(kandisc.api, "fit_run", interrupted)
    result = fit(data_csv, "--config", tiny_config)
    assert result.exit_code == 130 and "interrupted" in result.stderr


def test_checkpoints_keep_the_model_after_every_stage(data_csv, tmp_path):
    from kandisc.io.model_file import load_model

    out = tmp_path / "run"
    result = fit(
        data_csv,
        "--out",
        out,
        "--set",
        "pipeline=[{fit: {steps: 2}}, prune, {fit: {steps: 1}}]",
        "--set",
        "output.checkpoints=true",
        "--set",
        "output.figures=false",
    )
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == ["01_fit.pt", "02_prune.pt", "03_fit.pt"]
    assert load_model(out / "checkpoints" / "03_fit.pt").model.n_edges() == load_model(out / "model.pt").model.n_edges()


def test_a_constant_refit_builds_its_optimiser_without_torch_dynamo():
    """The symbolic stage's constant refit may be a process's first LBFGS (a search candidate
    trained by Levenberg-Marquardt): it must not pay the torch._dynamo import either."""
    import subprocess
    import sys

    code = """
import sys
import numpy as np, sympy as sp
from kandisc.symbolic.scorer import Scorer
x = sp.Symbol("x")
xs = np.linspace(0.5, 2.0, 50)[:, None]
y = 1.7 * np.exp(0.3 * xs[:, 0])
fitted = Scorer([x], xs, y, xs, y).refit(sp.Float(1.5) * sp.exp(sp.Float(0.25) * x))
print(sorted(float(c) for c in fitted.atoms(sp.Float)), "torch._dynamo" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    constants, dynamo = out.strip().rsplit(" ", 1)
    assert [round(c, 6) for c in eval(constants)] == [0.3, 1.7]  # the refit ran and found them
    assert dynamo == "False"
