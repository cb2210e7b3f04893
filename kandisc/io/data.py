"""CSV tables for fitting: loading with validation, the train/test split and standardisation.

Owns every check a user's CSV must pass before training (file, header, columns, cells, rows) and
the one-line ``DataError`` each failure becomes. Row numbers in messages are data rows counted
from 1 below the header (the header itself is not counted), which is how a table is read by eye.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import keyword
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kandisc.errors import DataError
from kandisc.io.names import column_symbols, renamed

MIN_ROWS = 10
# |values| beyond this overflow float64 once squared (least squares, variances, B-spline ranges).
MAX_MAGNITUDE = 1e100
_ROWS = "data rows counted from 1 below the header"


@dataclass(frozen=True)
class Table:
    """The numeric columns of a CSV chosen as inputs (X) and targets (Y), float64, one row per sample."""

    input_names: list[str]
    target_names: list[str]
    X: np.ndarray
    Y: np.ndarray
    n_dropped: int
    sha256: str
    path: Path
    # symbol -> CSV column, for columns whose names a formula cannot use (see kandisc.io.names)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])


def _read_text(path: Path) -> tuple[str, str]:
    """The file's text and the sha256 of its bytes."""
    if not path.exists():
        raise DataError(f"{path}: data file not found; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not a CSV file; pass the CSV file itself")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read data file ({exc.strerror}); check its permissions") from None
    try:
        text = raw.decode("utf-8-sig")  # -sig: spreadsheets often write a byte-order mark
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); save the file as UTF-8 CSV"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: the file is empty; expected a header row and data rows")
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")  # old Mac line endings: one row per CR
    return text, hashlib.sha256(raw).hexdigest()


def _header(path: Path, text: str) -> list[str]:
    # Read the header ourselves: pandas renames a second 'x' to 'x.1' before we could see it.
    try:
        first = next(csv.reader(io.StringIO(text), skipinitialspace=True), [])
    except csv.Error as exc:
        raise DataError(f"{path}: the header row is not valid CSV ({exc}); fix the first line") from None
    names = [name.strip() for name in first]
    for i, name in enumerate(names):
        if not name:
            raise DataError(f"{path}: column {i + 1} has no name in the header; name it or remove it")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise DataError(
                f"{path}: the name of column {i + 1} ({name!r}) holds a control character (NUL, tab, ...);"
                " rename the column"
            )
        if name in names[:i]:
            raise DataError(
                f"{path}: duplicate column name {name!r} (columns {names.index(name) + 1} and {i + 1});"
                " rename one of them"
            )
    return names


def _long_row(path: Path, text: str, n_columns: int) -> DataError:
    """Find the first row with more values than columns (only called once pandas has failed)."""
    rows = (r for r in csv.reader(io.StringIO(text), skipinitialspace=True) if r)
    next(rows, None)
    for number, row in enumerate(rows, start=1):
        if len(row) > n_columns:
            return DataError(
                f"{path}: data row {number} has {len(row)} values but the header has {n_columns} columns"
                f" ({_ROWS}); remove the extra values or name the extra column"
            )
    return DataError(f"{path}: malformed CSV; every row needs one value per column")


def _parse(path: Path, text: str, names: list[str]) -> pd.DataFrame:
    try:
        with warnings.catch_warnings():
            # pandas only warns (and drops data) when the first row is longer than the header.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.StringIO(text), skipinitialspace=True, header=0, names=names, index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError):
        raise _long_row(path, text, len(names)) from None
    if frame.empty:
        raise DataError(f"{path}: has a header ({', '.join(names)}) but no data rows; add rows")
    return frame


def _pick(path: Path, columns: list[str], names: Sequence[str], key: str) -> None:
    for name in names:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(f"{path}: unknown column {name!r} in {key}{hint}; columns: {', '.join(columns)}")


def _columns(
    path: Path, columns: list[str], inputs: Sequence[str] | None, targets: Sequence[str] | str | None
) -> tuple[list[str], list[str]]:
    """Resolve inputs and targets against the header (defaults: last column is the target)."""
    targets = [targets] if isinstance(targets, str) else list(targets or columns[-1:])
    _pick(path, columns, targets, "data.targets")
    if inputs is None:
        inputs = [c for c in columns if c not in targets]
    inputs = list(inputs)
    _pick(path, columns, inputs, "data.inputs")
    for group, key in ((inputs, "data.inputs"), (targets, "data.targets")):
        twice = [c for c in group if group.count(c) > 1]
        if twice:
            raise DataError(f"{path}: column {twice[0]!r} is listed twice in {key}; list it once")
    both = [c for c in inputs if c in targets]
    if both:
        raise DataError(f"{path}: column {both[0]!r} is in both data.inputs and data.targets; remove it from one")
    if not inputs:
        sep = next(
            (
                f" (the header looks {s!r}-separated; kandisc reads comma-separated files)"
                for s in ";\t|"
                if s in columns[0]
            ),
            "",
        )
        raise DataError(
            f"{path}: no input columns left besides the targets ({', '.join(targets)}){sep};"
            " add input columns or set data.inputs"
        )
    return inputs, targets


def _numeric(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    """One column as float64; text that is not a number (nor an NA marker pandas knows) is an error."""
    series = frame[column]
    if pd.api.types.is_bool_dtype(series):
        series = series.astype(str)  # True/False columns are text to us, not 1/0
    values = pd.to_numeric(series, errors="coerce")
    bad = values.isna() & series.notna()
    if bad.any():
        rows = np.flatnonzero(bad.to_numpy())
        raise DataError(
            f"{path}: non-numeric value {str(series.iloc[rows[0]])!r} in column {column!r} at data row"
            f" {rows[0] + 1} ({_ROWS}; {len(rows)} non-numeric cells in this column); fix or remove them"
        )
    return values.to_numpy(dtype=np.float64)


def _check_magnitude(path: Path, values: np.ndarray, names: list[str]) -> None:
    with np.errstate(invalid="ignore"):
        big = np.isfinite(values) & (np.abs(values) > MAX_MAGNITUDE)  # NaN/inf have their own message
    if big.any():
        row, col = (int(i) for i in np.argwhere(big)[0])
        raise DataError(
            f"{path}: value {values[row, col]:.3g} in column {names[col]!r} at data row {row + 1} ({_ROWS}) is"
            f" beyond ±{MAX_MAGNITUDE:g}, which overflows float64 arithmetic; rescale the column (units, log)"
        )


def _not_finite(path: Path, values: np.ndarray, names: list[str]) -> str:
    bad = ~np.isfinite(values)
    counts = [f"{name!r} ({n})" for name, n in zip(names, bad.sum(axis=0), strict=True) if n]
    rows = np.flatnonzero(bad.any(axis=1))
    first = ", ".join(str(r + 1) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    return (
        f"{path}: {int(bad.sum())} missing or infinite values (NaN/inf) in columns {', '.join(counts)},"
        f" at data rows {first} ({_ROWS}); fix them or set data.dropna: true to drop those rows"
    )


def _check_rows(path: Path, X: np.ndarray, Y: np.ndarray, targets: list[str], n_dropped: int) -> None:
    if X.shape[0] < MIN_ROWS:
        dropped = f" ({n_dropped} rows with NaN/inf dropped)" if n_dropped else ""
        raise DataError(
            f"{path}: only {X.shape[0]} usable rows{dropped}; need at least {MIN_ROWS} to fit and test"
            f" (n_samples={X.shape[0]})"
        )
    for j, name in enumerate(targets):
        if np.ptp(Y[:, j]) == 0:
            raise DataError(
                f"{path}: target column {name!r} is constant (every row is {Y[0, j]:g});"
                " there is nothing to learn, choose another target"
            )


def check_columns(
    path: Path | str, inputs: Sequence[str] | None = None, targets: Sequence[str] | str | None = None
) -> tuple[list[str], list[str]]:
    """The input and target columns a config picks from a CSV's header (for planning, without the rows)."""
    path = Path(path)
    text, _ = _read_text(path)
    return _columns(path, _header(path, text), inputs, targets)


def load_table(
    path: Path | str,
    inputs: Sequence[str] | None = None,
    targets: Sequence[str] | str | None = None,
    dropna: bool = False,
) -> Table:
    """Read and check a CSV; raises DataError (one line naming file, column and row) on any problem."""
    path = Path(path)
    text, sha = _read_text(path)
    names = _header(path, text)
    frame = _parse(path, text, names)
    symbols = column_symbols(names)
    inputs, targets = _columns(path, names, _by_column(inputs, symbols), _by_column(targets, symbols))
    used = inputs + targets
    values = np.column_stack([_numeric(path, frame, c) for c in used])
    _check_magnitude(path, values, used)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all() and not dropna:
        raise DataError(_not_finite(path, values, used))
    values = values[finite]
    n_dropped = int((~finite).sum())
    X, Y = values[:, : len(inputs)].copy(), values[:, len(inputs) :].copy()
    _check_rows(path, X, Y, targets, n_dropped)
    labels = renamed({c: symbols[c] for c in used})
    return Table([symbols[c] for c in inputs], [symbols[c] for c in targets], X, Y, n_dropped, sha, path, labels)


def _by_column(names: Sequence[str] | str | None, symbols: dict[str, str]):
    """Config column names, where one is given as its symbol (``speed_m_s``), as the column itself."""
    if names is None:
        return None
    columns = {s: c for c, s in symbols.items()}
    if isinstance(names, str):
        return names if names in symbols else columns.get(names, names)
    return [n if n in symbols else columns.get(n, n) for n in names]


def _check_names(source: str, names: Sequence[str], what: str, count: int) -> list[str]:
    names = [str(n) for n in names]
    if len(names) != count:
        raise DataError(f"{source}: {len(names)} {what} names for {count} columns; give one name per column")
    for i, name in enumerate(names):
        # Names become the symbols of formulas, so they must be names a formula can use.
        if not name.isidentifier() or keyword.iskeyword(name):
            raise DataError(
                f"{source}: {what} name {name!r} (column {i + 1}) is not a valid identifier;"
                " use letters, digits and _ (not starting with a digit)"
            )
    return names


def table_from_arrays(
    X,
    Y,
    input_names: Sequence[str],
    target_names: Sequence[str],
    dropna: bool = False,
    source: str = "arrays",
) -> Table:
    """A Table from in-memory arrays (X: rows × inputs, Y: rows × targets), checked like a CSV.

    Names must be identifiers and unique over inputs and targets; values must be numbers and, unless
    ``dropna``, finite; at least ``MIN_ROWS`` rows must remain and no target may be constant. Each
    failure is the same one-line ``DataError`` as for a CSV, with ``source`` in place of the path.
    """
    try:
        X = np.array(X, dtype=np.float64, ndmin=2)
        Y = np.array(Y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{source}: values must be numbers ({exc})") from None
    Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise DataError(f"{source}: X {X.shape} and y {Y.shape} must be 2-D (y may be 1-D) with equal rows")
    inputs = _check_names(source, input_names, "input", X.shape[1])
    targets = _check_names(source, target_names, "target", Y.shape[1])
    used = inputs + targets
    twice = next((n for i, n in enumerate(used) if n in used[:i]), None)
    if twice is not None:
        raise DataError(f"{source}: duplicate column name {twice!r}; rename one of them")
    values = np.concatenate([X, Y], axis=1)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all() and not dropna:
        raise DataError(
            _not_finite(source, values, used)
            .replace(_ROWS, "counted from 1")
            .replace("set data.dropna", "pass dropna=True")
        )
    digest = hashlib.sha256(repr(used).encode() + np.ascontiguousarray(values).tobytes()).hexdigest()
    X, Y = X[finite], Y[finite]
    _check_rows(source, X, Y, targets, int((~finite).sum()))
    return Table(inputs, targets, X, Y, int((~finite).sum()), digest, Path(source))


def split(table: Table | int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/test row indices (sorted), at least one row in each part."""
    n = table if isinstance(table, int) else table.n_rows
    if n < 2:
        raise DataError(f"cannot split {n} row(s) into train and test parts; need at least 2 rows")
    n_test = min(max(round(n * test_fraction), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)  # own Generator: never touch global RNG state
    return np.sort(order[n_test:]), np.sort(order[:n_test])


@dataclass(frozen=True)
class Rows:
    """A CSV read for prediction: the numeric columns a model reads, and the whole table as its text."""

    columns: list[str]  # the header, in order
    values: dict[str, np.ndarray]  # the required columns, and the optional ones that are numbers
    text: pd.DataFrame  # every column as the file spells it, to pass through unchanged


def read_columns(path: Path | str, required: Sequence[str], optional: Sequence[str] = ()) -> Rows:
    """Read the ``required`` numeric columns of a CSV for prediction (matched by name, any order).

    Other columns (ids, other measurements) are kept as text in ``Rows.text``. An ``optional``
    column (e.g. a target to compare with) is read as numbers when every cell is a finite number.
    Missing required columns, non-numeric cells and NaN/inf in them are errors naming the column.
    """
    path = Path(path)
    text, _ = _read_text(path)
    names = _header(path, text)
    frame = _parse(path, text, names)
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; the model needs {', '.join(required)}"
        )
    values = np.column_stack([_numeric(path, frame, c) for c in required]) if required else np.empty((len(frame), 0))
    _check_magnitude(path, values, list(required))
    if not np.isfinite(values).all():
        raise DataError(
            _not_finite(path, values, list(required)).replace(
                "or set data.dropna: true to drop those rows", "or remove those rows"
            )
        )
    out = {c: values[:, i] for i, c in enumerate(required)}
    for column in (c for c in optional if c in names and c not in out):
        numbers = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        if np.isfinite(numbers).all():  # otherwise it is passed through, not compared with
            out[column] = numbers
    raw = pd.read_csv(
        io.StringIO(text),
        skipinitialspace=True,
        header=0,
        names=names,
        index_col=False,
        dtype=str,
        keep_default_na=False,
    )
    return Rows(names, out, raw)


def read_header(path: Path | str) -> list[str]:
    """The column names of a CSV (checked like every header)."""
    path = Path(path)
    return _header(path, _read_text(path)[0])
