"""Symbolic discovery: fitting library functions to edges, choosing among them, formulas.

- :mod:`kandisc.symbolic.edge_fit`: fits y ≈ c·f(a·x+b)+d for every edge and library function at once;
- :mod:`kandisc.symbolic.selection`: the documented rule that picks one function per edge;
- :mod:`kandisc.symbolic.assemble`: the formula of what a model computes, verified against it;
- :mod:`kandisc.symbolic.simplify`: constant snapping, refitting and the Pareto list of candidates.

The function library itself is :mod:`kandisc.model.functions` (the engine evaluates it).
"""
