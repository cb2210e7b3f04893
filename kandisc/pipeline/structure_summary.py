"""The structure of a fitted model (separability, symmetry, tree) per target, for summary.json,
report.md and ``kandisc explain``; and its lines of text for the terminal and the report.

The model is the surrogate of the data: the function tested is its prediction of a target in the
target's own units (``ModelBundle.prediction``) on standardised inputs. The tests themselves are
:mod:`kandisc.structure`'s.
"""

from __future__ import annotations

import torch

MAX_INPUTS = 20  # the tree's general-separability scores hold (rows, n, n, n) numbers
FIT_ROWS = 300  # rows a fit run's summary tests on (spread over its training rows)


def model_structure(bundle, x: torch.Tensor, max_rows: int = 1000) -> dict:
    """Per output name, :meth:`Structure.to_dict` of the model on (at most ``max_rows`` of the)
    model-space rows ``x``; for a model of more than :data:`MAX_INPUTS` inputs only
    ``{"target", "skipped"}`` (the reason)."""
    from kandisc.structure import detect_structure

    n = len(bundle.input_names)
    if n > MAX_INPUTS:
        reason = f"{n} inputs; the structure tests run on models of at most {MAX_INPUTS} (prune first)"
        return {name: {"target": name, "skipped": reason} for name in bundle.output_names}
    return {
        name: {
            "target": name,
            **detect_structure(bundle.prediction(t), x, bundle.input_names, max_rows=max_rows).to_dict(),
        }
        for t, name in enumerate(bundle.output_names)
    }


def structure_lines(structure: dict) -> list[str]:
    """The structure of one target as lines of text (see kandisc.structure.Structure.to_dict)."""
    if "skipped" in structure:
        return [f"structure of {structure['target']}: skipped ({structure['skipped']})"]
    lines = [f"structure of {structure['target']} (scores below {structure['threshold']:g} hold):"]
    for key in ("additive", "multiplicative"):
        groups, score = structure[key], structure["scores"][key]
        found = _groups(groups) if len(groups) > 1 else "none"
        lines.append(f"  {key + ':':16}{found}  (score {score:.3g})")
    symmetric = ", ".join(f"{_groups([s['group']])} ({s['score']:.2g})" for s in structure["symmetries"]) or "none"
    lines.append(f"  {'symmetric:':16}{symmetric}")
    lines.append(f"  {'tree:':16}{_nested(structure['tree'])}")
    return lines


def _groups(groups: list[list[str]]) -> str:
    return " | ".join("{" + ", ".join(group) + "}" for group in groups)


def _nested(tree) -> str:
    return tree if isinstance(tree, str) else "[" + ", ".join(map(_nested, tree)) + "]"
