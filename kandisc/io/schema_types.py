"""The field types and helpers every config schema module shares: lax numbers that are never
booleans, strict booleans, size limits, the field constructor and the one-line value display.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


def _no_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; in a config that is always a typo, never intended.
    if isinstance(value, bool):
        raise PydanticCustomError("bool_not_number", "expected a number, not true/false")
    return value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


# Lax numbers (PyYAML reads `1e-3` as a string; pydantic turns it into 0.001) but never booleans,
# and never inf/nan: no setting means anything at infinity, and inf/nan broke the numerics downstream.
Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False)]
# Sizes beyond these are typos (grid: 10**12) or cannot train on any machine kandisc runs on; the
# memory a model needs for its data is checked later, against the machine (io.config.check_size).
MAX_GRID = 1000
MAX_NODES = 1000  # per layer (sum and mult nodes together)
MAX_ARITY = 32
MAX_DEPTH = 16  # layers added to a prior
MAX_EDGES = 100_000  # in the whole network; [100, 100, 1] has 10 100
MAX_THREADS = 512  # OpenMP aborts (out of memory) long before a million threads
MAX_SEED = 2**32 - 1  # what numpy's legacy RandomState and scikit-learn accept too
MAX_MAGNITUDE = 1e100  # |values| beyond this overflow float64 when squared (least squares, variances)
Bool = Annotated[bool, Field(strict=True)]


def _f(default: Any = ..., doc: str = "", **kw: Any) -> Any:
    return Field(default, description=doc, **kw)


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML, cut short so a message stays one readable line."""
    try:
        text = repr(value) if isinstance(value, str) else _flow(value)
    except yaml.YAMLError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _flow(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.strip().removesuffix("...").strip()  # PyYAML ends a bare scalar with "..."


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")
