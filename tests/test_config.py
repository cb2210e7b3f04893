"""Tests for kandisc.io.config: schema, merge order, overrides, error messages, YAML round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kandisc.errors import ConfigError
from kandisc.io.config import (
    DEFAULT_PIPELINE,
    FitStage,
    KandiscConfig,
    ModelConfig,
    PruneStage,
    RefineStage,
    config_to_yaml,
    load_config,
    resolve_width,
    schema_rows,
)


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults_without_file() -> None:
    cfg = load_config(None)
    assert cfg.seed == 0 and cfg.device == "cpu" and cfg.threads is None
    assert cfg.data.test_fraction == 0.2 and cfg.model.width is None
    assert cfg.pipeline is None  # the discovery search
    assert cfg.search.time_budget == 120 and cfg.search.accept_r2 == 0.999 and cfg.search.jobs is None
    assert KandiscConfig().model_dump() == cfg.model_dump()


def test_empty_file_and_empty_sections_mean_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == KandiscConfig()
    assert load_config(write(tmp_path, "data:\nmodel:\n")) == KandiscConfig()


def test_stage_forms_and_normalisation(tmp_path: Path) -> None:
    text = "pipeline:\n- fit: {opt: Adam, steps: 3}\n- prune\n- refine: {grid: 7}\n- prune: {on: test}\n"
    cfg = load_config(write(tmp_path, text + "data: {targets: y}\n"))
    fit, prune, refine, prune2 = cfg.pipeline
    assert isinstance(fit, FitStage) and fit.opt == "adam" and fit.steps == 3 and fit.lr == 1.0
    assert prune.stage == "prune" and prune.edge_threshold == 0.03
    assert isinstance(refine, RefineStage) and refine.grid == 7
    assert refine.params() == {"grid": 7}
    assert prune2.on == "test"  # YAML 1.1 reads the key `on` as true; still accepted
    assert cfg.data.targets == ["y"]


def test_yaml_strings_that_are_numbers_are_accepted(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "pipeline:\n- fit: {lr: 1e-3}\n"))
    assert cfg.pipeline[0].lr == 0.001


def test_unknown_key_in_stage_has_path_and_suggestion(tmp_path: Path) -> None:
    message = error_of(tmp_path, "pipeline:\n- fit: {stpes: 5}\n")
    assert message.startswith(f"{tmp_path / 'run.yaml'}: ")
    assert "pipeline[0].fit.stpes: unknown key (did you mean 'steps'?)" in message


def test_unknown_stage_name(tmp_path: Path) -> None:
    message = error_of(tmp_path, "pipeline:\n- fitt: {steps: 5}\n")
    assert "unknown stage 'fitt' at pipeline[0] (did you mean 'fit'?); stages: fit, prune, refine, symbolic" in message


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    text = (
        "seed: -1\ndevice: gpu\nthreads: true\nfoo: 1\n"
        "data: {test_fraction: 1.5}\n"
        "model: {width: [2, [0, 0], 1], k: 7, grid_range: [1, 0]}\n"
        "pipeline:\n- fit: {opt: sgd, steps: x}\n- refine\n"
    )
    message = error_of(tmp_path, text)
    expected = [
        "seed: out of range (got -1; allowed: >= 0)",
        "device: invalid choice (got 'gpu'; allowed: 'cpu', 'cuda', 'auto')",
        "threads: expected a number, not true/false (got true)",
        "data.test_fraction: out of range (got 1.5; allowed: < 1",
        "model.width: entry 1 must be an int >= 1 or [n_sum, n_mult]",
        "model.k: out of range (got 7; allowed: <= 5)",
        "model.grid_range: expected two numbers [low, high] with low < high (got [1.0, 0.0])",
        "pipeline[0].fit.opt: invalid choice (got 'sgd'; allowed: 'lbfgs', 'adam', 'lm')",
        "pipeline[0].fit.steps: expected an integer (got 'x')",
        "pipeline[1].refine.grid: required key missing (e.g. grid: 10)",
        "foo: unknown key (allowed: seed, device",
    ]
    for snippet in expected:
        assert snippet in message


def test_data_section_checks(tmp_path: Path) -> None:
    message = error_of(tmp_path, "data: {inputs: [x, y], targets: [y]}\n")
    assert "column 'y' is in both data.inputs and data.targets" in message
    assert "listed twice" in error_of(tmp_path, "data: {inputs: [x, x]}\n")
    assert "data.targets: empty list" in error_of(tmp_path, "data: {targets: []}\n")


def test_auxiliary_names(tmp_path: Path) -> None:
    assert "name 'a b' is not a valid identifier" in error_of(tmp_path, "auxiliary: {'a b': x}\n")
    message = error_of(tmp_path, "data: {inputs: [x, y]}\nauxiliary: {x: y*2}\n")
    assert "auxiliary.x has the name of a data column" in message
    assert load_config(write(tmp_path, "auxiliary: {r: sqrt(x**2+y**2)}\n")).auxiliary == {"r": "sqrt(x**2+y**2)"}


def test_mult_arity_and_modules(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "model: {mult_arity: [[2, 3], []]}\n")).model.mult_arity == [
        [2, 3],
        [],
    ]
    assert "model.mult_arity: expected an int >= 2" in error_of(tmp_path, "model: {mult_arity: 1}\n")
    assert "modules: item 0 must be a string or a mapping (got 1)" in error_of(tmp_path, "modules: [1]\n")


def test_malformed_stage_items(tmp_path: Path) -> None:
    message = error_of(tmp_path, "pipeline:\n- fit: 5\n- {fit: {}, prune: {}}\n")
    assert "pipeline[0].fit: parameters must be a mapping" in message
    assert "pipeline[1]: expected a stage name or a one-key mapping like {fit: {steps: 50}}" in message


@pytest.mark.parametrize(
    ("text", "snippet"),
    [
        ("seed: [1\n", "YAML syntax error at line 2, column 1"),
        ("seed: 1\nseed: 2\n", "YAML syntax error at line 2, column 1: duplicate key 'seed'"),
        ("- a\n- b\n", "the top level must be a mapping of keys"),
    ],
)
def test_file_level_errors(tmp_path: Path, text: str, snippet: str) -> None:
    message = error_of(tmp_path, text)
    assert message.startswith(str(tmp_path / "run.yaml")) and snippet in message


def test_missing_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path)


def test_precedence_defaults_file_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 3\nmodel: {grid: 7}\n")
    cfg = load_config(path, ["seed=4"])
    assert cfg.seed == 4  # override beats file
    assert cfg.model.grid == 7  # file beats default
    assert cfg.model.k == 3  # default kept


def test_list_index_overrides() -> None:
    cfg = load_config(None, ["pipeline=[{fit: {steps: 3}}]", "pipeline.0.fit.steps=5", "model.width=[2,[0,1],1]"])
    assert cfg.pipeline[0].steps == 5 and cfg.pipeline[0].lamb == 0.0
    assert cfg.model.width == [2, [0, 1], 1]


def test_override_into_bare_stage_name(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "pipeline: [fit, prune]\n"), ["pipeline.1.prune.on=test"])
    assert cfg.pipeline[1].on == "test"


@pytest.mark.parametrize(
    ("override", "snippet"),
    [
        ("modelgrid", "--set 'modelgrid': expected section.key=value"),
        ("model.gird=5", "--set model.gird=5: model.gird: unknown key (did you mean 'grid'?)"),
        ("model.grid=-5", "--set model.grid=-5: model.grid: out of range (got -5; allowed: >= 1)"),
        ("model.grid.x=5", "--set model.grid.x=5: model.grid holds 5, which has no keys"),
        ("model.width=[2,", "--set model.width=[2,: the value is not valid YAML"),
        ("pipeline.9.fit.steps=5", "--set pipeline.9.fit.steps=5: pipeline is null (the discovery search runs)"),
        ("foo.bar=1", "--set foo.bar=1: foo: unknown key"),
    ],
)
def test_bad_overrides_name_the_override(override: str, snippet: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    assert snippet in str(info.value)


@pytest.mark.parametrize(
    ("override", "snippet"),
    [
        ("pipeline.9.fit.steps=5", "--set pipeline.9.fit.steps=5: pipeline has 8 items"),
        ("pipeline.0.fitt.steps=5", "--set pipeline.0.fitt.steps=5: pipeline[0] is a 'fit' stage, not 'fitt'"),
    ],
)
def test_bad_overrides_into_a_given_pipeline(override: str, snippet: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["pipeline=" + json.dumps(DEFAULT_PIPELINE), override])
    assert snippet in str(info.value)


def test_errors_from_file_and_override_both_reported(tmp_path: Path) -> None:
    message = error_of(tmp_path, "model: {k: 9}\n", ("seed=-2",))
    assert f"{tmp_path / 'run.yaml'}: model.k: out of range" in message
    assert "--set seed=-2: seed: out of range" in message


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    pipeline = "pipeline=[{fit: {steps: 5}}, {refine: {grid: 20}}, symbolic]"
    cfg = load_config(None, ["model.width=[2,[3,2],1]", "data.targets=[y]", pipeline, "search.seeds=3"])
    text = config_to_yaml(cfg)
    assert "width: [2, [3, 2], 1]" in text
    assert list(yaml.safe_load(text)) == list(KandiscConfig.model_fields)  # schema key order
    assert load_config(write(tmp_path, text)) == cfg
    assert KandiscConfig.model_validate(cfg.model_dump()) == cfg


def test_default_pipeline_constant_is_a_valid_pipeline() -> None:
    cfg = KandiscConfig.model_validate({"pipeline": DEFAULT_PIPELINE})
    assert [s.stage for s in cfg.pipeline] == ["fit", "prune", "fit", "prune", "fit", "refine", "fit", "symbolic"]
    assert DEFAULT_PIPELINE[0] == {"fit": {"steps": 50, "lamb": 0.01}}


def test_search_section_is_validated(tmp_path: Path) -> None:
    cfg = load_config(None, ["search.candidates=[log-additive, SUM]", "search.time_budget=5"])
    assert cfg.search.candidates == ["log-additive", "sum"] and cfg.search.time_budget == 5
    message = error_of(tmp_path, "search: {candidates: [logadditive]}\n")
    assert "search.candidates" in message and "log-additive" in message
    assert "search.time_budget" in error_of(tmp_path, "search: {time_budget: 0}\n")


def test_schema_rows_cover_every_key() -> None:
    rows = {key: (kind, default, doc) for key, kind, default, doc in schema_rows()}
    assert rows["pipeline[].fit.steps"] == ("int >= 0", "50", "optimiser steps")
    assert rows["pipeline[].refine.grid"][1] == "required"
    assert rows["device"][0] == "cpu|cuda|auto"
    assert rows["threads"][0] == "int >= 1, <= 512 or null"
    for section in ("data", "model", "output"):
        fields = KandiscConfig.model_fields[section].annotation.model_fields
        assert all(f"{section}.{name}" in rows for name in fields)
    assert all(doc for key, (_, _, doc) in rows.items()), "every key needs a one-line doc"


def test_resolve_width() -> None:
    model = load_config(None).model
    assert resolve_width(model, ["a", "b"], ["y"]) == [2, 5, 1]
    model = load_config(None, ["model.width=[2,[0,1],1]"]).model
    assert resolve_width(model, ["a", "b"], ["y"]) == [2, [0, 1], 1]
    with pytest.raises(ConfigError, match=r"model.width\[0\] is 2 but the data has 3 inputs \(a, b, c\)"):
        resolve_width(model, ["a", "b", "c"], ["y"])
    with pytest.raises(ConfigError, match=r"model.width\[-1\] is 1 but the data has 2 targets"):
        resolve_width(model, ["a", "b"], ["y", "z"])


def test_stage_and_model_defaults_are_the_engines():
    from dataclasses import asdict

    from kandisc.defaults import PruneSettings, TrainSettings
    from kandisc.model import ModelSpec

    engine = asdict(TrainSettings())
    engine.pop("lbfgs_iterations")  # internal, not a config key
    assert FitStage().params() == engine
    assert {k: v for k, v in PruneStage().params().items() if k != "on"} == asdict(PruneSettings())
    spec, model = ModelSpec(width=[[1, 0], [1, 0]]), ModelConfig()
    for key in ("grid", "k", "base_fun", "grid_eps", "noise_scale"):
        assert getattr(model, key) == getattr(spec, key), key
    assert tuple(model.grid_range) == spec.grid_range


def test_load_config_from_a_mapping_or_a_config() -> None:
    given = {"model": {"grid": 7}, "pipeline": [{"fit": {"steps": 3}}]}
    cfg = load_config(given, ["seed=4"])
    assert (cfg.model.grid, cfg.seed, cfg.pipeline[0].steps, cfg.model.k) == (7, 4, 3, KandiscConfig().model.k)
    assert given == {"model": {"grid": 7}, "pipeline": [{"fit": {"steps": 3}}]}  # not merged into
    assert load_config(cfg) == cfg and load_config(cfg, ["model.grid=9"]).model.grid == 9
    with pytest.raises(ConfigError, match=r"^config: model\.gird: unknown key \(did you mean 'grid'\?\)$"):
        load_config({"model": {"gird": 7}})
