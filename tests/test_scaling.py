"""The raw-units <-> model-space map: numpy, torch and sympy agree; records load with validation."""

import json

import numpy as np
import pytest
import sympy as sp
import torch

from kandisc.errors import CheckpointError
from kandisc.io.scaling import Scaling, log_sign


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(40, 3))
    X[:, 1] = 4.0  # constant input column
    Y = np.column_stack([X[:, 0] * 3 + 1, np.exp(X[:, 2])])  # the second target is positive
    return X, Y


def test_round_trip_and_constant_column() -> None:
    X, Y = _data()
    s = Scaling.fit(X, Y)
    Z = s.x_to_model(X)
    assert np.allclose(Z[:, [0, 2]].mean(axis=0), 0) and np.allclose(Z[:, [0, 2]].std(axis=0), 1)
    assert s.x_std[1] == 1.0 and np.all(Z[:, 1] == 0)
    assert np.allclose(s.x_from_model(Z), X) and np.allclose(s.y_from_model(s.y_to_model(Y)), Y)
    restored = Scaling.from_dict(json.loads(json.dumps(s.to_dict())))
    assert restored.to_dict() == s.to_dict()
    identity = Scaling.identity(3, 2)
    assert identity.is_identity and not s.is_identity
    assert np.array_equal(identity.x_to_model(X), X) and np.array_equal(identity.y_from_model(Y), Y)


def test_log_target_numpy_torch_and_sympy_agree() -> None:
    X, Y = _data()
    s = Scaling.fit(X, Y, y_log=[0, log_sign(Y[:, 1])])
    v = s.y_to_model(Y)
    assert np.allclose(v.mean(axis=0), 0) and np.allclose(v[:, 1] * s.y_std[1] + s.y_mean[1], X[:, 2])
    vt = s.y_to_model(torch.as_tensor(Y))
    assert torch.allclose(vt, torch.as_tensor(v)) and np.allclose(s.y_from_model(vt).numpy(), Y)
    outs = sp.symbols("o0 o1")
    exprs = s.y_exprs_from_model(list(outs))
    values = [float(e.subs({outs[0]: v[3, 0], outs[1]: v[3, 1]})) for e in exprs]
    assert np.allclose(values, Y[3])
    negative = Scaling.fit(X, -Y[:, 1:], y_log=[-1])
    assert np.allclose(negative.y_from_model(negative.y_to_model(-Y[:, 1:])), -Y[:, 1:])


def test_log_sign() -> None:
    assert log_sign(np.array([1.0, 2.0])) == 1 and log_sign(np.array([-1.0, -0.1])) == -1
    assert log_sign(np.array([-1.0, 1.0])) == 0 and log_sign(np.array([0.0, 1.0])) == 0


def test_select_inputs_after_pruning() -> None:
    X, Y = _data()
    s = Scaling.fit(X, Y).select_inputs([0, 2])
    assert np.allclose(s.x_to_model(X[:, [0, 2]]).std(axis=0), 1)


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"x_mean": [0.0]}, "damaged"),
        ("garbage", "damaged"),
        ({"x_mean": [0.0], "x_std": [1.0, 2.0], "y_mean": [0.0], "y_std": [1.0]}, "different lengths"),
        ({"x_mean": [0.0], "x_std": [0.0], "y_mean": [0.0], "y_std": [1.0]}, "std <= 0"),
        ({"x_mean": [float("nan")], "x_std": [1.0], "y_mean": [0.0], "y_std": [1.0]}, "non-finite"),
        ({"x_mean": [0.0], "x_std": [1.0], "y_mean": [0.0], "y_std": [1.0], "y_log": [2.0]}, "transform"),
        ({"x_mean": "ab", "x_std": [1.0], "y_mean": [0.0], "y_std": [1.0]}, "damaged"),
    ],
)
def test_damaged_records_are_checkpoint_errors(record, match) -> None:
    with pytest.raises(CheckpointError, match=match):
        Scaling.from_dict(record)
