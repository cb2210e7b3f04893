"""Structure of a saved model: ``kandisc test`` (one hypothesis) and the structure part of ``explain``.

Plain functions over a :class:`ModelBundle` or a model file that return result objects; the
tests themselves live in :mod:`kandisc.structure`. The model is the surrogate of the data: the
function tested is its prediction of a target in the target's own units, on standardised inputs.
The scores do not depend on the inputs' units (a function of x is one of (x - m)/s), but the
output must be the target itself: a product a·b is not one once centred, (a·b - m)/s, and a log
target's model is log|y|, whose products are sums (``ModelBundle.prediction``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from kandisc.errors import HypothesisError
from kandisc.io.model_file import ModelBundle, load_model


def parse_groups(text: str, bundle: ModelBundle) -> list[list[int]]:
    """``"a,b|c"`` -> input indices [[0, 1], [2]]; any name the model lacks is a HypothesisError."""
    names = bundle.input_names
    groups = [[part.strip() for part in block.split(",") if part.strip()] for block in text.split("|")]
    if not all(groups):
        raise HypothesisError(f"empty group in {text!r}; write groups as 'a,b|c'")
    flat = [name for group in groups for name in group]
    unknown = [name for name in flat if name not in names]
    if unknown:
        raise HypothesisError(_unknown_message(unknown, bundle))
    twice = sorted({name for name in flat if flat.count(name) > 1})
    if twice:
        raise HypothesisError(f"{', '.join(map(repr, twice))} named more than once in {text!r}")
    return [[names.index(name) for name in group] for group in groups]


def _unknown_message(unknown: list[str], bundle: ModelBundle) -> str:
    pruned = set(bundle.extras.get("pruned_inputs", []))
    notes = []
    for name in unknown:
        close = difflib.get_close_matches(name, bundle.input_names, n=1)
        hint = (
            " (pruned: the model does not use it)"
            if name in pruned
            else (f" (did you mean {close[0]!r}?)" if close else "")
        )
        notes.append(f"{name!r}{hint}")
    return f"unknown input(s) {', '.join(notes)}; the model's inputs are {', '.join(bundle.input_names)}"


@dataclass
class HypothesisAnswer:
    hypothesis: str  # readable statement, e.g. "f = g(a, b) + h(c)"
    kind: str  # "additive", "multiplicative", "general", "symmetric"
    groups: list[list[str]]
    holds: bool
    score: float
    threshold: float
    target: str
    data_source: str = ""


def _statement(kind: str, groups: list[list[str]], target: str) -> str:
    parts = [", ".join(group) for group in groups]
    if kind == "symmetric":
        return f"{target} = g(h({parts[0]}), ...)"
    if kind == "general":
        return f"{target} = h(" + " + ".join(f"p{i + 1}({p})" for i, p in enumerate(parts)) + ")"
    join = " + " if kind == "additive" else " · "
    return f"{target} = " + join.join(f"g{i + 1}({p})" for i, p in enumerate(parts))


def answer_hypothesis(
    model_path: Path,
    data: Path | None = None,
    separable: str | None = None,
    mode: str = "add",
    symmetric: str | None = None,
    target: str | None = None,
) -> HypothesisAnswer:
    """Answer one hypothesis about a saved model: ``separable="a,b|c"`` with ``mode`` "add",
    "mul" or "general", or ``symmetric="a,b"``. The unnamed inputs form one more group."""
    from kandisc.predict import reference_rows
    from kandisc.structure import jet

    if (separable is None) == (symmetric is None):
        raise HypothesisError("state one hypothesis: --separable 'a,b|c' or --symmetric 'a,b'")
    bundle = load_model(model_path)
    t = _target_index(bundle, target)
    groups = parse_groups(separable if separable is not None else symmetric, bundle)
    if symmetric is not None and len(groups) != 1:
        raise HypothesisError(f"--symmetric takes one group of inputs such as 'a,b', got {symmetric!r}")
    x_raw, source = reference_rows(bundle, data)
    the_jet = jet(bundle.prediction(t), bundle.to_model_space(x_raw.to(bundle.model.dtype)))
    result = _check(the_jet, groups, "symmetric" if symmetric is not None else mode)
    named = [[bundle.input_names[i] for i in group] for group in result.groups]
    out = bundle.output_names[t]
    statement = _statement(result.hypothesis, named, out)
    return HypothesisAnswer(
        statement, result.hypothesis, named, result.holds, result.score, result.threshold, out, source
    )


def _check(the_jet, groups: list[list[int]], mode: str):
    from kandisc.structure import check_general_separability, check_separability, check_symmetry

    if mode not in ("add", "mul", "general", "symmetric"):
        raise HypothesisError(f"unknown separability mode {mode!r}; use 'add', 'mul' or 'general'")
    if mode == "symmetric":
        return check_symmetry(the_jet, groups[0])
    if mode == "general":
        return check_general_separability(the_jet, groups)
    return check_separability(the_jet, groups, mode)


def _target_index(bundle: ModelBundle, target: str | None) -> int:
    if target is None:
        return 0
    if target not in bundle.output_names:
        raise HypothesisError(f"unknown target {target!r}; the model predicts {', '.join(bundle.output_names)}")
    return bundle.output_names.index(target)
