"""kandisc: scientific discovery with Kolmogorov-Arnold Networks (KAN 2.0 / MultKAN).

The public Python API lives in :mod:`kandisc.api` (plain functions) and :mod:`kandisc.estimator`
(``KANRegressor``, a scikit-learn estimator, also ``from kandisc import KANRegressor``); the engine
in :mod:`kandisc.model`. This module stays import-light so that ``kandisc --help`` answers fast:
``KANRegressor`` is imported on first use.
"""

__version__ = "0.1.0"
__all__ = ["KANRegressor", "__version__"]


def __getattr__(name: str):
    if name == "KANRegressor":
        from kandisc.estimator import KANRegressor

        return KANRegressor
    raise AttributeError(f"module 'kandisc' has no attribute {name!r}")
