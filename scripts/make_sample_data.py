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


def neo_hookean_p12(rng):
    # The same deformation gradients as neo_hookean; P12 = mu*(F F^T)_12 (the law).
    mu = 5 / 12
    f = np.eye(3) + rng.uniform(-0.2, 0.2, (1000, 3, 3))
    f = f[np.linalg.det(f) > 0]
    c = {f"F{i + 1}{j + 1}": f[:, i, j] for i in range(3) for j in range(3)}
    c["P12"] = mu * (c["F11"] * c["F21"] + c["F12"] * c["F22"] + c["F13"] * c["F23"])
    return c


def harmonic_oscillator(rng):
    # L = qdot^2/2 - q^2/2: states drawn independently, the acceleration from the equation of motion.
    c = uniform(rng, 500, {"q": (-1, 1), "qdot": (-1, 1)})
    c["qddot"] = -c["q"]
    return c


def pendulum(rng):
    # L = qdot^2/2 + cos(q): qddot = -sin(q), angles up to ±2.5 rad (far from the small-angle law).
    c = uniform(rng, 500, {"q": (-2.5, 2.5), "qdot": (-1, 1)})
    c["qddot"] = -np.sin(c["q"])
    return c


def relativistic_particle(rng):
    # L = -sqrt(1 - qdot^2) + q (c = m = force = 1): qddot = (1 - qdot^2)^(3/2).
    c = uniform(rng, 500, {"q": (-1, 1), "qdot": (-0.9, 0.9)})
    c["qddot"] = (1 - c["qdot"] ** 2) ** 1.5
    return c


def oscillator_energy(rng):
    # x = (q, p), xdot = (p, -2q): the flow of H = p^2/2 + q^2 (m = 1, k = 2); qdot is p again.
    c = uniform(rng, 500, {"q": (-1, 1), "p": (-1, 1)})
    c["qdot"], c["pdot"] = c["p"].copy(), -2 * c["q"]
    return c


def central_orbit(rng):
    # Kepler force a = -r/|r|^3 on positions 0.5 <= |r| <= 1.5: conserved x*vy - y*vx (and the energy).
    n = 500
    radius, angle = rng.uniform(0.5, 1.5, n), rng.uniform(-np.pi, np.pi, n)
    c = {"x": radius * np.cos(angle), "y": radius * np.sin(angle)}
    c.update(uniform(rng, n, {"vx": (-1, 1), "vy": (-1, 1)}))
    c["ax"], c["ay"] = -c["x"] / radius**3, -c["y"] / radius**3
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
    "neo_hookean_p12": (neo_hookean_p12, 9),
    "neo_hookean_p12_no_prior": (neo_hookean_p12, 10),
    "harmonic_oscillator": (harmonic_oscillator, 11),
    "pendulum": (pendulum, 12),
    "relativistic_particle": (relativistic_particle, 13),
    "oscillator_energy": (oscillator_energy, 14),
    "central_orbit": (central_orbit, 15),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (make, seed) in DATASETS.items():
        frame = pd.DataFrame(make(np.random.default_rng(seed)))
        frame.to_csv(OUT / f"{name}.csv", index=False, float_format="%.10g")
        print(f"wrote {OUT / (name + '.csv')} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
