"""The one map between raw units and the model's space: z-scored inputs, transformed and z-scored targets.

A model sees ``u = (x - x_mean) / x_std`` and is trained on ``v = (t(y) - y_mean) / y_std`` where
``t`` is, per target, the identity or ``log(sign·y)`` (``y_log`` holds 0 for the identity, +1 or
-1 for the log of a one-signed target, where a product of powers becomes a sum). ``Scaling``
applies that map, and its inverse, to numpy arrays, torch tensors and sympy expressions alike,
so the training data, predictions, assembled formulas and priors never re-implement it.
``Scaling.identity`` is the map of a run without standardisation (``data.standardize: false``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kandisc.errors import CheckpointError

_KEYS = ("x_mean", "x_std", "y_mean", "y_std")


def _scale(values: np.ndarray) -> np.ndarray:
    std = values.std(axis=0)
    return np.where(std > 0, std, 1.0)  # constant columns keep their values centred, not divided by 0


def _like(values: np.ndarray, ref: Any) -> Any:
    """``values`` as the array type (and dtype/device) of ``ref``: numpy or torch."""
    if isinstance(ref, np.ndarray):
        return values
    import torch

    return torch.as_tensor(values, dtype=ref.dtype, device=ref.device)


def _log(values: Any) -> Any:
    return np.log(values) if isinstance(values, np.ndarray) else values.log()


def _exp(values: Any) -> Any:
    return np.exp(values) if isinstance(values, np.ndarray) else values.exp()


def log_sign(y: np.ndarray) -> int:
    """+1 / -1 when every value of ``y`` is strictly positive / negative (a log applies), else 0."""
    if y.size and bool(np.all(y > 0)):
        return 1
    if y.size and bool(np.all(y < 0)):
        return -1
    return 0


@dataclass(frozen=True, eq=False)
class Scaling:
    """Per-column input z-scores, per-target transform and z-scores (see the module docstring)."""

    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    y_log: np.ndarray  # per target: 0 = identity, +1/-1 = log(±y)

    @classmethod
    def fit(cls, X: np.ndarray, Y: np.ndarray, standardize: bool = True, y_log=None) -> Scaling:
        """Fitted on training rows; ``y_log`` (per target 0/±1) must suit the signs of ``Y``."""
        y_log = np.zeros(Y.shape[1]) if y_log is None else np.asarray(y_log, dtype=np.float64)
        t = np.where(y_log != 0, np.log(np.abs(np.where(y_log != 0, Y * y_log, 1.0))), Y)
        if not standardize:
            return replace(cls.identity(X.shape[1], Y.shape[1]), y_log=y_log)
        return cls(X.mean(axis=0), _scale(X), t.mean(axis=0), _scale(t), y_log)

    @classmethod
    def identity(cls, n_inputs: int, n_targets: int) -> Scaling:
        """The no-op map, so callers need no special case when nothing is standardised."""
        return cls(np.zeros(n_inputs), np.ones(n_inputs), np.zeros(n_targets), np.ones(n_targets), np.zeros(n_targets))

    @property
    def is_identity(self) -> bool:
        arrays = (self.x_mean, self.y_mean, self.y_log, self.x_std - 1, self.y_std - 1)
        return all(not np.any(a) for a in arrays)

    def select_inputs(self, keep: list[int]) -> Scaling:
        """The map of a model that kept only the inputs ``keep`` (after pruning)."""
        return replace(self, x_mean=self.x_mean[keep], x_std=self.x_std[keep])

    # --- numpy arrays and torch tensors -------------------------------------------------------
    def x_to_model(self, x):
        return (x - _like(self.x_mean, x)) / _like(self.x_std, x)

    def x_from_model(self, u):
        return u * _like(self.x_std, u) + _like(self.x_mean, u)

    def y_to_model(self, y):
        sign = _like(self.y_log, y)
        logged = sign != 0
        t = y
        if bool(logged.any()):
            t = y * 1.0  # a copy of the same type
            t[..., logged] = _log(y[..., logged] * sign[logged])
        return (t - _like(self.y_mean, y)) / _like(self.y_std, y)

    def y_from_model(self, v):
        t = v * _like(self.y_std, v) + _like(self.y_mean, v)
        sign = _like(self.y_log, v)
        logged = sign != 0
        if bool(logged.any()):
            t = t * 1.0
            t[..., logged] = _exp(t[..., logged]) * sign[logged]
        return t

    # --- sympy expressions ----------------------------------------------------------------------
    def x_exprs_to_model(self, symbols: list) -> list:
        """Model-space inputs as expressions of the raw input symbols."""
        return [(s - _number(m)) / _number(d) for s, m, d in zip(symbols, self.x_mean, self.x_std, strict=True)]

    def y_exprs_from_model(self, exprs: list) -> list:
        """Raw-unit targets as expressions of the model's outputs."""
        import sympy as sp

        out = []
        for v, m, s, sign in zip(exprs, self.y_mean, self.y_std, self.y_log, strict=True):
            t = v * _number(s) + _number(m)
            out.append(_number(sign) * sp.exp(t) if sign else t)
        return out

    # --- storage --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, list[float]]:
        record = {k: [float(v) for v in getattr(self, k)] for k in _KEYS}
        if np.any(self.y_log):
            record["y_log"] = [float(v) for v in self.y_log]
        return record

    @classmethod
    def from_dict(cls, data: Any) -> Scaling:
        """Inverse of ``to_dict``; a malformed record (from a damaged model file) is a CheckpointError."""
        if not isinstance(data, dict):
            raise CheckpointError(
                f"normalisation record is damaged (a {type(data).__name__}); re-create the model file"
            )
        try:
            arrays = {k: np.asarray(data[k], dtype=np.float64) for k in _KEYS}
            n_targets = arrays["y_mean"].shape[0] if arrays["y_mean"].ndim == 1 else -1
            arrays["y_log"] = np.asarray(data.get("y_log", [0.0] * max(n_targets, 0)), dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"normalisation record is damaged ({type(exc).__name__}: {exc}); re-create the model file"
            ) from None
        _check_record(arrays)
        return cls(**arrays)


def _check_record(arrays: dict[str, np.ndarray]) -> None:
    shapes_ok = (
        all(a.ndim == 1 for a in arrays.values())
        and arrays["x_mean"].shape == arrays["x_std"].shape
        and arrays["y_mean"].shape == arrays["y_std"].shape == arrays["y_log"].shape
    )
    if not shapes_ok:
        raise CheckpointError("normalisation record has mean/std of different lengths; re-create the model file")
    values = np.concatenate(list(arrays.values()))
    stds = np.concatenate([arrays["x_std"], arrays["y_std"]])
    if not np.all(np.isfinite(values)) or np.any(stds <= 0) or not np.all(np.isin(arrays["y_log"], (-1, 0, 1))):
        raise CheckpointError(
            "normalisation record holds non-finite values, a std <= 0 or a transform other than 0/±1; "
            "re-create the model file"
        )


def _number(value: float):
    import sympy as sp

    value = float(value)
    if value == int(value) and abs(value) < 1e12:
        return sp.Integer(int(value))
    if not math.isfinite(value):
        raise ValueError(f"non-finite scaling constant {value}")
    return sp.Float(value, 15)
