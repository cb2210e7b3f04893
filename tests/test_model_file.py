"""model.pt: bit-identical round trip, safe loading, and clear errors for bad files."""

import pytest
import torch

from kandisc.errors import CheckpointError
from kandisc.io.model_file import FORMAT_VERSION, ModelBundle, load_model, save_model
from kandisc.io.scaling import Scaling
from kandisc.model import ModelSpec, MultKAN


def make_bundle():
    model = MultKAN(ModelSpec.build([3, [2, 1], 1], grid=4))
    model.update_grid(torch.rand(100, 3, dtype=torch.float64) * 2 - 1)
    model.set_symbolic(0, 1, 0, "sin", [1.5, 0.2, 2.0, 0.1])
    model.remove_edge(0, 2, 1)
    return ModelBundle(
        model,
        ["a", "b", "c"],
        ["y"],
        normalization=Scaling.from_dict(
            {"x_mean": [0.0, 1.0, 2.0], "x_std": [1.0, 2.0, 3.0], "y_mean": [0.5], "y_std": [2.0]}
        ),
    )


def test_round_trip_is_bit_identical(tmp_path):
    bundle = make_bundle()
    path = save_model(bundle, tmp_path / "model.pt")
    loaded = load_model(path)
    x = torch.rand(50, 3, dtype=torch.float64)
    assert torch.equal(bundle.predict(x), loaded.predict(x))
    assert loaded.input_names == ["a", "b", "c"] and loaded.output_names == ["y"]
    assert loaded.model.symbolic_edges() == bundle.model.symbolic_edges()
    assert loaded.model.spec.to_dict() == bundle.model.spec.to_dict()
    payload = torch.load(path, weights_only=True)  # plain dict, no pickled modules
    assert payload["format"] == "kandisc.model" and payload["format_version"] == FORMAT_VERSION


def test_truncated_file_is_a_checkpoint_error(tmp_path):
    path = save_model(make_bundle(), tmp_path / "model.pt")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(path)


def test_other_format_is_refused(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"format": "something.else", "state_dict": {}}, path)
    with pytest.raises(CheckpointError, match="not a kandisc model file.*something.else"):
        load_model(path)


def test_newer_version_is_refused(tmp_path):
    path = save_model(make_bundle(), tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="newer than this kandisc understands"):
        load_model(path)


def test_pickled_module_is_refused_without_executing_it(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(make_bundle().model, path)
    with pytest.raises(CheckpointError):
        load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nope.pt")
