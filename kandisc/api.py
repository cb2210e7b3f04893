"""Plain functions for notebooks and the CLI: they return result objects and never print or exit.

from kandisc.api import fit_run
result = fit_run("data.csv", config="run.yaml")
result.summary["test_r2"]

The same fit as a scikit-learn estimator: :class:`kandisc.estimator.KANRegressor`.
"""

from __future__ import annotations

from kandisc.compile import CompileResult, compile_formula
from kandisc.dimensions import UnitsResult, units_report
from kandisc.explain import ExplainResult, explain
from kandisc.fitting import FitResult, fit_run, resume_run
from kandisc.predict import PredictResult, predict

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
