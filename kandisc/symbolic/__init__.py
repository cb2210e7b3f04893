"""Symbolic discovery: fitting library functions to edges, choosing among them, formulas.

``edge_fit`` fits y ≈ c·f(a·x+b)+d for every edge and every library function at once;
``selection`` holds the documented rule that picks one function per edge from those fits.
"""
