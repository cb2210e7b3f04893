"""Plain functions for notebooks and the CLI: they return result objects and never print or exit.

from kandisc.api import fit_run
result = fit_run("data.csv", config="run.yaml")
result.summary["test_r2"]

The same fit as a scikit-learn estimator: :class:`kandisc.estimator.KANRegressor`.

Each name is imported from its module on first use, so that ``kandisc fit`` does not pay for
sympy (units, compile) before it starts training.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kandisc.compile import CompileResult, compile_formula
    from kandisc.dimensions import UnitsResult, units_report
    from kandisc.explain import ExplainResult, explain
    from kandisc.fitting import FitResult, fit_run, resume_run
    from kandisc.predict import PredictResult, predict

_HOMES = {
    "CompileResult": "kandisc.compile",
    "compile_formula": "kandisc.compile",
    "UnitsResult": "kandisc.dimensions",
    "units_report": "kandisc.dimensions",
    "ExplainResult": "kandisc.explain",
    "explain": "kandisc.explain",
    "FitResult": "kandisc.fitting",
    "fit_run": "kandisc.fitting",
    "resume_run": "kandisc.fitting",
    "PredictResult": "kandisc.predict",
    "predict": "kandisc.predict",
}

__all__ = [
    "CompileResult",
    "ExplainResult",
    "FitResult",
    "PredictResult",
    "UnitsResult",
    "compile_formula",
    "explain",
    "fit_run",
    "predict",
    "resume_run",
    "units_report",
]


def __getattr__(name: str):
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value
    raise AttributeError(f"module 'kandisc.api' has no attribute {name!r}")
