"""Input and output for kandisc runs.

- :mod:`kandisc.io.config_schema`: the pydantic models of every config key (types, defaults, docs);
- :mod:`kandisc.io.config`: loading, ``--set`` overrides, one-line error messages, resolved YAML;
- :mod:`kandisc.io.data`: CSV tables, their validation, the train/test split and standardisation;
- :mod:`kandisc.io.rundir`: the run directory contract (files, run.json life cycle, metrics.csv);
- :mod:`kandisc.io.model_file`: the ``model.pt`` format (a model with its names and metadata);
- :mod:`kandisc.io.atomic`: atomic file writes (temp file + rename).

Only ``model_file`` imports torch (and the engine), so the CLI can validate a config or a CSV
before paying for it.
"""
