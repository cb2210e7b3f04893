"""The in-context check of the symbolic stage: each snapped edge's runners-up tried in its place.

An edge's function is chosen from its own fit (to its curve, or to its partial residual on data
rows). On noisy data those fits barely differ, and on a log target they weigh the rows wrongly
(log-space residuals of small values carry the most noise), so the choice can be wrong while
the formula shows it at once. Here every snapped edge with runners-up (``Choice.alternatives``)
gets each runner-up in its place in turn, the model briefly retuned around it (``retune``); the
whole formula's constants are refitted in the target's units and its error on every row decides,
target by target (``error_of``). A runner-up replaces the
function when its error is clearly lower, or about as low and it is simpler. Edges are visited in
order, twice; a replacement stays for the edges after it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

from kandisc.model.functions import FUNCTION_NAMES, FUNCTIONS

# A runner-up must lower the MSE by this factor to replace the edge's own choice (which its fit
# to the edge's rows made): on 1000 rows with 1 % noise two functions that differ by about the
# noise differ by chance by ~5 % of its MSE. Within it, the simpler function wins.
CLEARLY_LOWER = 1.05
EXACT_MSE = 1e-14  # held-out MSE / var(y) of a formula that is the law up to rounding (RMSE 1e-7·std)
MAX_TRIALS = 16  # formula refits in one check
MAX_SECONDS = 10.0  # and its wall time: each trial is a retune, an assembly and a refit (~0.3-2 s)
SWEEPS = 2  # a second pass: an edge judged while a later one was wrong is judged again


def choose_in_context(
    model,
    alternatives: dict[tuple[int, int, int], tuple],
    error_of: Callable[[], list[float]],
    retune: Callable[[], object] = lambda: None,
) -> list[dict]:
    """Try the runners-up of every edge in ``alternatives`` (edge -> ((name, params), ...)) in
    the model's place, each after a brief ``retune()`` of the model (its fit was made beside
    other functions); keep the best. ``error_of()`` is the current model's formula error per
    target (a mean squared error, inf when there is no formula). Returns the replacements made, as
    ``{edge, was, now, mse_before, mse_after}``."""
    base = error_of()
    if not all(e < float("inf") for e in base) or max(base) <= EXACT_MSE:  # nothing to judge by, or to gain
        return []
    replaced, trials, stop_at = [], 0, time.monotonic() + MAX_SECONDS
    for edge, options in list(alternatives.items()) * SWEEPS:
        layer, i, j = edge
        kan = model.layers[layer]
        if not bool(kan.sym_mask[i, j]):
            continue  # zeroed or left numeric since
        current = _name_of(kan, i, j)
        best, best_mse, best_state = current, base, copy.deepcopy(model.state_dict())
        for name, params in options:
            if trials >= MAX_TRIALS or time.monotonic() > stop_at:
                break
            if name == current:
                continue
            trials += 1
            model.load_state_dict(best_state)
            model.set_symbolic(layer, i, j, name, params)
            retune()
            mse = error_of()
            if _better(mse, FUNCTIONS[name].complexity, best_mse, FUNCTIONS[best].complexity):
                best, best_mse, best_state = name, mse, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
        if best != current:
            replaced.append(
                {"edge": list(edge), "was": current, "now": best, "mse_before": base, "mse_after": best_mse}
            )
            base = best_mse
    return replaced


def _better(mse: list, complexity: float, best_mse: list, best_complexity: float) -> bool:
    """Per target: no target clearly worse, and one clearly better (or all about as good and the
    function simpler). One target's noise must not hide another's loss of its law."""
    if not all(m < float("inf") for m in mse):
        return False
    if any(m > b * CLEARLY_LOWER + EXACT_MSE for m, b in zip(mse, best_mse, strict=True)):
        return False
    return complexity < best_complexity or any(m * CLEARLY_LOWER < b for m, b in zip(mse, best_mse, strict=True))


def _name_of(kan, i: int, j: int) -> str:
    return FUNCTION_NAMES[int(kan.sym_fn[i, j])]
