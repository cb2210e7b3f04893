"""Regenerate every CSV in sample_data/ (deterministic: fixed seeds, documented formulas and ranges).

    python scripts/make_sample_data.py

Each dataset: name, formula, input ranges (uniform), rows, seed. See sample_data/README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent.parent / "sample_data"


def uniform(rng, n, ranges):
    return {name: rng.uniform(lo, hi, n) for name, (lo, hi) in ranges.items()}


def quickstart(rng):
    c = uniform(rng, 1000, {"x": (-1, 1), "y": (-1, 1)})
    c["f"] = np.exp(np.sin(np.pi * c["x"]) + c["y"] ** 2)
    return c


def feature_importance(rng):
    c = uniform(rng, 1000, {f"x{i}": (-1, 1) for i in range(4)})
    c["f"] = c["x0"] ** 2 + 0.3 * c["x1"] + 0.1 * c["x2"] ** 3 + 0 * c["x3"]
    return c


def sparse_inputs(rng):
    c = uniform(rng, 1000, {f"x{i}": (-1, 1) for i in range(20)})
    c["f"] = np.sin(np.pi * c["x3"]) + c["x7"] ** 2 + 0.5 * c["x12"]
    return c


def product(rng):
    c = uniform(rng, 1000, {"x": (-1, 1), "y": (-1, 1)})
    c["f"] = c["x"] * c["y"]
    return c


def sin_exp(rng):
    c = uniform(rng, 1000, {"x": (-1, 1), "y": (-1, 1)})
    c["f"] = np.sin(c["x"]) * np.exp(c["y"])
    return c


def squares(rng):
    c = uniform(rng, 1000, {"x": (-1, 1), "y": (-1, 1), "z": (-1, 1), "w": (-1, 1)})
    c["f"] = c["x"] ** 2 + c["y"] ** 2 + c["z"]
    return c


def velocity_addition(rng):
    c = uniform(rng, 1000, {"x": (-0.9, 0.9), "y": (-0.9, 0.9)})
    c["f"] = (c["x"] + c["y"]) / (1 + c["x"] * c["y"])
    return c


def relativistic_mass(rng):
    c = uniform(rng, 1000, {"m0": (0, 1), "v": (0, 0.9), "c": (1.1, 2)})
    c["m"] = c["m0"] / np.sqrt(1 - c["v"] ** 2 / c["c"] ** 2)
    return c


def neo_hookean(rng):
    # Deformation gradients F = I + U(-0.2, 0.2)^{3x3}; rows with det F <= 0 are dropped.
    mu, lam = 5 / 12, 5 / 18  # E = 1, nu = 0.2
    f = np.eye(3) + rng.uniform(-0.2, 0.2, (1000, 3, 3))
    f = f[np.linalg.det(f) > 0]
    c = {f"F{i + 1}{j + 1}": f[:, i, j] for i in range(3) for j in range(3)}
    c["P11"] = mu * (c["F11"] ** 2 + c["F12"] ** 2 + c["F13"] ** 2 - 1) + lam * np.log(np.linalg.det(f))
    return c


DATASETS = {  # name: (generator, seed)
    "quickstart": (quickstart, 0),
    "feature_importance": (feature_importance, 1),
    "sparse_inputs": (sparse_inputs, 2),
    "product": (product, 3),
    "sin_exp": (sin_exp, 4),
    "squares": (squares, 5),
    "velocity_addition": (velocity_addition, 6),
    "relativistic_mass": (relativistic_mass, 7),
    "neo_hookean": (neo_hookean, 8),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (make, seed) in DATASETS.items():
        frame = pd.DataFrame(make(np.random.default_rng(seed)))
        frame.to_csv(OUT / f"{name}.csv", index=False, float_format="%.10g")
        print(f"wrote {OUT / (name + '.csv')} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
