"""Benchmark: how close plain training gets to exact laws — LBFGS against Levenberg–Marquardt.

x·y with a `[2,[0,1],1]` identity-base MultKAN (one multiplication node): the network can
represent it exactly, but LBFGS crawls along flat valleys. For each seed, prints the test RMSE
after `--steps` LBFGS steps and after the same number of `opt: lm` steps, and the wall time.

    .venv/bin/python benchmarks/exact_fits.py [--seeds 6] [--steps 60]
"""

from __future__ import annotations

import argparse
import time

import torch

from kandisc.model import ModelSpec, MultKAN
from kandisc.train import Dataset, TrainSettings, train


def product_data(n: int = 400) -> Dataset:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2 * n, 2, generator=gen, dtype=torch.float64) * 2 - 1
    y = x[:, [0]] * x[:, [1]]
    return Dataset(x[:n], y[:n], x[n:], y[n:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = product_data()
    print(f"x*y, [2,[0,1],1] identity base, {args.steps} steps, test RMSE (wall time)")
    print(f"{'seed':>4} {'lbfgs':>18} {'lm':>18}")
    for seed in range(args.seeds):
        cells = []
        for opt in ("lbfgs", "lm"):
            model = MultKAN(ModelSpec.build([2, [0, 1], 1], base_fun="identity", seed=seed))
            start = time.perf_counter()
            result = train(model, data, TrainSettings(steps=args.steps, opt=opt, update_grid=False))
            cells.append(f"{result.history[-1].test_loss:.1e} ({time.perf_counter() - start:4.1f} s)")
        print(f"{seed:>4} {cells[0]:>18} {cells[1]:>18}")


if __name__ == "__main__":
    main()
