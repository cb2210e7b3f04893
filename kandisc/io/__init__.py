"""Input and output for kandisc runs: the YAML config (``config``), CSV tables (``data``),
the run directory contract (``rundir``) and atomic file writes (``atomic``).

Nothing here imports torch, so the CLI can validate a config or a CSV before paying for it.
"""
