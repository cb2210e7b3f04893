"""Knowledge the scientist brings in (KAN 2.0, "Building Scientific Knowledge").

- :mod:`kandisc.knowledge.formula`: the one safe formula parser (text -> sympy, no ``eval``) and
  sympy -> numpy / torch evaluators.
- :mod:`kandisc.knowledge.auxiliary`: auxiliary input features (``beta: v/c``) computed from the
  data and substituted back into the original columns.
- :mod:`kandisc.knowledge.modules`: modular structure (separability, generalised symmetry) as
  edge masks.

Import the submodules directly; this package imports nothing so that ``kandisc --help`` stays fast.
"""
