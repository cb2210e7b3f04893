"""Batch jobs: many ``kandisc fit`` runs from one manifest, locally or on Slurm.

The manifest (``BATCH_DIR/manifest.csv``, one row per fit) is the unit of a batch:

- :mod:`kandisc.batch.manifest` validates a sweep spec, expands it into rows and reads/writes manifests;
- :mod:`kandisc.batch.local` runs one row (:func:`~kandisc.batch.local.run_one`, idempotent) and a
  whole manifest in a process pool;
- :mod:`kandisc.batch.slurm` writes (and optionally submits) an ``sbatch --array`` script;
- :mod:`kandisc.batch.status` collects every run into ``BATCH_DIR/summary.csv``;
- :mod:`kandisc.batch.cli` is the ``kandisc batch`` command group.

Nothing here imports torch at module level: the fits happen in :func:`kandisc.api.fit_run`.
"""
