"""The staged ``kandisc fit``: a run is a list of stages, each a function over one shared state.

- :mod:`kandisc.pipeline.runner`: validate everything, then build the untrained model and its data
  (the run directory itself is :mod:`kandisc.fitting`'s);
- :mod:`kandisc.pipeline.state`: what the stages share (``RunState``), ``StageReport``, ``ProgressSink``;
- :mod:`kandisc.pipeline.stages`: the ``fit``, ``prune`` and ``refine`` stages, the stage registry and loop;
- :mod:`kandisc.pipeline.training`: training in place with progress, for ``fit`` and symbolic retraining;
- :mod:`kandisc.pipeline.symbolic_stage`: the ``symbolic`` stage (snap, retrain, formulas);
- :mod:`kandisc.pipeline.finalize`: metrics, attribution, model.pt, summary.json, formulas.csv;
- :mod:`kandisc.pipeline.figures`: the run's figures; :mod:`kandisc.pipeline.report`: report.md.

Import the submodules directly; this package imports nothing.
"""
