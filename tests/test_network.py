"""MultKAN structure: widths, mult nodes of any arity, masks, symbolic edges, grids, statistics."""

import copy

import pytest
import torch

from kandisc.model import ModelSpec, MultKAN
from kandisc.model.stats import layer_stats


def test_width_list_of_caller_is_not_mutated():
    width = [2, [3, 2], 1]
    before = copy.deepcopy(width)
    spec = ModelSpec.build(width)
    assert width == before
    assert spec.width == [[2, 0], [3, 2], [1, 0]]
    assert spec.subnodes(1) == 3 + 2 * 2


@pytest.mark.parametrize("width,arity", [([2, [0, 1], 1], 2), ([3, [1, 2], 1], 3), ([5, [0, 1]], 2)])
def test_mult_nodes_multiply_their_subnodes(width, arity):
    model = MultKAN(ModelSpec.build(width, mult_arity=arity))
    x = torch.rand(7, model.spec.n_inputs, dtype=torch.float64)
    sub = model.layers[-1](model.layer_inputs(x)[-1])
    n_sum = model.spec.width[-1][0]
    expected = [sub[:, s] for s in range(n_sum)]
    start = n_sum
    for a in model.spec.mult_arity[-1]:
        expected.append(sub[:, start : start + a].prod(1))
        start += a
    torch.testing.assert_close(model(x), torch.stack(expected, 1))


def test_mixed_arities_per_node():
    spec = ModelSpec.build([2, [1, 2], 1], mult_arity=[[], [2, 3], []])
    model = MultKAN(spec)
    assert model.layers[0].out_dim == 1 + 2 + 3
    assert model(torch.rand(4, 2, dtype=torch.float64)).shape == (4, 1)


def test_symbolic_edge_computes_affine_function_and_removed_edge_nothing():
    model = MultKAN(ModelSpec.build([2, 1], base_fun="zero"))
    layer = model.layers[0]
    layer.set_symbolic(0, 0, "sin", [2.0, 0.5, 3.0, -1.0])
    layer.remove_edge(1, 0)
    x = torch.rand(10, 2, dtype=torch.float64)
    torch.testing.assert_close(model(x)[:, 0], 3.0 * torch.sin(2.0 * x[:, 0] + 0.5) - 1.0)


def test_a_layer_without_numeric_edges_computes_its_formulas_whatever_its_splines_hold():
    """Every edge symbolic or removed: the layer's output is its formulas alone (the spline
    coefficients, however large, are masked out), on every path, and gradients still reach the
    formulas' constants and the inputs."""
    model = MultKAN(ModelSpec.build([2, 2]))
    layer = model.layers[0]
    with torch.no_grad():
        layer.coef.fill_(1e6)
    layer.set_symbolic(0, 0, "sin", [2.0, 0.5, 3.0, -1.0])
    layer.set_symbolic(1, 0, "x^2", [1.0, 0.2, 0.5, 0.0])
    layer.set_symbolic(0, 1, "exp", [0.3, 0.0, 1.0, 0.1])
    layer.remove_edge(1, 1)
    x = torch.rand(10, 2, dtype=torch.float64, requires_grad=True)
    expected = torch.stack(
        [3 * torch.sin(2 * x[:, 0] + 0.5) - 1 + 0.5 * (x[:, 1] + 0.2) ** 2, torch.exp(0.3 * x[:, 0]) + 0.1], 1
    )
    for out in (layer(x), layer(x, first_order=True), layer(x.detach())):
        torch.testing.assert_close(out, expected.detach() if not out.requires_grad else expected)
    (grad_x,) = torch.autograd.grad(layer(x).sum(), x)
    (expected_x,) = torch.autograd.grad(expected.sum(), x)
    torch.testing.assert_close(grad_x, expected_x)
    layer(x).sum().backward()
    assert float(layer.sym_params.grad.abs().sum()) > 0


def test_edge_statistics_match_direct_computation():
    model = MultKAN(ModelSpec.build([3, [2, 1], 1]))
    model.set_symbolic(0, 1, 2, "exp", [1.0, 0.0, 0.5, 0.0])
    x = torch.rand(300, 3, dtype=torch.float64) * 2 - 1
    _, traces = model.forward_traced(x)
    stats = layer_stats(traces[0])
    direct = model.layers[0].edge_curves(x).std(0)
    torch.testing.assert_close(stats.edge_std, direct, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(stats.subnode_std, traces[0].out.std(0))


def trained_like(model):
    """Give the model a smooth, non-trivial function (as after training)."""
    with torch.no_grad():
        for kan in model.layers:
            kan.coef.copy_(
                torch.sin(torch.linspace(0, 3, kan.coef.shape[1], dtype=torch.float64))[None, :, None]
                * torch.linspace(0.5, 1.5, kan.out_dim, dtype=torch.float64)
            )
    return model


@pytest.mark.parametrize("new_grid", [None, 10, 20])
def test_grid_update_and_refine_preserve_the_function(new_grid):
    model = trained_like(MultKAN(ModelSpec.build([2, 4, 1], grid=5)))
    x = torch.rand(2000, 2, dtype=torch.float64) * 2 - 1
    model.update_grid(x)  # data-adapted grid first, as during training
    before = model(x).detach()
    if new_grid is None:
        model.update_grid(x * 0.98)
    else:
        model.refine(x, new_grid)
        assert model.layers[0].coef.shape[1] == new_grid + 3
    after = model(x).detach()
    rel = ((after - before).pow(2).mean().sqrt() / before.pow(2).mean().sqrt()).item()
    assert rel < 1e-3


def test_parameter_size_independent_of_sample_count():
    model = MultKAN(ModelSpec.build([2, 3, 1], grid=5))
    model.update_grid(torch.rand(20000, 2, dtype=torch.float64))
    sizes = {k: v.untyped_storage().nbytes() for k, v in model.state_dict().items()}
    assert max(sizes.values()) < 10_000


def test_float32_model():
    model = MultKAN(ModelSpec.build([2, 3, 1]), dtype=torch.float32)
    assert model(torch.rand(5, 2)).dtype == torch.float32


def test_parameters_stay_row_major_through_grid_changes():
    # Non-contiguous parameters cost a copy per LBFGS step and trigger autograd layout warnings.
    model = MultKAN(ModelSpec.build([2, [2, 1], 1]))
    x = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    assert all(p.is_contiguous() for p in model.parameters())
    model.update_grid(x)
    model.refine(x, 10)
    assert all(p.is_contiguous() for p in model.parameters())
