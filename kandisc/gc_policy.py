"""How often kandisc's own processes collect cyclic garbage.

With torch, sympy and matplotlib loaded a process holds a few million Python objects, and every
full collection of the cyclic garbage collector walks all of them: 0.2 to 0.4 s each on this
project's machines. Python's default thresholds, ``(700, 10, 10)``, ran six of them during one
quickstart fit, 1.3 s of its ~10 s (benchmarks/README.md), most of them set off by the
allocations of importing those libraries and of sympy's simplification.

:func:`collect_rarely` keeps the collector on (a cycle, such as a matplotlib figure and its
canvas, is still freed) with a young generation 30 times larger, so that one full collection
happens per several million surviving allocations rather than every few hundred thousand.
It is applied by the console script and by the worker processes kandisc starts (search and
batch pools), never on import: a notebook's interpreter keeps its own settings.
"""

from __future__ import annotations

import gc

THRESHOLDS = (20_000, 20, 20)  # young collections every 20 000 net allocations; Python's are (700, 10, 10)


def collect_rarely() -> None:
    """Set this process's garbage-collection thresholds to :data:`THRESHOLDS`."""
    gc.set_threshold(*THRESHOLDS)
