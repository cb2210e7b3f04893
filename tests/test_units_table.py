"""benchmarks/feynman_units.csv: every law is dimensionally consistent with its own formula, and
the discovery benchmark's --units mode gives each fit a config with those units."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from kandisc.io.config import load_config
from kandisc.knowledge.buckingham import buckingham
from kandisc.knowledge.units import check_formula

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("discovery_benchmark", ROOT / "benchmarks" / "discovery.py")
bench = importlib.util.module_from_spec(_spec)
sys.modules["discovery_benchmark"] = bench
_spec.loader.exec_module(bench)
fl = importlib.import_module("feynman_laws")

TABLE = fl.load_units(bench.DEFAULT_UNITS)


@pytest.fixture(scope="module")
def laws():
    if not bench.DEFAULT_LAWS.is_file():
        pytest.skip("feynman-dev.csv not present")
    return {law.id: law for law in fl.load_laws(bench.DEFAULT_LAWS)}


def test_table_covers_at_least_30_laws_with_every_variable(laws):
    assert len(TABLE) >= 30
    for law_id, units in TABLE.items():
        assert set(units) == {*laws[law_id].variables, laws[law_id].output}, law_id


def test_every_law_is_consistent_with_its_units(laws):
    wrong = {}
    for law_id, units in TABLE.items():
        law = laws[law_id]
        ok, why = check_formula(law.formula, units, law.output)
        if not ok:
            wrong[law_id] = why
    assert wrong == {}


def test_a_wrong_entry_would_be_caught(laws):
    law = laws["I.12.2"]  # Coulomb: epsilon in F/m, not in F
    assert check_formula(law.formula, {**TABLE[law.id], "epsilon": "F"}, law.output)[0] is False


def test_every_law_has_a_prefactor(laws):
    # every dev law carries its dimensional constants as columns: y / prefactor is dimensionless
    missing = [
        i for i, units in TABLE.items() if buckingham(units, laws[i].variables, laws[i].output).prefactor is None
    ]
    assert missing == []


def test_units_mode_writes_a_units_config(tmp_path, monkeypatch, laws):
    args = bench.parse_args(["--units", "--ids", "I.12.2", "--out", str(tmp_path)])
    (task,) = bench.build_tasks(args, [laws["I.12.2"]], tmp_path)
    assert task.units == TABLE["I.12.2"]
    seen = {}
    monkeypatch.setattr(
        bench, "run_fit", lambda cmd, log, timeout: (seen.setdefault("cmd", cmd), ("completed", 0.0))[1]
    )
    bench.fit_once(task, tmp_path / "law")
    config = tmp_path / "law" / "units.yaml"
    assert seen["cmd"][seen["cmd"].index("--config") + 1] == str(config)
    assert load_config(config).units == TABLE["I.12.2"]
    assert json.loads(config.read_text()) == {"units": TABLE["I.12.2"]}
