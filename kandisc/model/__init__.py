"""The MultKAN engine: B-spline bases, layers, mult nodes, masks, symbolic edges, statistics.

- :mod:`kandisc.model.spec`: ``ModelSpec``, the JSON-able description a model is built from;
- :mod:`kandisc.model.spline`: B-spline grids, basis tables and the feature matrix;
- :mod:`kandisc.model.native`: the optional compiled feature kernel (``_basis_native.c``);
- :mod:`kandisc.model.layer`: ``KANLayer``, every edge of one layer evaluated together;
- :mod:`kandisc.model.network`: ``MultKAN``, layers with sum and multiplication nodes;
- :mod:`kandisc.model.stats`: activation statistics and the sparsity penalty;
- :mod:`kandisc.model.spread`: the fused spread and penalty nodes of the regularised objective;
- :mod:`kandisc.model.functions`: the library of symbolic functions, one record each.

Plain torch; no files, no printing, no global RNG seeding.
"""

from kandisc.model.network import MultKAN
from kandisc.model.spec import ModelSpec

__all__ = ["ModelSpec", "MultKAN"]
