"""``structure: auto`` (kandisc.search.divide): split a separable law, fit the parts apart, recombine."""

import numpy as np
import pytest
import sympy as sp
import torch

from kandisc.errors import ConfigError
from kandisc.io.config import load_config
from kandisc.io.data import split, table_from_arrays
from kandisc.pipeline.runner import prepare_table
from kandisc.search.divide import NAME, conquer, divide_candidates, split_of, with_divide
from kandisc.search.plan import plan


def _prepared(fn, n=150, structure="auto", high=2.0, names=("a", "b", "c"), **search):
    x = np.random.default_rng(0).uniform(1, high, (n, len(names)))
    y = fn(torch.as_tensor(x)).numpy()
    config = {"structure": structure, "search": {"jobs": 1, "seeds": 1, **search}}
    return prepare_table(table_from_arrays(x, y, list(names), ["f"]), config)


@pytest.mark.parametrize(
    ("fn", "kind", "groups"),
    [
        (lambda x: x[:, 0] * x[:, 1] + torch.sin(x[:, 2]), "additive", [[0, 1], [2]]),
        (lambda x: x[:, 0] * torch.exp(x[:, 1]) * x[:, 2] ** 2, "multiplicative", [[0], [1], [2]]),
        (lambda x: (x[:, 0] + x[:, 1]) * x[:, 2], "multiplicative", [[0, 1], [2]]),
    ],
)
def test_the_finer_separable_partition_is_the_split(fn, kind, groups):
    prep = _prepared(fn, n=60)
    assert split_of(fn, prep, np.arange(40))[:2] == (kind, groups)


def test_an_inseparable_law_is_not_split():
    fn = lambda x: torch.sin(x[:, 0] * x[:, 1] + x[:, 2])  # noqa: E731
    kind, groups, message = split_of(fn, _prepared(fn, n=60), np.arange(40))
    assert kind is None and groups == [] and message.startswith("not separable")


def test_the_parts_fitted_apart_recombine_into_the_law():
    fn = lambda x: x[:, 0] ** 2 * torch.exp(x[:, 1])  # noqa: E731
    prep = _prepared(fn, n=80, high=4.0, names=("a", "b"), candidates=["log-additive"])
    train, test = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    # fn stands in for the surrogate: each part is a one-input search on f(x_G, medians)
    entry = conquer(prep, fn, "multiplicative", [[0], [1]], (train, test), float("inf"), lambda: False)
    got = sp.sympify(entry["best"]["sympy"])
    assert sp.simplify(got - sp.sympify("a**2*exp(b)")) == 0, got


def test_the_divide_candidate_comes_before_the_deep_networks_only_with_structure_auto():
    fn = lambda x: x[:, 0] * x[:, 1] + x[:, 2]  # noqa: E731
    assert divide_candidates(_prepared(fn, n=30, structure="off")) == []
    prep = _prepared(fn, n=30)
    planned = plan(prep.cfg, prep.table.Y, prep.x_all, prep.model_inputs, prep.width)
    families = [c.family for c in with_divide(prep, planned)]
    assert families.index(NAME) == families.index("sum") - 1 and families.index("product") < families.index(NAME)
    divide = with_divide(prep, planned)[families.index(NAME)]
    assert divide.width == [3, 5, 1]  # the surrogate's network


def test_structure_auto_needs_the_search():
    assert load_config({"structure": False}).structure == "off"  # YAML's bare `off`
    # Unset, the search splits laws (divide and conquer is on by default) and a pipeline does not.
    assert load_config({}).splits_structure and not load_config({"pipeline": ["fit"]}).splits_structure
    fn = lambda x: x[:, 0] * x[:, 1] + x[:, 2]  # noqa: E731
    assert [c.name for c in divide_candidates(_prepared(fn, n=30, structure=None))] == [NAME]
    with pytest.raises(ConfigError, match="structure: auto splits the law inside the discovery search"):
        load_config({"structure": "auto", "pipeline": ["fit"]})


def test_parts_split_again_and_the_real_rows_choose_each_parts_function():
    """a·(b² + c²) from a wiggly surrogate: the part {b, c} splits again (additive), and the real
    rows pick the line for a where the surrogate's a-part fits a sine better."""
    law = lambda x: x[:, 0] * (x[:, 1] ** 2 + x[:, 2] ** 2)  # noqa: E731
    rough = lambda x: law(x) * (1 + 0.003 * torch.sin(9 * x[:, 0]))  # noqa: E731
    prep = _prepared(law, n=120, high=3.0)
    train, test = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    assert split_of(rough, prep, train, [1, 2])[:2] == ("additive", [[1], [2]])
    entry = conquer(prep, rough, "multiplicative", [[0], [1, 2]], (train, test), float("inf"), lambda: False)
    got = sp.sympify(entry["best"]["sympy"])
    assert sp.simplify(got - sp.sympify("a*(b**2 + c**2)")) == 0, got


def test_the_product_candidate_stops_at_once_on_data_that_is_no_product():
    from kandisc.search.factorize import MIN_PRODUCT_R2
    from kandisc.search.worker import run_candidate

    fn = lambda x: torch.sin(3 * x[:, 0]) + torch.sin(3 * x[:, 1])  # noqa: E731  a sum: no product's rank
    prep = _prepared(fn, n=200, high=5.0, names=("a", "b"), structure="off")
    train, test = split(prep.table, prep.cfg.data.test_fraction, prep.cfg.seed)
    planned = plan(prep.cfg, prep.table.Y[train], prep.x_all[train], prep.model_inputs, prep.width)
    product = next(c for c in planned if c.family == "product")
    outcome = run_candidate(prep, product, train, test, float("inf"))
    assert outcome.status == "skipped" and outcome.state is None and outcome.seconds < 5
    r2 = float(outcome.message.split("R² ")[1].split(" <")[0])
    assert outcome.message.startswith("not a product of one-input factors") and r2 < MIN_PRODUCT_R2


def test_a_law_found_by_divide_alone_has_the_surrogate_as_the_runs_model(tmp_path):
    """Divide's surrogate is a network of the run's inputs: with no other candidate it is the
    model, and the law found by divide ends the search (it used to wait for another fit's model)."""
    import json

    from typer.testing import CliRunner

    from kandisc.cli import app

    x = np.random.default_rng(3).uniform(1, 3, (150, 2))
    data = tmp_path / "d.csv"
    header = "a,b,f"
    np.savetxt(data, np.column_stack([x, x[:, 0] ** 2 + np.sin(x[:, 1])]), delimiter=",", header=header, comments="")
    config = tmp_path / "c.yaml"
    config.write_text("search:\n  candidates: [divide]\n  jobs: 1\noutput:\n  figures: false\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["fit", str(data), "--config", str(config), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["law_found"] is True and summary["search"]["winner"] == NAME
    assert sp.simplify(sp.sympify(summary["formulas"]["f"]) - sp.sympify("a**2 + sin(b)")) == 0
    assert (out / "model.pt").is_file() and summary["test_r2"]["f"] > 0.99  # the surrogate's own fit
