"""Knowledge the scientist brings in (KAN 2.0, "Building Scientific Knowledge").

- :mod:`kandisc.knowledge.formula`: the one safe formula parser (text -> sympy, no ``eval``) and
  the sympy -> numpy / torch evaluators.
- :mod:`kandisc.knowledge.auxiliary`: auxiliary input features (``beta: v/c``) computed from the
  data and substituted back into the original columns.
- :mod:`kandisc.knowledge.modules`: modular structure (separability, generalised symmetry) as
  edge masks.
- :mod:`kandisc.knowledge.compiler`: formula -> a MultKAN that computes it exactly (the kanpiler).
- :mod:`kandisc.knowledge.prior`: a prior formula or model file as a trainable starting network.
- :mod:`kandisc.knowledge.user_functions`: functions added to the library as formulas of x.
- :mod:`kandisc.knowledge.units`: SI units of columns (``units:``) and the dimensional check of a
  formula.
- :mod:`kandisc.knowledge.buckingham`: Buckingham π groups and the target's prefactor; the
  dimensionless problem and back-substitution.

Import the submodules directly; this package imports nothing so that ``kandisc --help`` stays fast.
"""
