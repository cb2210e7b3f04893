"""Modular structure strings and the edge masks they produce."""

import numpy as np
import pytest

from kandisc.errors import ConfigError
from kandisc.knowledge.modules import (
    Module,
    masks_from_config,
    module_masks,
    parse_modules,
)

BLOCK = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=bool)


@pytest.mark.parametrize("item", ["0: [0,1]->[0,1]", "0,'[0,1]->[0,1]'", '0, "[0, 1] -> [0, 1]"', "[0,1]->[0,1]"])
def test_two_by_two_module_on_4_4_1_is_block_diagonal(item):
    masks = masks_from_config([item], [4, 4, 1])
    np.testing.assert_array_equal(masks[0], BLOCK)
    assert masks[1].all()


def test_structured_forms_match_the_string_form():
    for item in ({"layer": 0, "chain": [[0, 1], [0, 1]]}, {"chain": "[0,1]->[0,1]"}, {0: "[0,1]->[0,1]"}):
        np.testing.assert_array_equal(masks_from_config([item], [4, 4, 1])[0], BLOCK)


def test_separability_two_disjoint_modules():
    masks = masks_from_config(["0: [0,1]->[0,1]", "0: [2,3]->[2,3]"], [4, 4, 1])
    np.testing.assert_array_equal(masks[0], BLOCK)


def test_bottleneck_for_generalised_symmetry():
    mask = masks_from_config(["0: [0,1]->[0]"], [3, 3, 1])[0]
    expected = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)


def test_chain_across_two_layers():
    masks = masks_from_config(["0: [0,1]->[0,1]->[0]"], [3, 3, 3, 1])
    layer0 = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    layer1 = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(masks[0], layer0)
    np.testing.assert_array_equal(masks[1], layer1)
    assert masks[2].all()


def test_start_layer_and_negative_ids():
    (module,) = parse_modules(["1: [-1]->[-1]"], [2, 3], [3, 2])
    assert module.start_layer == 1 and module.groups == [[2], [1]]
    assert list(module.layers) == [1]
    assert str(module) == "1: [2]->[1]"
    assert module.to_dict() == {"layer": 1, "chain": [[2], [1]]}


def test_mult_nodes_cover_their_subnodes():
    width, arity = [2, [1, 2], 1], [[], [2, 3], []]
    mask = masks_from_config(["0: [0]->[1]"], width, arity)[0]
    expected = np.array([[0, 1, 1, 0, 0, 0], [1, 0, 0, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(mask, expected)


def test_module_masks_takes_modules_directly():
    masks = module_masks([Module(0, [[0, 1], [0, 1]])], [4, 4, 1], [[0, 1, 2, 3], [0]])
    np.testing.assert_array_equal(masks[0], BLOCK)
    with pytest.raises(ConfigError, match="out of range"):
        module_masks([Module(0, [[0, 9], [0]])], [4, 4, 1], [[0, 1, 2, 3], [0]])


def test_no_modules_allows_every_edge():
    assert all(m.all() for m in masks_from_config(None, [4, 4, 1]))
    assert all(m.all() for m in masks_from_config([], [4, 4, 1]))


@pytest.mark.parametrize(
    ("items", "pattern"),
    [
        (
            ["0: [0,5]->[0,1]"],
            r"modules\[0\] \('0: \[0,5\]->\[0,1\]'\): node 5 in group 1 \(input node layer 0\) "
            r"is out of range; that layer has 4 nodes: use 0..3 \(or -4..-1 from the end\)",
        ),
        (["0: [0,1]->[-5]"], r"node -5 in group 2 \(hidden node layer 1\) is out of range"),
        (["0: [0]->[0]->[0]->[0]"], r"4 groups cross 3 layers from layer 0, past the output layer"),
        (
            ["0: [0,1]->[0,1]->[0,1]->[0]"],
            r"pykan's pair form, which kandisc writes '\[0,1\]->\[0,1\]->\[0\]'",
        ),
        (["2: [0]->[0]"], r"start layer 2 is out of range; the model has layers 0..1"),
        (["0: [0,1]"], r"at least two groups"),
        (["0: []->[0]"], r"group 1 \(input node layer 0\) is empty"),
        (["0: [0,1->[0]"], r"group 1 '\[0,1' is not a bracketed list of node ids"),
        (["0: [0,1]->->[0]"], r"group 2 '\(nothing\)' is not a bracketed list"),
        (["0: [a]->[0]"], r"group 1 '\[a\]' is not a bracketed list"),
        (["x: [0]->[0]"], r"cannot read the start layer from 'x:'"),
        (["0: 1->2"], r"no node-id groups found"),
        (["0,'[0]->[0]"], r"opens with ' but does not close it"),
        (["0: [1,1]->[0]"], r"node 1 appears twice in group 1"),
        ([{"layr": 0, "chain": "[0]->[0]"}], r"unknown key 'layr' \(did you mean 'layer'\?\)"),
        ([{"layer": 0, "chain": [[0], 1]}], r"group 2 must be a list of node ids, got 1"),
        ([{"layer": True, "chain": [[0], [1]]}], r"layer must be an integer"),
        ([3], r"a module must be a string or a mapping"),
        (
            ["0: [0,1]->[0,1]", "0: [1,2]->[2,3]"],
            r"modules\[0\] \('0: \[0,1\]->\[0,1\]'\) and modules\[1\] "
            r"\('0: \[1,2\]->\[2,3\]'\) both contain node 1 of input node layer 0, and both cross layer 0",
        ),
        (["0: [0,1]->[0]", "0: [2,3]->[0]"], r"both contain node 0 of hidden node layer 1"),
    ],
)
def test_bad_modules_are_config_errors(items, pattern):
    with pytest.raises(ConfigError, match=pattern):
        masks_from_config(items, [4, 4, 1])


def test_chained_modules_in_consecutive_layers_do_not_overlap():
    masks = masks_from_config(["0: [0,1]->[0]", "1: [0]->[0]"], [4, 4, 2])
    np.testing.assert_array_equal(masks[1], np.array([[1, 0], [0, 1], [0, 1], [0, 1]], dtype=bool))
