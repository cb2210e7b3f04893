"""Building ``torch.optim`` optimisers without importing ``torch._dynamo``.

The training stages (:mod:`kandisc.train`) build Adam, and torch's LBFGS for parameters on a
GPU (on the CPU they, and the symbolic stage's constant refits, use :mod:`kandisc.lbfgs`, which
is no ``torch.optim`` optimiser); the first in a process would otherwise pay the import (about a
second on this project's machines) before its first step. Every ``torch.optim`` optimiser kandisc
builds is built by :func:`optimizer`, so none can forget it.
"""

from __future__ import annotations

import sys

import torch


def optimizer(kind: type[torch.optim.Optimizer], params, **options) -> torch.optim.Optimizer:
    """``kind(params, **options)`` (e.g. ``torch.optim.LBFGS``), built after :func:`skip_dynamo_import`."""
    skip_dynamo_import()
    return kind(params, **options)


def skip_dynamo_import() -> None:
    """Keep the first ``torch.optim`` optimiser from importing ``torch._dynamo``.

    ``Optimizer.add_param_group`` and ``zero_grad`` are wrapped by ``torch._disable_dynamo``, which
    imports ``torch._dynamo`` on its first call only to mark them as not to be compiled: about as
    long as importing torch itself, before the first training step. kandisc never compiles, so
    the wrapper is handed its own function as the already-"disabled" version (the attribute the
    wrapper caches it under). Done only while dynamo is not loaded, and a no-op where torch lays
    these wrappers out otherwise; Adam's step imports dynamo regardless.
    """
    if "torch._dynamo" in sys.modules:
        return
    for name in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        raw = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if raw is not None and not hasattr(raw, "__dynamo_disable"):
            setattr(raw, "__dynamo_disable", raw)
