"""Anatomical modularity: node swaps keep the function; auto_swap untangles crossed modules."""

import pytest
import torch

from kandisc.model import ModelSpec, MultKAN
from kandisc.structure import auto_swap, connection_cost, swap


def rows(n_in, count=64, seed=0):
    return torch.rand(count, n_in, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1


def busy_model():
    """Sum and mult nodes of two arities, a removed edge and symbolic edges on both sides of layer 1."""
    spec = ModelSpec.build([4, [3, 2], [2, 1], 2], seed=1, noise_scale=1.0, mult_arity=[[], [2, 3], [2], []])
    model = MultKAN(spec)
    model.set_symbolic(0, 1, 2, "sin", [1.0, 0.2, 0.5, 0.1])
    model.set_symbolic(1, 4, 1, "x^2", [0.7, 0.0, 1.2, 0.3])
    model.remove_edge(1, 0, 1)
    with torch.no_grad():  # distinct affines, so a misplaced one would show
        for params in (model.subnode_scale, model.subnode_bias, model.node_scale, model.node_bias):
            for p in params:
                p.add_(0.1 * torch.arange(p.numel(), dtype=p.dtype))
    return model


@pytest.mark.parametrize("layer,i,j", [(1, 0, 2), (1, 3, 4), (2, 0, 1)])
def test_a_swap_keeps_the_function_and_a_second_swap_restores_the_model(layer, i, j):
    model = busy_model()
    x = rows(4)
    before = model(x).detach()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    swap(model, layer, i, j)
    torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    assert any(not torch.equal(state[k], v) for k, v in model.state_dict().items())  # it really moved
    swap(model, layer, i, j)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_mult_nodes_of_different_arities_swap_with_their_factors():
    model = busy_model()
    x = rows(4)
    before = model(x).detach()
    old_scale = model.subnode_scale[0].detach().clone()
    swap(model, 1, 3, 4)  # arities 2 and 3: subnodes 3-4 and 5-7 trade places
    assert model.spec.mult_arity[1] == [3, 2]
    torch.testing.assert_close(model.subnode_scale[0].detach(), old_scale[[0, 1, 2, 5, 6, 7, 3, 4]])
    torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    assert bool(model.layers[1].sym_mask[3, 1])  # the outgoing symbolic edge went with its node


def test_a_sum_node_cannot_trade_places_with_a_mult_node():
    with pytest.raises(ValueError, match="sum nodes first"):
        swap(busy_model(), 1, 0, 3)
    with pytest.raises(ValueError, match="hidden layer"):
        swap(busy_model(), 0, 0, 1)


def crossed_model():
    """Two independent modules drawn crossed: input 0 -> hidden 2 -> output 0, input 1 -> hidden 0 -> output 1,
    and a weak hidden node 1 in the middle."""
    model = MultKAN(ModelSpec.build([2, 3, 2], seed=0, noise_scale=1.0))
    keep = [{(0, 2), (1, 0), (1, 1)}, {(2, 0), (0, 1), (1, 1)}]
    for layer, kan in enumerate(model.layers):
        for i in range(kan.in_dim):
            for j in range(kan.out_dim):
                if (i, j) not in keep[layer]:
                    kan.remove_edge(i, j)
    return model


def test_auto_swap_uncrosses_modules_and_keeps_the_function():
    model = crossed_model()
    x = rows(2, count=200)
    before = model(x).detach()
    start = connection_cost(model, x)
    result = auto_swap(model, x)
    torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    assert result.cost_before == pytest.approx(start) and result.cost_after < 0.7 * start
    assert connection_cost(model, x) == pytest.approx(result.cost_after)
    assert result.orders == {1: [2, 1, 0]}
    assert auto_swap(model, x).orders == {}  # already optimal: nothing left to gain


def test_auto_swap_without_rows_uses_the_weights_and_respects_node_kinds():
    model = busy_model()
    x = rows(4)
    before = model(x).detach()
    result = auto_swap(model)
    torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    assert result.cost_after <= result.cost_before
    for layer, order in result.orders.items():
        n_sum = model.spec.width[layer][0]
        assert sorted(order[:n_sum]) == list(range(n_sum))
