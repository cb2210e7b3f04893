"""The optional compiled kernels for the KAN feature matrix and a layer's numeric part, loaded with ``ctypes``.

``_basis_native.c`` is built by ``pip install`` (``setup.py``) into a shared library next to
this file. When it is present, CPU float32/float64 layers compute their features and the
input gradient in one fused pass each (see the C file), on as many threads as torch uses
(``torch.get_num_threads()``) once the batch is large enough; when it is absent (no C compiler at
install time) or the tensors live on a GPU, :mod:`kandisc.model.spline` uses its eager torch
path, which gives the same numbers up to rounding. ``KANDISC_NATIVE=0`` turns the kernel
off, e.g. to compare.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import os
import warnings
from functools import cache
from pathlib import Path

import torch

from kandisc.model import basis_layout

_SOURCES = ("_basis_native.c", "_basis_native_impl.h", "_layer_native_impl.h")
MAX_ORDER = 15  # the C code keeps the k+1 local values of one interval in a 16-entry array
_BASE_KIND = {"zero": 0, "identity": 1, "silu": 2}
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


def _source_digest(folder: Path) -> str | None:
    """The digest setup.py compiles in (sha256 of the C sources, 16 hex digits); None when the
    sources were not installed, and there is nothing to compare with."""
    try:
        data = b"".join((folder / name).read_bytes() for name in _SOURCES)
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest()[:16]


@cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get("KANDISC_NATIVE", "1") == "0":
        return None
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_basis_native{suffix}"
        if path.exists():
            break
    else:
        return None
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    lib.kandisc_basis_source_digest.restype = ctypes.c_char_p
    expected = _source_digest(here)
    if expected is not None and lib.kandisc_basis_source_digest().decode() != expected:
        warnings.warn(
            f"{path.name} was built from another version of kandisc; using the slower eager path "
            "(rebuild it with `pip install -e .` in the kandisc checkout)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    lib.kandisc_basis_row_header.restype = ctypes.c_int64
    if lib.kandisc_basis_row_header() != basis_layout.HEADER:  # the one layout fact the C code holds
        return None
    ptr, i64 = ctypes.c_void_p, ctypes.c_int64
    for suffix in _SUFFIX.values():
        getattr(lib, f"kandisc_basis_forward_{suffix}").argtypes = [ptr] * 4 + [i64] * 7 + [ptr, ptr, i64]
        getattr(lib, f"kandisc_basis_backward_{suffix}").argtypes = [ptr] * 5 + [i64] * 7 + [ptr, i64]
        forward = getattr(lib, f"kandisc_layer_forward_{suffix}")
        backward = getattr(lib, f"kandisc_layer_backward_{suffix}")
        forward.argtypes = [ptr] * 8 + [i64] * 9 + [ptr] * 8 + [i64]
        backward.argtypes = [ptr] * 14 + [i64] * 5 + [ptr] * 4 + [i64]
        penalty = getattr(lib, f"kandisc_scale_penalty_{suffix}")
        penalty.argtypes = [ptr, ptr, i64, i64, ctypes.c_double, ctypes.c_double, ptr, ptr, ptr]
        forward.restype = backward.restype = penalty.restype = ctypes.c_int
    return lib


def available() -> bool:
    """Whether the compiled kernel was built and loads."""
    return _library() is not None


def compiled_for(*tensors: torch.Tensor) -> bool:
    """Whether the library is built and loads, and ``tensors`` are all on the CPU in one of the
    element types it is built for (float32 or float64)."""
    first = tensors[0]
    return (
        first.dtype in _SUFFIX
        and all(t.device.type == "cpu" and t.dtype == first.dtype for t in tensors)
        and _library() is not None
    )


def usable(x: torch.Tensor, grid: torch.Tensor, table: torch.Tensor, k: int) -> bool:
    """Whether the kernel can take these operands: CPU, one float32/float64 dtype, 1 <= k <= 15,
    and shapes that agree (the C code trusts them; the eager path raises on a mismatch)."""
    if not 1 <= k <= MAX_ORDER or not compiled_for(x, grid, table):
        return False
    if x.dim() != 2 or grid.dim() != 2 or x.shape[1] != grid.shape[0] or grid.shape[1] < 2 * k + 2:
        return False
    n_in, n_knots = grid.shape
    return tuple(table.shape) == (basis_layout.width(k), n_in * (n_knots + 1))


def _pointer(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _operands(*tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Contiguous, detached views (copies only where a tensor is strided) the C code can index."""
    return [None if t is None else t.detach().contiguous() for t in tensors]


def row_table(table: torch.Tensor) -> torch.Tensor:
    """:func:`kandisc.model.spline.basis_table`'s coefficient-major table as the kernels read it:
    one contiguous row of coefficients per (input, interval). Build it once per forward."""
    return table.detach().transpose(0, 1).contiguous()


def features(
    x: torch.Tensor,
    sigma: torch.Tensor | None,
    grid: torch.Tensor,
    table_rows: torch.Tensor,
    k: int,
    base_fun: str,
    order: int = 0,
    keep_rows: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Feature matrix (B, in, G+k+1) (base function in column 0, B-spline bases after it), or
    its x-derivative of ``order`` (<= :data:`basis_layout.MAX_DERIVATIVE`), and with ``keep_rows``
    each input's knot interval (B, in) for :func:`grad_input`.

    ``sigma`` is ``sigmoid(x)`` for the SiLU base (None otherwise); ``table_rows`` comes from
    :func:`row_table`.
    """
    x, sigma, grid = _operands(x, sigma, grid)
    (n_batch, n_in), n_knots = x.shape, grid.shape[1]
    out = torch.empty(n_batch, n_in, n_knots - k, dtype=x.dtype)
    rows = torch.empty(n_batch, n_in, dtype=torch.int32) if keep_rows else None
    getattr(_library(), f"kandisc_basis_forward_{_SUFFIX[x.dtype]}")(
        *map(_pointer, (x, sigma, grid, table_rows)),
        n_batch,
        n_in,
        n_knots,
        k,
        basis_layout.width(k),
        order,
        _BASE_KIND[base_fun],
        out.data_ptr(),
        _pointer(rows),
        torch.get_num_threads(),
    )
    return out, rows


def grad_input(
    x: torch.Tensor,
    sigma: torch.Tensor | None,
    rows: torch.Tensor,
    table_rows: torch.Tensor,
    n_knots: int,
    k: int,
    base_fun: str,
    grad_out: torch.Tensor,
    order: int = 0,
) -> torch.Tensor:
    """Gradient with respect to ``x`` (B, in) of the features of ``order`` (< MAX_DERIVATIVE),
    given their gradient ``grad_out`` and the interval ``rows`` that :func:`features` kept."""
    x, sigma, rows, grad_out = _operands(x, sigma, rows, grad_out)
    n_batch, n_in = x.shape
    grad_x = torch.empty_like(x)
    getattr(_library(), f"kandisc_basis_backward_{_SUFFIX[x.dtype]}")(
        *map(_pointer, (x, sigma, rows, table_rows, grad_out)),
        n_batch,
        n_in,
        n_knots,
        k,
        basis_layout.width(k),
        order,
        _BASE_KIND[base_fun],
        grad_x.data_ptr(),
        torch.get_num_threads(),
    )
    return grad_x


def layer_forward(
    x: torch.Tensor,
    sigma: torch.Tensor | None,
    grid: torch.Tensor,
    table_rows: torch.Tensor,
    params: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    k: int,
    base_fun: str,
    spread: bool,
    keep: bool,
    slopes: bool,
    reuse: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor | None]:
    """A layer's numeric output in one pass (``_layer_native_impl.h``); ``params`` are
    (coef, scale_base, scale_sp, mask). Returns ``out`` (B, out), the effective ``weights``
    (in, G+k+1, out), with ``spread`` each edge's ``std`` (in, out), the centred edge values
    ``phi`` and each input's ``in_mean`` and ``in_std`` (in,), and with ``keep`` the ``record``
    and ``first`` columns the backward reads (their slopes only with ``slopes``). ``reuse``: the
    (record, first) an earlier call made with ``keep`` on this same ``x`` and grid, read instead
    of evaluating the bases again."""
    x, sigma, grid, coef, scale_base, scale_sp, mask = _operands(x, sigma, grid, *params)
    (n_batch, n_in), n_knots, n_out = x.shape, grid.shape[1], coef.shape[2]
    empty = dict(dtype=x.dtype)
    result = {
        "weights": torch.empty(n_in, coef.shape[1] + 1, n_out, **empty),
        "out": torch.empty(n_batch, n_out, **empty),
        "phi": torch.empty(n_batch, n_in, n_out, **empty) if spread else None,
        "std": torch.empty(n_in, n_out, **empty) if spread else None,
        "in_mean": torch.empty(n_in, **empty) if spread else None,
        "in_std": torch.empty(n_in, **empty) if spread else None,
        "record": torch.empty(n_batch, n_in, 2 * (k + 2), **empty) if keep and reuse is None else None,
        "first": torch.empty(n_batch, n_in, dtype=torch.int32) if keep and reuse is None else None,
    }
    if reuse is not None:
        result["record"], result["first"] = reuse
    status = getattr(_library(), f"kandisc_layer_forward_{_SUFFIX[x.dtype]}")(
        *map(_pointer, (x, sigma, grid, table_rows, coef, scale_base, scale_sp, mask)),
        n_batch,
        n_in,
        n_out,
        n_knots,
        k,
        basis_layout.width(k),
        _BASE_KIND[base_fun],
        int(slopes),
        int(reuse is not None),
        *(_pointer(result[name]) for name in ("weights", "out", "phi", "std", "in_mean", "in_std", "record", "first")),
        torch.get_num_threads(),
    )
    if status:
        raise MemoryError("the layer kernel could not allocate its scratch memory")
    return result


def layer_backward(
    kept: dict[str, torch.Tensor | None],
    params: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    k: int,
    grad_out: torch.Tensor,
    grad_std: torch.Tensor | None,
    x: torch.Tensor | None,
    grad_in_std: torch.Tensor | None,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(grad_x or None, grad_coef, grad_scale_base, grad_scale_sp) of the layer whose
    :func:`layer_forward` returned ``kept``, given the gradients of ``out``, of ``std`` and of
    ``in_std`` (None: no gradient); ``x``, the layer's input, when its gradient is wanted."""
    coef, _, scale_sp, mask = _operands(*params)
    grad_out, grad_std, grad_in_std, x = _operands(grad_out, grad_std, grad_in_std, x)
    want_x = x is not None
    record = kept["record"]
    n_batch, n_in = record.shape[:2]
    n_out, n_knots = coef.shape[2], coef.shape[1] + k + 1
    grad_x = torch.empty(n_batch, n_in, dtype=coef.dtype) if want_x else None
    grads = [torch.empty_like(coef), torch.empty_like(mask), torch.empty_like(mask)]
    with_spread = grad_std is not None and kept["phi"] is not None
    input_spread = want_x and grad_in_std is not None and kept["in_std"] is not None
    status = getattr(_library(), f"kandisc_layer_backward_{_SUFFIX[coef.dtype]}")(
        *map(_pointer, (record, kept["first"], kept["weights"], coef, scale_sp, mask, grad_out)),
        *map(_pointer, (kept["phi"], kept["std"], grad_std) if with_spread else (None, None, None)),
        *map(_pointer, (x, kept["in_mean"], kept["in_std"], grad_in_std) if input_spread else [None] * 4),
        n_batch,
        n_in,
        n_out,
        n_knots,
        k,
        _pointer(grad_x),
        *map(_pointer, grads),
        torch.get_num_threads(),
    )
    if status:
        raise MemoryError("the layer kernel could not allocate its scratch memory")
    return grad_x, *grads


def scale_penalty(
    edge_std: torch.Tensor, input_std: torch.Tensor, lamb_l1: float, lamb_entropy: float
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """(penalty, d/d edge_std, d/d input_std) of :func:`kandisc.model.spread.scale_penalty`, in one call."""
    edge_std, input_std = _operands(edge_std, input_std)
    n_in, n_out = edge_std.shape
    total = ctypes.c_double()
    grad_edge, grad_input = torch.empty_like(edge_std), torch.empty_like(input_std)
    status = getattr(_library(), f"kandisc_scale_penalty_{_SUFFIX[edge_std.dtype]}")(
        edge_std.data_ptr(), input_std.data_ptr(), n_in, n_out, lamb_l1, lamb_entropy, ctypes.byref(total),
        grad_edge.data_ptr(), grad_input.data_ptr(),
    )  # fmt: skip
    if status:
        raise MemoryError("the penalty kernel could not allocate its scratch memory")
    return total.value, grad_edge, grad_input
