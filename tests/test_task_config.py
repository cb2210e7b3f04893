"""``task:`` in the config: the default is regression, physics tasks run a pipeline, bad specs exit 2."""

import pytest
import yaml
from typer.testing import CliRunner

from kandisc.cli import app
from kandisc.io.config import config_to_yaml, load_config
from kandisc.io.task_schema import TASK_PIPELINE

LAGRANGIAN = {"q": ["q"], "qdot": ["qdot"], "qddot": ["qddot"]}


def test_default_is_regression_and_dumps_as_such():
    cfg = load_config(None, [])
    assert cfg.task.kind == "regression" and cfg.pipeline is None
    assert "task: regression" in config_to_yaml(cfg).splitlines()
    assert load_config({"task": "regression"}, []).task.as_dict() == {}


def test_a_physics_task_without_pipeline_runs_the_task_pipeline():
    cfg = load_config({"task": {"lagrangian": LAGRANGIAN}, "pipeline": None}, [])
    assert [item.stage for item in cfg.pipeline] == [next(iter(s)) for s in TASK_PIPELINE]
    assert load_config(yaml.safe_load(config_to_yaml(cfg)), []).task.as_dict() == {
        "lagrangian": {**LAGRANGIAN, "kinetic": None}
    }


@pytest.mark.parametrize(
    "task,extra,message",
    [
        ({"lagrangian": {**LAGRANGIAN, "qdot": ["qdot", "q"]}}, {}, "same number of columns (got 1, 2, 1)"),
        ({"lagrangian": {**LAGRANGIAN, "qddot": ["q"]}}, {}, "column 'q' is listed twice (q and qddot)"),
        ({"conserved": {"x": ["q", "q"], "xdot": ["a", "b"]}}, {}, "column 'q' is listed twice (x)"),
        ({"lagrangian": {**LAGRANGIAN, "kinetic": "v**2"}}, {}, "unknown variable 'v'"),
        ({"lagrangian": LAGRANGIAN}, {"data": {"targets": ["qddot"]}}, "remove data.inputs and data.targets"),
        ({"lagrangian": LAGRANGIAN}, {"data": {"standardize": True}}, "data.standardize cannot be combined"),
        ({"lagrangian": LAGRANGIAN}, {"prior": "q"}, "use task.lagrangian.kinetic"),
        ("conserved", {}, "needs its columns"),
        ({"lagrangian": LAGRANGIAN, "conserved": {"x": ["q"], "xdot": ["v"]}}, {}, "give one task"),
    ],
)
def test_bad_task_specs_are_one_line(task, extra, message, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"task": task, **extra}))
    data = tmp_path / "d.csv"
    data.write_text("q,qdot,qddot\n0.1,0.2,-0.1\n0.2,0.1,-0.2\n")
    result = CliRunner().invoke(app, ["fit", str(data), "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()  # bad input loses nothing and creates nothing


def test_unknown_task_column_names_the_file_and_column(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("q,qdot,acc\n0.1,0.2,-0.1\n0.2,0.1,-0.2\n")
    result = CliRunner().invoke(
        app,
        [
            "fit",
            str(data),
            "--set",
            "task.lagrangian={q: [q], qdot: [qdot], qddot: [qddot]}",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 2
    assert "qddot" in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_estimator_refuses_a_physics_task():
    import numpy as np

    from kandisc import KANRegressor
    from kandisc.errors import ConfigError

    with pytest.raises(ConfigError, match="task.lagrangian runs from a CSV"):
        rows = np.random.default_rng(0).uniform(-1, 1, (10, 2))
        KANRegressor(config={"task": {"lagrangian": LAGRANGIAN}}).fit(rows, rows[:, 0])
