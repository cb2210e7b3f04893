"""Sizes checked before a run starts: network edges, opt lm's parameter budget, training memory.

Limits on single values (grid, width entries, arity) are config validators; what depends on the
whole network (edges, parameters) and on the data (rows, hence memory) is checked here, by
:func:`check_size`, after the width is resolved and before any run directory exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kandisc.errors import ConfigError
from kandisc.io.config_schema import MAX_EDGES, KandiscConfig, _flow


def layer_sizes(width: Sequence[int | list[int]], mult_arity: int | list[list[int]]) -> list[tuple[int, int]]:
    """(nodes, subnodes) of every node layer; refuses a per-layer ``mult_arity`` that does not fit ``width``."""
    from kandisc.model.spec import normalize_arity, normalize_width

    pairs = normalize_width(list(width))
    try:
        arities = normalize_arity(mult_arity, pairs)
    except ValueError as err:
        n_mult = [n for _, n in pairs]
        raise ConfigError(
            f"model.mult_arity: {err}; model.width {_flow(list(width))} has {n_mult} mult nodes per layer,"
            " give one list per layer with one arity per mult node (e.g. [[], [2], []]) or a single int"
        ) from None
    return [(s + m, s + sum(a)) for (s, m), a in zip(pairs, arities, strict=True)]


def _available_memory() -> int | None:
    """Bytes of memory free for a new process (MemAvailable), or None where it cannot be told."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _network(cfg: KandiscConfig, width: Sequence[int | list[int]]) -> tuple[list[tuple[int, int]], int]:
    """Layer sizes and the number of edges of the network a run builds."""
    try:
        sizes = layer_sizes(width, cfg.model.mult_arity)
    except ConfigError:  # a prior's compiled shape: its mult nodes are binary
        sizes = layer_sizes(width, 2)
    return sizes, sum(n_in * sub_out for (n_in, _), (_, sub_out) in zip(sizes, sizes[1:], strict=False))


def training_memory(cfg: KandiscConfig, width: Sequence[int | list[int]], n_rows: int) -> int:
    """Rough bytes a fit of this shape needs: coefficients with optimiser state, and per-row tensors.

    Per row: each layer's B-spline features (in x (G+k+2)) and the per-edge activations with their
    gradients (in x out x 2); the largest grid of the run counts (refine stages included).
    """
    refined = [item.grid for item in cfg.pipeline if item.stage == "refine"] if cfg.pipeline else [10]  # search: 10
    grid = max([cfg.model.grid, *refined])
    sizes, edges = _network(cfg, width)
    features = sum(n_in for n_in, _ in sizes[:-1]) * (grid + cfg.model.k + 2)
    itemsize = 8 if cfg.model.dtype == "float64" else 4
    coefficients = edges * (grid + cfg.model.k + 1)
    return itemsize * (coefficients * 30 + n_rows * (features + 2 * edges) * 3)


def _check_lm_size(cfg: KandiscConfig, edges: int) -> None:
    """``opt: lm`` on a network too big for it fails here, not after the stages before it ran.

    Up to the first prune the shape is known: each edge trains G+k coefficients and two scales.
    """
    from kandisc.lm import MAX_PARAMETERS

    grid = cfg.model.grid
    for index, item in enumerate(cfg.pipeline or []):
        if item.stage == "prune":
            return
        if item.stage == "refine":
            grid = item.grid
        if item.stage == "fit" and item.opt == "lm" and edges * (grid + cfg.model.k + 2) > MAX_PARAMETERS:
            raise ConfigError(
                f"pipeline[{index}].fit: opt lm is for models of at most {MAX_PARAMETERS} trainable parameters;"
                f" this one has at least {edges * (grid + cfg.model.k + 2)} ({edges} edges, grid {grid});"
                " use opt: lbfgs, or a smaller width or grid"
            )


def check_size(cfg: KandiscConfig, width: Sequence[int | list[int]], n_rows: int, available: int | None = None) -> None:
    """Refuse a network with too many edges, too big for opt lm or for this machine's free memory."""
    _, edges = _network(cfg, width)
    if edges > MAX_EDGES:
        raise ConfigError(
            f"the network {_flow(list(width))} has {edges} edges; at most {MAX_EDGES} (KANs for discovery are"
            " small): use fewer or narrower layers"
        )
    _check_lm_size(cfg, edges)
    need = training_memory(cfg, width, n_rows)
    free = _available_memory() if available is None else available
    if free is not None and need > free:
        raise ConfigError(
            f"model.width {_flow(list(width))} with grid {cfg.model.grid} on {n_rows} rows needs about "
            f"{need / 2**30:.1f} GiB of memory to train, more than the {free / 2**30:.1f} GiB free here;"
            " use fewer nodes, a smaller grid or fewer rows"
        )
