"""The MultKAN engine: B-spline bases, layers, mult nodes, masks, symbolic edges, statistics.

Plain torch; no files, no printing, no global RNG seeding.
"""

from kandisc.model.network import MultKAN
from kandisc.model.spec import ModelSpec

__all__ = ["ModelSpec", "MultKAN"]
