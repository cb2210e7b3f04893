"""The error hierarchy: every error a user can cause derives from ``KandiscError``.

The CLI turns a ``KandiscError`` into one line on stderr and exit code 2; anything else is a bug.
``KandiscError`` is a ``ValueError``: scikit-learn's conventions (and its estimator checks) expect
bad arguments and bad data to raise one, so :class:`kandisc.estimator.KANRegressor` raises the same
errors, with the same messages, as the CLI prints.
"""


class KandiscError(ValueError):
    """A problem with the user's input (data, config, formula, model file)."""


class ConfigError(KandiscError):
    """Invalid YAML config, ``--set`` override or option value."""


class DataError(KandiscError):
    """Unreadable, malformed or unsuitable data (CSV files, columns, values)."""


class FormulaError(KandiscError):
    """A formula string that is unsafe, malformed or uses unsupported functions."""


class CheckpointError(KandiscError):
    """A model file that is missing, corrupt, of another format or of a newer version."""


class RunDirError(KandiscError):
    """A run directory that exists already or cannot be written."""


class SearchError(KandiscError):
    """A discovery search that finished no candidate (time budget too small, every fit failed)."""


class HypothesisError(KandiscError):
    """A hypothesis (``kandisc test``) that names unknown inputs or is malformed."""
