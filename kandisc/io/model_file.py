"""The ``model.pt`` format: a trained model with everything needed to use it on raw CSV columns.

One ``torch.save`` of a plain dict that loads with ``torch.load(weights_only=True)``:
``format``, ``format_version``, ``kandisc_version``, ``torch_version``, ``spec`` (JSON-able),
``input_names``/``output_names`` (model inputs, after pruning and auxiliary features),
``data_columns`` (the CSV columns the model reads), ``auxiliary`` (name -> formula text),
``normalization``, ``symbolic`` (edges by library name + parameters, for humans: the state_dict is
authoritative), ``extras`` (JSON-like: formulas, attribution tables, training ranges, history),
``tensors`` (small named tensors such as a reference sample), ``state_dict`` and ``checksum``
(sha256 of everything else: flipped bits are caught; files written before it existed have none).
Never pickles a module; never loads with ``weights_only=False``. Loading validates every field
(:mod:`kandisc.io.model_checks`): a crafted or damaged file is a one-line ``CheckpointError``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kandisc import __version__
from kandisc.errors import CheckpointError
from kandisc.io.atomic import atomic_write_bytes
from kandisc.io.model_checks import Damaged, check_fields, check_spec, check_state, checksum
from kandisc.io.scaling import Scaling
from kandisc.model import ModelSpec, MultKAN
from kandisc.model.functions import FUNCTIONS

FORMAT = "kandisc.model"
FORMAT_VERSION = 1
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass
class ModelBundle:
    """A model plus the names, normalisation and metadata that make it usable on data."""

    model: MultKAN
    input_names: list[str]
    output_names: list[str]
    data_columns: list[str] = field(default_factory=list)
    auxiliary: dict[str, str] = field(default_factory=dict)
    normalization: Scaling | None = None  # raw units <-> model space (None: the identity)
    extras: dict = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def to_model_space(self, x_raw: torch.Tensor) -> torch.Tensor:
        """Model inputs (raw units, model input order) -> standardised model inputs."""
        return self.normalization.x_to_model(x_raw) if self.normalization else x_raw

    def to_target_units(self, y_model: torch.Tensor) -> torch.Tensor:
        return self.normalization.y_from_model(y_model) if self.normalization else y_model

    def prediction(self, target: int = 0):
        """The model's prediction of output ``target`` in the target's units, as a differentiable
        callable on model-space rows (B, n) -> (B,): the function a hypothesis is about."""
        return lambda x: self.to_target_units(self.model(x))[:, target]

    @torch.no_grad()
    def predict(self, x_raw: torch.Tensor) -> torch.Tensor:
        """Predictions in target units from model inputs in raw units."""
        x = x_raw.to(dtype=self.model.dtype, device=self.model.device)
        return self.to_target_units(self.model(self.to_model_space(x)))


def _dtype_name(dtype: torch.dtype) -> str:
    return "float64" if dtype == torch.float64 else "float32"


def save_model(bundle: ModelBundle, path: Path | str) -> Path:
    """Write ``bundle`` atomically to ``path``."""
    model = bundle.model
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kandisc_version": __version__,
        "torch_version": str(torch.__version__),
        "dtype": _dtype_name(model.dtype),
        "spec": model.spec.to_dict(),
        "input_names": list(bundle.input_names),
        "output_names": list(bundle.output_names),
        "data_columns": list(bundle.data_columns),
        "auxiliary": dict(bundle.auxiliary),
        "normalization": bundle.normalization.to_dict() if bundle.normalization else None,
        "symbolic": model.symbolic_edges(),
        "extras": bundle.extras,
        "tensors": {k: v.detach().cpu() for k, v in bundle.tensors.items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    payload["checksum"] = checksum(payload)
    path = Path(path)
    buffer = io.BytesIO()  # serialise in memory: a full disk then fails as an OSError, not inside torch
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _read(path: Path) -> dict:
    if not path.exists():
        raise CheckpointError(f"model file {path} does not exist; pass the model.pt of a run")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass the model.pt file inside it")
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as err:
        raise CheckpointError(f"cannot read model file {path} ({err.strerror}); check the path") from None
    if head[:2] != b"PK":  # torch.save writes a zip archive; a config, CSV or log given by mistake is not one
        raise CheckpointError(
            f"{path} is not a kandisc model file (not a torch archive: it starts with {head!r}); "
            "pass the model.pt of a run or of kandisc compile"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch.load raises many kinds (UnpicklingError, BadZipFile, IndexError, ...)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} is not a readable kandisc model file (truncated or corrupt?): {first[:160]}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not a kandisc model file (format {found!r}, expected {FORMAT!r})")
    version = payload.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version < 1:
        raise CheckpointError(
            f"{path} has model format version {version}, which no kandisc writes: the file is damaged"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has model format version {version!r}, newer than this kandisc understands "
            f"({FORMAT_VERSION}; written by kandisc {payload.get('kandisc_version')}); upgrade kandisc"
        )
    return payload


def load_model(path: Path | str, device: str = "cpu") -> ModelBundle:
    """Read a model file written by :func:`save_model`; any problem is a ``CheckpointError``."""
    path = Path(path)
    payload = _read(path)
    try:
        norm = payload.get("normalization")
        if "checksum" in payload and payload["checksum"] != checksum(payload):
            raise Damaged("its contents do not match the checksum written with it (flipped bits, edited by hand?)")
        if payload.get("dtype", "float64") not in _DTYPES:
            raise Damaged(f"dtype must be one of {', '.join(_DTYPES)} (got {payload.get('dtype')!r})")
        spec = ModelSpec.from_dict(check_spec(payload["spec"]))
        check_fields(payload, spec.n_inputs, spec.n_outputs)
        model = MultKAN(spec, dtype=_DTYPES[payload.get("dtype", "float64")], device=device)
        # Functions a config added (extras["functions"]) take ids after the built-ins once restored.
        added = (payload.get("extras") or {}).get("functions") or {}
        check_state(model.state_dict(), payload.get("state_dict"), len(FUNCTIONS) + len(added))
        model.load_state_dict(payload["state_dict"])
        return ModelBundle(
            model=model,
            input_names=list(payload["input_names"]),
            output_names=list(payload["output_names"]),
            data_columns=list(payload.get("data_columns") or payload["input_names"]),
            auxiliary=dict(payload.get("auxiliary") or {}),
            normalization=None if norm is None else Scaling.from_dict(norm),
            extras=dict(payload.get("extras") or {}),
            tensors=dict(payload.get("tensors") or {}),
        )
    except CheckpointError:
        raise  # already says what is wrong (a KandiscError is a ValueError, caught below)
    except Damaged as err:
        fix = "re-create it with kandisc fit or compile"
        raise CheckpointError(f"{path} is damaged: {_first_line(err)}; {fix}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as err:
        raise CheckpointError(f"{path} is damaged: {type(err).__name__}: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__
