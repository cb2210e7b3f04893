"""Tests for kandisc.io.data: CSV checks and their messages, the split, the standardizer."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from kandisc.errors import DataError
from kandisc.io.data import load_table, split

ROWS = "".join(f"{i},{i * 2}.5,{i % 3 + i / 10}\n" for i in range(12))


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "data.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str | bytes, **kw: object) -> str:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_table(path, **kw)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_defaults_last_column_is_target(tmp_path: Path) -> None:
    path = write(tmp_path, "x, y, z\n" + ROWS.replace(",", ", "))
    table = load_table(path)
    assert table.input_names == ["x", "y"] and table.target_names == ["z"]
    assert table.X.shape == (12, 2) and table.Y.shape == (12, 1) and table.X.dtype == np.float64
    assert table.X[3].tolist() == [3.0, 6.5] and table.n_dropped == 0 and table.n_rows == 12
    assert table.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_explicit_columns_and_several_targets(tmp_path: Path) -> None:
    table = load_table(write(tmp_path, "x,y,z\n" + ROWS), inputs=["z"], targets=["x", "y"])
    assert table.input_names == ["z"] and table.target_names == ["x", "y"]
    assert table.Y.shape == (12, 2)
    assert load_table(write(tmp_path, "x,y,z\n" + ROWS), targets="x").input_names == ["y", "z"]


def test_byte_order_mark_and_blank_lines(tmp_path: Path) -> None:
    table = load_table(write(tmp_path, "\ufeffx,y,z\n" + ROWS + "\n\n1,2,3\n"))
    assert table.input_names == ["x", "y"] and table.n_rows == 13


@pytest.mark.parametrize(
    ("text", "snippet"),
    [
        ("", "the file is empty"),
        ("  \n\n", "the file is empty"),
        ("x,y,z\n", "has a header (x, y, z) but no data rows"),
        ("x,y,x\n" + ROWS, "duplicate column name 'x' (columns 1 and 3); rename one of them"),
        ("x,y,\n" + ROWS, "column 3 has no name in the header"),
        (b"x,y,z\n\xff\xfe1,2,3\n", "not UTF-8 text"),
        ("x,y,z\n" + ROWS + "1,2,3,4\n", "data row 13 has 4 values but the header has 3 columns"),
        ("x,y,z\n1,2,3,4\n" + ROWS, "data row 1 has 4 values but the header has 3 columns"),
        ("x;y;z\n" + ROWS.replace(",", ";"), "the header looks ';'-separated"),
        ("x,y,z\n" + ROWS[:40], "only 4 usable rows; need at least 10"),
        ("x,y,z\n" + "".join(f"{i},1,2\n" for i in range(12)), "target column 'z' is constant"),
    ],
)
def test_file_errors(tmp_path: Path, text: str | bytes, snippet: str) -> None:
    assert snippet in error_of(tmp_path, text)


def test_non_numeric_cell_names_column_row_and_text(tmp_path: Path) -> None:
    message = error_of(tmp_path, "x,y,z\n" + ROWS + "1,abc,2\n3,def,4\n")
    assert "non-numeric value 'abc' in column 'y' at data row 13" in message
    assert "data rows counted from 1 below the header" in message
    assert "2 non-numeric cells in this column" in message


def test_unused_text_columns_are_fine(tmp_path: Path) -> None:
    text = "name,x,y\n" + "".join(f"p{i},{i},{i * i}\n" for i in range(12))
    assert load_table(write(tmp_path, text), inputs=["x"]).X.shape == (12, 1)


def test_nan_and_inf_are_counted_and_located(tmp_path: Path) -> None:
    message = error_of(tmp_path, "x,y,z\n" + ROWS + "1,NaN,2\n3,,4\n5,inf,-inf\n")
    assert "4 missing or infinite values (NaN/inf) in columns 'y' (3), 'z' (1)" in message
    assert "at data rows 13, 14, 15" in message and "data.dropna: true" in message


def test_dropna_drops_rows(tmp_path: Path) -> None:
    table = load_table(write(tmp_path, "x,y,z\n" + ROWS + "1,NaN,2\n3,,4\n5,inf,-inf\n"), dropna=True)
    assert table.n_rows == 12 and table.n_dropped == 3 and np.isfinite(table.X).all()
    message = error_of(tmp_path, "x,y,z\n" + ROWS[:50] + "1,NaN,2\n", dropna=True)
    assert "usable rows (1 rows with NaN/inf dropped); need at least 10" in message


@pytest.mark.parametrize(
    ("kw", "snippet"),
    [
        ({"targets": ["zz"]}, "unknown column 'zz' in data.targets (did you mean 'z'?); columns: x, y, z"),
        ({"inputs": ["x", "q"]}, "unknown column 'q' in data.inputs; columns: x, y, z"),
        ({"inputs": ["x", "z"], "targets": "z"}, "column 'z' is in both data.inputs and data.targets"),
        ({"inputs": ["x", "x"]}, "column 'x' is listed twice in data.inputs"),
        ({"inputs": [], "targets": ["z"]}, "no input columns left besides the targets (z)"),
    ],
)
def test_column_errors(tmp_path: Path, kw: dict, snippet: str) -> None:
    assert snippet in error_of(tmp_path, "x,y,z\n" + ROWS, **kw)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.csv: data file not found"):
        load_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a directory, not a CSV file"):
        load_table(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path, "x,y\n1,2\n")
    path.chmod(0)
    with pytest.raises(DataError, match="cannot read data file"):
        load_table(path)


def test_split_is_deterministic_and_disjoint() -> None:
    train, test = split(100, 0.2, seed=7)
    again_train, again_test = split(100, 0.2, seed=7)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert len(test) == 20 and sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    assert not np.array_equal(split(100, 0.2, seed=8)[1], test)


def test_split_keeps_a_row_on_each_side(tmp_path: Path) -> None:
    assert [len(p) for p in split(3, 0.01, 0)] == [2, 1]
    assert [len(p) for p in split(3, 0.99, 0)] == [1, 2]
    table = load_table(write(tmp_path, "x,y,z\n" + ROWS))
    assert len(split(table, 0.25, 0)[1]) == 3


def test_split_does_not_touch_global_rng() -> None:
    np.random.seed(1)
    expected = np.random.rand()
    np.random.seed(1)
    split(50, 0.2, 3)
    assert np.random.rand() == expected


def test_table_from_arrays_matches_the_csv_loader(tmp_path: Path) -> None:
    from kandisc.io.data import table_from_arrays

    csv = load_table(write(tmp_path, "x,y,z\n" + ROWS))
    table = table_from_arrays(csv.X, csv.Y[:, 0], ["x", "y"], ["z"])
    assert table.input_names == csv.input_names and table.target_names == csv.target_names
    np.testing.assert_array_equal(table.X, csv.X)
    np.testing.assert_array_equal(table.Y, csv.Y)
    holey = csv.X.copy()
    holey[[2, 5], 1] = [np.nan, np.inf]
    with pytest.raises(DataError, match=r"arrays: 2 missing or infinite values \(NaN/inf\) in columns 'y' \(2\)"):
        table_from_arrays(holey, csv.Y, ["x", "y"], ["z"])
    assert table_from_arrays(holey, csv.Y, ["x", "y"], ["z"], dropna=True).n_dropped == 2


@pytest.mark.parametrize(
    ("names", "targets", "message"),
    [
        (["x", "2y"], ["z"], "input name '2y' (column 2) is not a valid identifier"),
        (["x", "lambda"], ["z"], "input name 'lambda' (column 2) is not a valid identifier"),
        (["x"], ["z"], "1 input names for 2 columns"),
        (["x", "z"], ["z"], "duplicate column name 'z'"),
    ],
)
def test_table_from_arrays_names(names, targets, message) -> None:
    from kandisc.io.data import table_from_arrays

    X, Y = np.random.default_rng(0).normal(size=(12, 2)), np.arange(12.0)
    with pytest.raises(DataError) as info:
        table_from_arrays(X, Y, names, targets)
    assert message in str(info.value)
