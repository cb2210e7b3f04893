"""The in-context check of the symbolic stage: each snapped edge's runners-up tried in its place.

An edge's function is chosen from its own fit (to its curve, or to its partial residual on data
rows). On noisy data those fits barely differ, and on a log target they weigh the rows wrongly
(log-space residuals of small values carry the most noise), so the choice can be wrong while
the formula shows it at once. Here every snapped edge with runners-up (``Choice.alternatives``)
gets each runner-up in its place in turn; the whole formula's constants are refitted in the
target's units and its error on the rows decides (``error_of``). A runner-up replaces the
function when its error is clearly lower, or about as low and it is simpler. Edges are visited in
order; a replacement stays for the edges after it.
"""

from __future__ import annotations

from collections.abc import Callable

from kandisc.model.functions import FUNCTION_NAMES, FUNCTIONS

# A runner-up must lower the MSE by this factor to replace the edge's own choice (which its fit
# to the edge's rows made): on 1000 rows with 1 % noise two functions that differ by about the
# noise differ by chance by ~5 % of its MSE. Within it, the simpler function wins.
CLEARLY_LOWER = 1.05
EXACT_MSE = 1e-14  # held-out MSE / var(y) of a formula that is the law up to rounding (RMSE 1e-7·std)
MAX_TRIALS = 24  # formula refits in one check: at most 2 runners-up for 12 edges


def choose_in_context(
    model, alternatives: dict[tuple[int, int, int], tuple], error_of: Callable[[], float]
) -> list[dict]:
    """Try the runners-up of every edge in ``alternatives`` (edge -> ((name, params), ...)) in
    the model's place; keep the best. ``error_of()`` is the current model's formula error (a mean
    squared error, inf when there is no formula). Returns the replacements made, as
    ``{edge, was, now, mse_before, mse_after}``."""
    base = error_of()
    if not base < float("inf") or base <= EXACT_MSE:  # no formula to judge by, or nothing to gain
        return []
    replaced, trials = [], 0
    for edge, options in alternatives.items():
        layer, i, j = edge
        kan = model.layers[layer]
        if not bool(kan.sym_mask[i, j]):
            continue  # zeroed or left numeric since
        current = (_name_of(kan, i, j), tuple(float(v) for v in kan.sym_params[i, j].detach()))
        best, best_mse = current, base
        for name, params in options:
            if trials >= MAX_TRIALS:
                break
            trials += 1
            model.set_symbolic(layer, i, j, name, params)
            mse = error_of()
            if _better(mse, FUNCTIONS[name].complexity, best_mse, FUNCTIONS[best[0]].complexity):
                best, best_mse = (name, params), mse
        model.set_symbolic(layer, i, j, *best)
        if best is not current:
            replaced.append(
                {"edge": list(edge), "was": current[0], "now": best[0], "mse_before": base, "mse_after": best_mse}
            )
            base = best_mse
    return replaced


def _better(mse: float, complexity: float, best_mse: float, best_complexity: float) -> bool:
    if not mse < float("inf"):
        return False
    if mse * CLEARLY_LOWER < best_mse:
        return True
    return mse <= best_mse * CLEARLY_LOWER and complexity < best_complexity


def _name_of(kan, i: int, j: int) -> str:
    return FUNCTION_NAMES[int(kan.sym_fn[i, j])]
