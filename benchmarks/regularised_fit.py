"""Milliseconds per evaluation of a regularised fit stage, in one process.

One ``[2, 5, 1]`` MultKAN on 800 rows of exp(sin(πx) + y²) (the quickstart's law), ``lamb
0.01``, 50 LBFGS steps on one torch thread: the stage that dominates the quickstart's fitting.
Prints the wall seconds of the stage, the number of closure evaluations and their mean cost, so
that two checkouts compare with

    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/regularised_fit.py --repeat 3
    .venv/bin/python benchmarks/regularised_fit.py --repeat 3
"""

from __future__ import annotations

import argparse
import time

import torch

from kandisc import train as training
from kandisc.defaults import TrainSettings
from kandisc.model import ModelSpec, MultKAN


def one_fit(steps: int) -> tuple[float, int]:
    """(wall seconds, closure evaluations) of one regularised fit stage."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1000, 2, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.exp(torch.sin(torch.pi * x[:, :1]) + x[:, 1:] ** 2)
    data = training.Dataset(x[:800], y[:800], x[800:], y[800:])
    model = MultKAN(ModelSpec.build([2, 5, 1], grid=5, seed=0))
    calls = [0]
    make_closure = training._make_closure

    def counting(*args, **kwargs):
        closure = make_closure(*args, **kwargs)

        def counted():
            calls[0] += 1
            return closure()

        return counted

    training._make_closure = counting
    try:
        start = time.perf_counter()
        training.train(model, data, TrainSettings(steps=steps, lamb=0.01))
        return time.perf_counter() - start, calls[0]
    finally:
        training._make_closure = make_closure


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="fits, one after the other")
    p.add_argument("--steps", type=int, default=50, help="LBFGS steps of the stage")
    args = p.parse_args()
    torch.set_num_threads(1)
    for run in range(args.repeat):
        wall, calls = one_fit(args.steps)
        print(f"run {run + 1}: {wall:.2f} s, {calls} evaluations, {1e3 * wall / calls:.2f} ms per evaluation")


if __name__ == "__main__":
    main()
