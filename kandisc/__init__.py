"""kandisc: scientific discovery with Kolmogorov-Arnold Networks (KAN 2.0 / MultKAN).

The public Python API lives in :mod:`kandisc.api`; the engine in :mod:`kandisc.model`.
This module stays import-light so that ``kandisc --help`` answers fast.
"""

__version__ = "0.1.0"
