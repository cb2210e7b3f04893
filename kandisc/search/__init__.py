"""The discovery search: when a config names no ``pipeline``, ``kandisc fit`` tries a portfolio of
candidate fits and keeps the formula that is best on held-out rows for its complexity.

Modules: ``plan`` (which candidates apply to the data: networks with and without multiplication
nodes, a log target where the target is one-signed, seeds), ``worker`` (one candidate: the usual
staged pipeline in memory, stopped at the deadline), ``pool`` (candidates in parallel processes
within the time budget) and ``choose`` (one Pareto front over every candidate's formulas, and the
verdict whether a law was found).
"""
