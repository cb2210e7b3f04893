"""Modular structure (KAN 2.0 "modular structures"): ``modules:`` in the YAML, enforced as edge masks.

A module is a start layer and a chain of node-id groups, one group per node layer::

    modules:
      - "0: [0,1]->[0,1]"                  # kandisc form
      - "0,'[2,3]->[2,3]'"                 # pykan's (start_layer, chain) form, same meaning
      - {layer: 0, chain: [[0,1], [0]]}    # structured form

Node layers are numbered 0 (the inputs) to L (the outputs); KAN layer ``l`` maps node layer ``l``
to node layer ``l+1``. In ``"s: g0->g1->...->gm"`` group ``gt`` holds node ids of node layer
``s+t`` and **each arrow is one KAN layer**: ``g0->g1`` constrains layer ``s``, ``g1->g2`` layer
``s+1``, and so on (``m`` layers, ``s+m <= L``). Ids are node ids: a multiplication node's id covers
all of its subnodes. Negative ids count from the end (``-1`` is the last node) and are normalised.
A chain without a start layer (``"[0,1]->[0]"``) starts at layer 0.

Difference from pykan: pykan's ``module()`` reads the groups in pairs (node ids, then subnode ids)
and silently drops the last group of an odd chain, so ``'[0,1]->[0,1]->[0]'`` only constrains one
layer there. kandisc reads every arrow as one layer, which is what the chain looks like it says;
pykan's pair form ``'[0,1]->[0,1]->[0,1]->[0]'`` (two layers) is ``'[0,1]->[0,1]->[0]'`` here, and
the error for a chain that runs past the output layer says so.

For every layer a module crosses, edges from module inputs to non-module outputs and from
non-module inputs to module outputs are removed; edges among non-module nodes stay. Modules that
cross the same layer must use disjoint nodes on both sides (else some node would lose every edge).

- **Separability** ``f = g1(x0, x1) + g2(x2, x3)``: two disjoint modules on width ``[4, 4, 1]``,
  ``"0: [0,1]->[0,1]"`` and ``"0: [2,3]->[2,3]"``, make layer 0 block-diagonal.
- **Generalised symmetry** ``f = g(h(x0, x1), x2)``: a bottleneck. On ``[3, 3, 1]``,
  ``"0: [0,1]->[0]"`` lets inputs 0, 1 feed only hidden node 0, which receives nothing else; with
  a deeper ``h`` on ``[3, 3, 3, 3, 1]``, ``"0: [0,1]->[0,1]->[0]"`` computes ``h`` over layers 0
  and 1 into node 0 of node layer 2, while layers 2 and 3 stay free to compute ``g``.

Masks are boolean arrays ``(in_nodes, out_subnodes)`` per layer, True where an edge may exist.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kandisc.errors import ConfigError

_GROUP = re.compile(r"\s*\[\s*((?:[+-]?\d+\s*,\s*)*[+-]?\d+)?\s*,?\s*\]\s*")
_HEAD = re.compile(r"\s*([+-]?\d+)\s*[:,]\s*(['\"]?)\s*")
_EXAMPLE = "e.g. '0: [0,1]->[0,1]' or {layer: 0, chain: [[0,1], [0,1]]}"


@dataclass
class Module:
    """One module: ``groups[t]`` are node ids of node layer ``start_layer + t`` (non-negative)."""

    start_layer: int
    groups: list[list[int]]
    text: str = ""

    @property
    def layers(self) -> range:
        """The KAN layers this module crosses."""
        return range(self.start_layer, self.start_layer + len(self.groups) - 1)

    def to_dict(self) -> dict:
        """The structured YAML form."""
        return {"layer": self.start_layer, "chain": [list(g) for g in self.groups]}

    def __str__(self) -> str:
        chain = "->".join("[" + ",".join(str(i) for i in g) + "]" for g in self.groups)
        return f"{self.start_layer}: {chain}"


def _layer_name(node_layer: int, n_layers: int) -> str:
    role = "input" if node_layer == 0 else "output" if node_layer == n_layers else "hidden"
    return f"{role} node layer {node_layer}"


def _parse_chain(chain: str, label: str) -> list[list[int]]:
    parts = chain.split("->")
    groups = []
    for k, part in enumerate(parts, start=1):
        match = _GROUP.fullmatch(part)
        if match is None:
            shown = part.strip() or "(nothing)"
            raise ConfigError(
                f"{label}: group {k} '{shown}' is not a bracketed list of node ids like [0,1]; {_EXAMPLE}"
            )
        body = match.group(1)
        groups.append([int(t) for t in body.split(",")] if body else [])
    return groups


def _parse_string(text: str, label: str) -> tuple[int, list[list[int]]]:
    start = text.find("[")
    if start < 0:
        raise ConfigError(f"{label}: no node-id groups found; {_EXAMPLE}")
    head, chain = text[:start], text[start:].rstrip()
    if not head.strip():
        return 0, _parse_chain(chain, label)
    match = _HEAD.fullmatch(head)
    if match is None:
        raise ConfigError(f"{label}: cannot read the start layer from '{head.strip()}'; {_EXAMPLE}")
    quote = match.group(2)
    if quote:
        if not chain.endswith(quote):
            raise ConfigError(f"{label}: the chain opens with {quote} but does not close it")
        chain = chain[:-1]
    return int(match.group(1)), _parse_chain(chain, label)


def _parse_structured(item: dict, label: str) -> tuple[int, list[list[int]]]:
    if len(item) == 1 and isinstance(next(iter(item)), int):  # YAML `- 0: "[0,1]->[0]"` unquoted
        ((layer, chain),) = item.items()
    else:
        unknown = sorted(str(k) for k in item if k not in ("layer", "chain"))
        if unknown or "chain" not in item:
            close = difflib.get_close_matches(unknown[0], ["layer", "chain"], n=1) if unknown else []
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            what = f"unknown key '{unknown[0]}'{hint}" if unknown else "missing key 'chain'"
            raise ConfigError(f"{label}: {what}; a structured module has keys layer, chain ({_EXAMPLE})")
        layer, chain = item.get("layer", 0), item["chain"]
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ConfigError(f"{label}: layer must be an integer, got {layer!r}")
    if isinstance(chain, str):
        return layer, _parse_chain(chain, label)
    if not isinstance(chain, list | tuple):
        raise ConfigError(f"{label}: chain must be a string or a list of lists of node ids; {_EXAMPLE}")
    groups = []
    for k, group in enumerate(chain, start=1):
        ok = isinstance(group, list | tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in group)
        if not ok:
            raise ConfigError(f"{label}: group {k} must be a list of node ids, got {group!r}")
        groups.append(list(group))
    return layer, groups


def _pykan_hint(groups: list[list[int]]) -> str:
    pairs = len(groups) % 2 == 0 and all(groups[t] == groups[t + 1] for t in range(1, len(groups) - 1, 2))
    if len(groups) >= 4 and pairs:
        collapsed = [groups[0]] + groups[1::2]
        chain = "->".join("[" + ",".join(map(str, g)) + "]" for g in collapsed)
        return f"; this looks like pykan's pair form, which kandisc writes '{chain}'"
    return ""


def _normalise(start: int, groups: list[list[int]], width_nodes: Sequence[int], label: str) -> Module:
    n_layers = len(width_nodes) - 1
    if start < 0 or start >= n_layers:
        raise ConfigError(f"{label}: start layer {start} is out of range; the model has layers 0..{n_layers - 1}")
    if len(groups) < 2:
        raise ConfigError(f"{label}: a module needs at least two groups (inputs -> outputs); {_EXAMPLE}")
    crossed = len(groups) - 1
    if start + crossed > n_layers:
        raise ConfigError(
            f"{label}: {len(groups)} groups cross {crossed} layers from layer {start}, past the output "
            f"layer (the model has layers 0..{n_layers - 1}; each '->' is one layer){_pykan_hint(groups)}"
        )
    normalised = []
    for t, group in enumerate(groups):
        node_layer, n = start + t, width_nodes[start + t]
        where = f"group {t + 1} ({_layer_name(node_layer, n_layers)})"
        if not group:
            raise ConfigError(f"{label}: {where} is empty; every group needs at least one node id")
        ids = []
        for raw in group:
            if not -n <= raw < n:
                raise ConfigError(
                    f"{label}: node {raw} in {where} is out of range; that layer has {n} nodes: "
                    f"use 0..{n - 1} (or -{n}..-1 from the end)"
                )
            node = raw % n
            if node in ids:
                raise ConfigError(f"{label}: node {node} appears twice in {where}")
            ids.append(node)
        normalised.append(sorted(ids))
    return Module(start, normalised)


def _check_overlap(modules: list[Module], labels: list[str], n_layers: int) -> None:
    owner: dict[tuple[int, str, int], int] = {}  # (layer, side, node) -> module index
    for m, module in enumerate(modules):
        for t, layer in enumerate(module.layers):
            sides = (("in", layer, module.groups[t]), ("out", layer + 1, module.groups[t + 1]))
            for side, node_layer, group in sides:
                for node in group:
                    other = owner.setdefault((layer, side, node), m)
                    if other != m:
                        where = f"node {node} of {_layer_name(node_layer, n_layers)}"
                        raise ConfigError(
                            f"{labels[other]} and {labels[m]} both contain {where}, and both cross "
                            f"layer {layer}; modules that cross the same layer must use disjoint nodes"
                        )


def _node_widths(width_in: Sequence[int], width_out_nodes: Sequence[int]) -> list[int]:
    if len(width_in) != len(width_out_nodes) or not width_in:
        raise ValueError("width_in and width_out_nodes need one entry per layer")
    if any(a != b for a, b in zip(width_in[1:], width_out_nodes[:-1], strict=True)):
        raise ValueError(f"inconsistent widths: in {list(width_in)}, out nodes {list(width_out_nodes)}")
    return [int(width_in[0]), *(int(w) for w in width_out_nodes)]


def parse_modules(
    items: Sequence[str | dict | Module] | str | dict | None,
    width_in: Sequence[int],
    width_out_nodes: Sequence[int],
) -> list[Module]:
    """Parse and check ``modules:`` entries against a model's node widths.

    ``width_in[l]`` is the number of input nodes of layer ``l`` and ``width_out_nodes[l]`` its
    number of output nodes (not subnodes). Raises ConfigError naming the module and what is wrong.
    """
    width_nodes = _node_widths(width_in, width_out_nodes)
    if items is None:
        return []
    if isinstance(items, str | dict):
        items = [items]
    modules, labels = [], []
    for k, item in enumerate(items):
        text = str(item) if isinstance(item, Module) else item if isinstance(item, str) else repr(item)
        label = f"modules[{k}] ({text!r})"
        if isinstance(item, Module):
            start, groups = item.start_layer, item.groups
        elif isinstance(item, str):
            start, groups = _parse_string(item, label)
        elif isinstance(item, dict):
            start, groups = _parse_structured(item, label)
        else:
            raise ConfigError(f"{label}: a module must be a string or a mapping; {_EXAMPLE}")
        module = _normalise(start, groups, width_nodes, label)
        module.text = text
        modules.append(module)
        labels.append(label)
    _check_overlap(modules, labels, len(width_nodes) - 1)
    return modules


def module_masks(
    modules: Sequence[Module], width_nodes: Sequence[int], subnode_to_node: Sequence[Sequence[int]]
) -> list[np.ndarray]:
    """Boolean edge masks ``(width_nodes[l], n_subnodes[l])`` per layer, True where an edge may exist.

    ``width_nodes`` has one entry per node layer (inputs .. outputs); ``subnode_to_node[l][j]`` is
    the output node of subnode ``j`` of layer ``l`` (``ModelSpec.subnode_owner(l + 1)``). Masks of several
    modules are combined with AND.
    """
    n_layers = len(width_nodes) - 1
    if len(subnode_to_node) != n_layers:
        raise ValueError(f"subnode_to_node needs {n_layers} entries, got {len(subnode_to_node)}")
    masks = [np.ones((width_nodes[l], len(subnode_to_node[l])), dtype=bool) for l in range(n_layers)]
    for k, module in enumerate(modules):
        label = f"modules[{k}] ({module.text or str(module)!r})"
        checked = _normalise(module.start_layer, module.groups, width_nodes, label)
        for t, layer in enumerate(checked.layers):
            inside_in = np.zeros(width_nodes[layer], dtype=bool)
            inside_in[checked.groups[t]] = True
            inside_out = np.zeros(width_nodes[layer + 1], dtype=bool)
            inside_out[checked.groups[t + 1]] = True
            inside_sub = inside_out[np.asarray(subnode_to_node[layer], dtype=int)]
            masks[layer] &= inside_in[:, None] == inside_sub[None, :]
    return masks


def masks_from_config(
    items: Sequence[str | dict | Module] | str | dict | None,
    width: Sequence[int | Sequence[int]],
    mult_arity: int | Sequence = 2,
) -> list[np.ndarray]:
    """Parse ``modules:`` entries for a model of node-layer ``width`` and return its edge masks."""
    from kandisc.model import ModelSpec

    spec = ModelSpec.build(list(width), mult_arity=mult_arity)
    mapping = [spec.subnode_owner(layer + 1) for layer in range(spec.depth)]
    width_nodes = [w if isinstance(w, int) else int(sum(w[:2])) for w in width]
    modules = parse_modules(items, width_nodes[:-1], width_nodes[1:])
    return module_masks(modules, width_nodes, mapping)
