"""Formulas from what a model computes, and the check that they really do.

The expression is built layer by layer from every active edge (a numeric spline edge makes the
output non-symbolic: it is reported, never silently dropped), sum and multiplication nodes of
any arity, subnode and node affines, the input standardisation folded back (so the formula is in
the CSV's units and column names) and the output de-standardisation. ``verify`` evaluates it
with numpy (:func:`kandisc.knowledge.formula.evaluate_rows`) on held-out rows and compares it to
the model's forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp
import torch

from kandisc.knowledge.formula import evaluate_rows
from kandisc.model.functions import FUNCTION_NAMES, FUNCTIONS

VERIFY_RTOL = 1e-8  # float64 models; float32 ones get 1000 ulps (see verify_rtol)


def verify_rtol(dtype: torch.dtype) -> float:
    """How far (relative) a correct formula may differ from the model that computes it in ``dtype``."""
    return max(VERIFY_RTOL, 1000 * torch.finfo(dtype).eps)


@dataclass
class Assembly:
    exprs: list[sp.Expr | None]  # per output, in raw units of the model inputs
    symbols: list[sp.Symbol]  # one per model input, named like the input columns
    numeric_edges: list[tuple[int, int, int]]  # active spline edges that block a formula


def _num(value: float) -> sp.Expr:
    value = float(value)
    if value == int(value) and abs(value) < 1e12:
        return sp.Integer(int(value))
    return sp.Float(value, 15)


def assemble(bundle) -> Assembly:
    """Sympy expressions of every output of ``bundle.model`` (in raw input and target units)."""
    model, spec = bundle.model, bundle.model.spec
    symbols = [sp.Symbol(name) for name in bundle.input_names]
    norm = bundle.normalization
    nodes = norm.x_exprs_to_model(symbols) if norm else list(symbols)
    numeric = []
    for layer, kan in enumerate(model.layers):
        active_num = (kan.num_mask > 0).cpu()
        numeric += [(layer, i, j) for i, j in active_num.nonzero().tolist()]
        sym_mask, fn_ids, params = kan.sym_mask.cpu(), kan.sym_fn.cpu(), kan.sym_params.detach().cpu()
        subs = []
        for j in range(kan.out_dim):
            total = sp.Integer(0)
            for i in sym_mask[:, j].nonzero().flatten().tolist():
                a, b, c, d = (float(v) for v in params[i, j])
                fn = FUNCTIONS[FUNCTION_NAMES[int(fn_ids[i, j])]]
                total += _num(c) * fn.sympy(_num(a) * nodes[i] + _num(b)) + _num(d)
            scale, bias = model.subnode_scale[layer][j].item(), model.subnode_bias[layer][j].item()
            subs.append(_num(scale) * total + _num(bias))
        n_sum = spec.width[layer + 1][0]
        new_nodes = subs[:n_sum]
        start = n_sum
        for arity in spec.mult_arity[layer + 1]:
            new_nodes.append(sp.Mul(*subs[start : start + arity]))
            start += arity
        nodes = [
            _num(model.node_scale[layer][n].item()) * v + _num(model.node_bias[layer][n].item())
            for n, v in enumerate(new_nodes)
        ]
    if norm:
        nodes = norm.y_exprs_from_model(nodes)
    blocked = _blocked_outputs(model, numeric)
    exprs = [None if out in blocked else expr for out, expr in enumerate(nodes)]
    return Assembly(exprs, symbols, numeric)


def _blocked_outputs(model, numeric: list[tuple[int, int, int]]) -> set[int]:
    """Outputs that depend on at least one numeric edge (following active edges forward)."""
    if not numeric:
        return set()
    spec = model.spec
    tainted = set()  # (node layer, node)
    for layer, kan in enumerate(model.layers):
        owner = spec.subnode_owner(layer + 1)
        active = kan.active().cpu()
        for i, j in active.nonzero().tolist():
            if (layer, i, j) in numeric or (layer, i) in tainted:
                tainted.add((layer + 1, owner[j]))
    return {n for (nl, n) in tainted if nl == model.depth}


def verify(bundle, assembly: Assembly, x_raw: np.ndarray) -> list[tuple[str, float]]:
    """Per output: (status, relative max error) of formula vs model on rows ``x_raw`` (raw units).

    status is "ok", "mismatch" or "numeric" (the output still has spline edges). Rows where the
    formula is undefined (outside a function's real domain) are left out; more than 1 % of them
    counts as a mismatch.
    """
    x = torch.as_tensor(x_raw, dtype=bundle.model.dtype, device=bundle.model.device)
    y_model = bundle.predict(x).cpu().numpy()
    rtol = verify_rtol(bundle.model.dtype)
    results = []
    for out, expr in enumerate(assembly.exprs):
        if expr is None:
            results.append(("numeric", float("nan")))
            continue
        y_formula = evaluate_rows(expr, [s.name for s in assembly.symbols], x_raw)
        # Rows where a function leaves its real domain (log of a held-out value just below the
        # training range, say) are undefined for the formula; the model clamps there instead.
        defined = np.isfinite(y_formula)
        if not defined.any():
            results.append(("mismatch", float("inf")))
            continue
        scale = max(float(np.max(np.abs(y_model[defined, out]))), 1e-300)
        err = float(np.max(np.abs(y_formula[defined] - y_model[defined, out]))) / scale
        ok = np.isfinite(err) and err <= rtol and defined.mean() >= 0.99
        results.append(("ok" if ok else "mismatch", err))
    return results
