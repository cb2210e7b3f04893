"""The staged ``kandisc fit``: a run is a list of stages, each a function over one shared state.

- :mod:`kandisc.pipeline.runner`: validate everything, then create and fill the run directory;
- :mod:`kandisc.pipeline.state`: what the stages share (``RunState``), ``StageReport``, ``ProgressSink``;
- :mod:`kandisc.pipeline.stages`: the ``fit``, ``prune`` and ``refine`` stages and the stage loop;
- :mod:`kandisc.pipeline.symbolic_stage`: the ``symbolic`` stage (snap, retrain, formulas);
- :mod:`kandisc.pipeline.finalize`: metrics, attribution, model.pt, summary.json, formulas.csv;
- :mod:`kandisc.pipeline.figures`: the run's figures; :mod:`kandisc.pipeline.report`: report.md.

Import the submodules directly; this package imports nothing.
"""
