"""Checks of a loaded ``model.pt`` payload: a model file is user input like a config or a CSV.

Every field is held to the rules a fresh run obeys: the spec to the config's limits (the same
pydantic validators), names unique and matching the network's inputs and outputs, auxiliary
formulas through the safe parser, normalisation and reference rows finite and of the right
lengths, the state_dict to the exact keys, shapes and dtypes of the network the spec builds, and the
content to its checksum (flipped bits). Each failure is a :class:`Damaged` naming the field;
:mod:`kandisc.io.model_file` turns it into a one-line ``CheckpointError``.
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Mapping
from typing import Any

import torch


class Damaged(ValueError):
    """One field of a model file is wrong; the message says which and how."""


_CHECKSUM_SKIP = ("checksum",)


def checksum(payload: Mapping[str, Any]) -> str:
    """sha256 over every field but ``checksum`` itself, tensors by dtype, shape and bytes."""
    h = hashlib.sha256()
    _digest({k: v for k, v in payload.items() if k not in _CHECKSUM_SKIP}, h)
    return h.hexdigest()


def _digest(obj: Any, h: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=repr):
            _digest(key, h)
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for item in obj:
            _digest(item, h)
        h.update(b"]")
    elif isinstance(obj, float):
        h.update(b"f" + struct.pack("<d", obj))
    else:  # str, int, bool, None
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def _names(payload: Mapping[str, Any], key: str, count: int | None) -> list[str]:
    names = payload.get(key)
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise Damaged(f"{key} must be a list of non-empty names")
    bad = [n for n in names if any(ord(c) < 32 or ord(c) == 127 for c in n)]
    if bad:
        raise Damaged(f"{key} has the name {bad[0]!r} with a control character")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Damaged(f"{key} lists {twice[0]!r} twice")
    if count is not None and len(names) != count:
        raise Damaged(f"{key} has {len(names)} names but the network has {count}")
    return names


def check_spec(spec: Any) -> dict:
    """The spec dict, held to the config's limits on width, grid, k, arity, ranges."""
    from pydantic import ValidationError

    from kandisc.io.config import ModelConfig, format_errors

    if not isinstance(spec, dict) or "width" not in spec:
        raise Damaged(f"spec must be a mapping with a width (got {type(spec).__name__})")
    fields = {k: spec[k] for k in ModelConfig.model_fields if k in spec and k != "dtype"}
    try:
        ModelConfig.model_validate(fields)
    except ValidationError as exc:
        raise Damaged(f"spec: {format_errors(exc, 'spec').removeprefix('spec: ')}") from None
    seed = spec.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**64:
        raise Damaged(f"spec.seed must be an integer 0..2**64-1 (got {seed!r})")
    return spec


def check_fields(payload: Mapping[str, Any], n_inputs: int, n_outputs: int) -> None:
    """Names, auxiliary formulas, normalisation, extras and stored tensors of a payload."""
    inputs = _names(payload, "input_names", n_inputs)
    _names(payload, "output_names", n_outputs)
    columns = _names({"data_columns": payload.get("data_columns") or inputs}, "data_columns", None)
    auxiliary = _auxiliary(payload.get("auxiliary") or {}, columns)
    unknown = [n for n in inputs if n not in columns and n not in auxiliary]
    if unknown:
        raise Damaged(f"input {unknown[0]!r} is neither a data column nor an auxiliary feature")
    _normalization(payload.get("normalization"), n_inputs, n_outputs)
    _extras(payload.get("extras") or {})
    _tensors(payload.get("tensors") or {}, n_inputs)


def _auxiliary(auxiliary: Any, columns: list[str]) -> dict[str, str]:
    from kandisc.errors import FormulaError
    from kandisc.knowledge.formula import parse_formula

    if not isinstance(auxiliary, dict):
        raise Damaged("auxiliary must be a mapping name -> formula")
    for name, text in auxiliary.items():
        if not isinstance(name, str) or not name.isidentifier() or name in columns:
            raise Damaged(f"auxiliary feature name {name!r} is not an identifier distinct from the data columns")
        try:
            parse_formula(text, columns)
        except FormulaError as err:
            raise Damaged(f"auxiliary feature {name!r}: {err}") from None
    return auxiliary


def _finite_list(value: Any, length: int, what: str, positive: bool = False) -> None:
    ok = isinstance(value, list | tuple) and len(value) == length
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if ok and positive:
        ok = all(v > 0 for v in value)
    if not ok:
        kind = "positive finite numbers" if positive else "finite numbers"
        raise Damaged(f"normalization.{what} must be {length} {kind}")


def _normalization(norm: Any, n_inputs: int, n_outputs: int) -> None:
    if norm is None:
        return
    keys = ("x_mean", "x_std", "y_mean", "y_std")
    # y_log (the per-target log transform) is optional; io.scaling.Scaling.from_dict checks its values.
    if not isinstance(norm, dict) or sorted(set(norm) - {"y_log"}) != sorted(keys):
        got = sorted(norm) if isinstance(norm, dict) else type(norm).__name__
        raise Damaged(f"normalization must hold {', '.join(keys)} (got {got})")
    for key in keys:
        _finite_list(norm[key], n_inputs if key[0] == "x" else n_outputs, key, positive=key.endswith("std"))
    if "y_log" in norm:
        _finite_list(norm["y_log"], n_outputs, "y_log", positive=False)


def _extras(extras: Any) -> None:
    """The extras kandisc reads back (explain, predict); the others are only shown to people."""
    if not isinstance(extras, dict):
        raise Damaged("extras must be a mapping")
    formulas = extras.get("formulas") or {}
    if not isinstance(formulas, dict) or not all(
        f is None or (isinstance(f, dict) and isinstance(f.get("sympy"), str | None)) for f in formulas.values()
    ):
        raise Damaged("extras.formulas must map each output to {sympy: text, ...} or null")
    ranges = extras.get("input_ranges") or {}
    if not isinstance(ranges, dict) or not all(
        isinstance(r, list | tuple)
        and len(r) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in r)
        and r[0] <= r[1]
        for r in ranges.values()
    ):
        raise Damaged("extras.input_ranges must map each input to [low, high]")
    shape = extras.get("shape_initial")
    if shape is not None and not isinstance(shape, list):
        raise Damaged("extras.shape_initial must be a list of layer widths")
    pruned = extras.get("pruned_inputs") or []
    if not isinstance(pruned, list) or not all(isinstance(n, str) for n in pruned):
        raise Damaged("extras.pruned_inputs must be a list of names")
    labels = extras.get("column_labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise Damaged("extras.column_labels must map formula symbols to CSV column names")


def _tensors(tensors: Any, n_inputs: int) -> None:
    if not isinstance(tensors, dict) or not all(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise Damaged("tensors must map names to tensors")
    ref = tensors.get("reference_x")
    if ref is None:
        return
    if not ref.is_floating_point() or ref.ndim != 2 or ref.shape[0] < 1 or ref.shape[1] != n_inputs:
        raise Damaged(f"tensors.reference_x must be rows x {n_inputs} inputs of floats (got {tuple(ref.shape)})")
    if not bool(torch.isfinite(ref).all()):
        raise Damaged("tensors.reference_x holds NaN/inf values")


def check_state(expected: Mapping[str, torch.Tensor], state: Any, n_functions: int) -> None:
    """The state_dict must have exactly the network's keys, shapes and dtypes, with finite values."""
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise Damaged("state_dict must map parameter names to tensors")
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        raise Damaged(f"state_dict {'lacks ' + missing[0] if missing else 'has the unknown entry ' + extra[0]}")
    for key, want in expected.items():
        got = state[key]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise Damaged(
                f"state_dict {key} is {got.dtype} {tuple(got.shape)},"
                f" the network needs {want.dtype} {tuple(want.shape)}"
            )
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise Damaged(f"state_dict {key} holds NaN/inf values")
        if key.endswith(".grid") and got.numel() and not bool((got.diff(dim=-1) > 0).all()):
            raise Damaged(f"state_dict {key} holds B-spline knots that do not increase")
        if key.endswith("sym_fn") and got.numel() and not (int(got.min()) >= 0 and int(got.max()) < n_functions):
            raise Damaged(f"state_dict {key} names symbolic functions outside the library (0..{n_functions - 1})")
