"""``ModelSpec``: the JSON-able description a MultKAN is built from (and saved with).

Width notation as KAN users know it: ``[2, 5, 1]`` or ``[2, [3, 2], 1]`` where ``[n_sum, n_mult]``
declares sum and multiplication nodes. Layer ``l`` maps the ``nodes(l)`` nodes of node-layer ``l``
to the ``subnodes(l+1)`` subnodes of node-layer ``l+1``: one per sum node, ``arity`` per mult node
(sum-node subnodes first, then each mult node's factors consecutively).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

from kandisc.defaults import BASE_FUN, BASE_FUNCTIONS, GRID, GRID_EPS, GRID_RANGE, NOISE_SCALE, ORDER

__all__ = ["BASE_FUNCTIONS", "ModelSpec", "normalize_arity", "normalize_width"]


def normalize_width(width) -> list[list[int]]:
    """Return a new list of ``[n_sum, n_mult]`` pairs; never mutates the caller's list."""
    if not isinstance(width, list | tuple) or len(width) < 2:
        raise ValueError(f"width must be a list of at least two layers, got {width!r}")
    out = []
    for pos, entry in enumerate(width):
        if isinstance(entry, bool):
            raise ValueError(f"width[{pos}] must be an int or [n_sum, n_mult], got {entry!r}")
        if isinstance(entry, int):
            pair = [entry, 0]
        elif isinstance(entry, list | tuple) and len(entry) == 2 and all(isinstance(v, int) for v in entry):
            pair = [int(entry[0]), int(entry[1])]
        else:
            raise ValueError(f"width[{pos}] must be an int or [n_sum, n_mult], got {entry!r}")
        if pair[0] < 0 or pair[1] < 0 or sum(pair) < 1:
            raise ValueError(f"width[{pos}] must have at least one node and no negative counts, got {entry!r}")
        out.append(pair)
    if out[0][1] != 0:
        raise ValueError("the input layer width[0] cannot have multiplication nodes")
    return out


def normalize_arity(mult_arity, width: list[list[int]]) -> list[list[int]]:
    """Per node-layer list of per-mult-node arities (entry 0, the input layer, is always empty)."""
    if isinstance(mult_arity, int) and not isinstance(mult_arity, bool):
        if mult_arity < 2:
            raise ValueError(f"mult_arity must be >= 2, got {mult_arity}")
        return [[mult_arity] * n_mult for _, n_mult in width]
    if not isinstance(mult_arity, list | tuple) or len(mult_arity) != len(width):
        raise ValueError(f"mult_arity must be an int or one list per layer ({len(width)} lists), got {mult_arity!r}")
    result = []
    for layer, (arities, (_, n_mult)) in enumerate(zip(mult_arity, width, strict=True)):
        arities = list(arities) if isinstance(arities, list | tuple) else [arities] * n_mult
        if len(arities) != n_mult:
            raise ValueError(f"mult_arity[{layer}] lists {len(arities)} arities but the layer has {n_mult} mult nodes")
        if any((not isinstance(a, int)) or a < 2 for a in arities):
            raise ValueError(f"mult_arity[{layer}] entries must be ints >= 2, got {arities!r}")
        result.append([int(a) for a in arities])
    return result


@dataclass
class ModelSpec:
    """Everything needed to rebuild a MultKAN's structure; parameters live in its state_dict."""

    width: list[list[int]]
    grid: int = GRID
    k: int = ORDER
    mult_arity: list[list[int]] = field(default_factory=list)
    base_fun: str = BASE_FUN
    grid_eps: float = GRID_EPS
    grid_range: tuple[float, float] = GRID_RANGE
    noise_scale: float = NOISE_SCALE
    seed: int = 0
    affine_trainable: bool = False

    @classmethod
    def build(cls, width, mult_arity=2, **kwargs) -> ModelSpec:
        """Validate and normalise user-facing arguments (``width=[2,[3,2],1]``, ``mult_arity=2``)."""
        norm = normalize_width(width)
        spec = cls(width=norm, mult_arity=normalize_arity(mult_arity, norm), **kwargs)
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.base_fun not in BASE_FUNCTIONS:
            raise ValueError(f"base_fun must be one of {', '.join(BASE_FUNCTIONS)}, got {self.base_fun!r}")
        if self.grid < 1 or self.k < 1:
            raise ValueError(f"grid and k must be >= 1, got grid={self.grid}, k={self.k}")
        if not self.grid_range[0] < self.grid_range[1]:
            raise ValueError(f"grid_range must be increasing, got {self.grid_range}")
        if len(self.mult_arity) != len(self.width):
            self.mult_arity = normalize_arity(2, self.width)

    @property
    def depth(self) -> int:
        return len(self.width) - 1

    def nodes(self, layer: int) -> int:
        """Number of nodes in node-layer ``layer`` (sum + mult)."""
        return sum(self.width[layer])

    def subnodes(self, layer: int) -> int:
        """Number of subnodes feeding node-layer ``layer`` (sum nodes + all mult factors)."""
        return self.width[layer][0] + sum(self.mult_arity[layer])

    def subnode_owner(self, layer: int) -> list[int]:
        """For each subnode of node-layer ``layer``, the node it belongs to."""
        n_sum = self.width[layer][0]
        owner = list(range(n_sum))
        for m, arity in enumerate(self.mult_arity[layer]):
            owner += [n_sum + m] * arity
        return owner

    @property
    def n_inputs(self) -> int:
        return self.nodes(0)

    @property
    def n_outputs(self) -> int:
        return self.nodes(self.depth)

    def display_width(self) -> list:
        """The width in user notation: plain ints where a layer has no mult nodes."""
        return [s if m == 0 else [s, m] for s, m in self.width]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["grid_range"] = list(self.grid_range)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        d = copy.deepcopy(d)
        d["grid_range"] = tuple(d.get("grid_range", GRID_RANGE))
        spec = cls(**d)
        spec.width = normalize_width(spec.width)
        spec.mult_arity = normalize_arity(spec.mult_arity, spec.width)
        spec.validate()
        return spec

    def replace(self, **changes) -> ModelSpec:
        d = self.to_dict()
        d.update(changes)
        return ModelSpec.from_dict(d)
