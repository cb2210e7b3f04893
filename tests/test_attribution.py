"""Attribution scores (KAN 2.0) and pruning that preserves settings and the masked function."""

import pytest
import torch

from kandisc.attribution import attribute, mask_node, prune, subset
from kandisc.model import ModelSpec, MultKAN
from kandisc.train import TrainSettings, train
from tests.conftest import make_dataset


@pytest.fixture(scope="module")
def importance_model():
    data = make_dataset(lambda x: x[:, [0]] ** 2 + 0.3 * x[:, [1]] + 0.1 * x[:, [2]] ** 3, 4, n=500)
    model = MultKAN(ModelSpec.build([4, 5, 1], seed=0))
    train(model, data, TrainSettings(steps=20, lamb=1e-3))
    return model, data


def test_input_scores_rank_the_inputs(importance_model):
    model, data = importance_model
    scores = attribute(model, data.x_train).input_scores
    assert scores.argsort(descending=True).tolist() == [0, 1, 2, 3]
    assert scores[3] < 1e-2


def test_prune_removes_the_irrelevant_input(importance_model):
    model, data = importance_model
    result = prune(model, data.x_train)
    assert result.kept_inputs == [0, 1, 2]
    assert result.model.spec.n_inputs == 3


def test_pruned_model_equals_masked_original():
    model = MultKAN(
        ModelSpec.build([4, [3, 2], [2, 1], 1], mult_arity=3, grid=6, base_fun="identity", grid_eps=0.5, seed=3)
    )
    model.set_symbolic(0, 1, 2, "tanh", [1.0, 0.1, 0.5, 0.0])
    for nl, node in [(0, 2), (1, 1), (1, 3), (2, 0)]:
        mask_node(model, nl, node)
    keep = [[0, 1, 3], [0, 2, 4], [1, 2], [0]]
    small = subset(model, keep)
    x = torch.rand(64, 4, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(small(x[:, [0, 1, 3]]), model(x), rtol=0, atol=1e-12)
    spec, new = model.spec, small.spec
    for key in ("grid", "k", "base_fun", "grid_eps", "grid_range", "noise_scale", "seed"):
        assert getattr(new, key) == getattr(spec, key)
    assert new.width == [[3, 0], [2, 1], [1, 1], [1, 0]] and new.mult_arity[1] == [3]
    assert small.symbolic_edges()[0]["fn"] == "tanh"
    assert small.dtype == model.dtype


def test_prune_twice_composes(importance_model):
    model, data = importance_model
    first = prune(model, data.x_train, input_threshold=1e-2)
    x1 = data.x_train[:, first.kept_inputs]
    second = prune(first.model, x1, input_threshold=0.2)
    assert second.kept_inputs == [0, 1]  # relative to the first pruned model: x0, x1 of the original
    cols = [first.kept_inputs[i] for i in second.kept_inputs]
    assert cols == [0, 1]
    assert second.model.spec.n_inputs == 2
