"""Benchmark: snap every edge of a [4,4,1] KAN (20 edges) against the full default library.

Issue 5's budget is 2 s on 2 cores (pykan: tens of seconds per edge). Each synthetic edge is a
known function sampled at M = 100 points of its input range, plus a smooth wiggle of 1e-3 of its
spread that stands in for the spline's approximation error. Prints the wall time (first call and
best of the repeats) and each edge's pick against its truth.

    .venv/bin/python benchmarks/symbolic_fit.py [--repeats 5] [--float32]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import torch

from kandisc.model.functions import DEFAULT_LIBRARY
from kandisc.symbolic.edge_fit import fit_edges
from kandisc.symbolic.selection import choose

M = 100
# (truth, input range, curve): 16 first-layer edges on [-1, 1]-like ranges, 4 second-layer edges.
EDGES = [
    ("sin", (-1, 1), lambda x: torch.sin(math.pi * x)),
    ("x^2", (-1, 1), lambda x: x**2),
    ("exp", (-1, 1), lambda x: torch.exp(x)),
    ("x", (-1, 1), lambda x: 0.7 * x - 0.1),
    ("tanh", (-1, 1), lambda x: torch.tanh(2 * x - 0.3)),
    ("x^3", (-1, 1), lambda x: 0.5 * x**3),
    ("sin", (-1, 1), lambda x: 0.3 * torch.sin(2 * x + 1)),
    ("x^2", (-1, 1), lambda x: (x + 0.4) ** 2 - 1),
    ("gaussian", (-1, 1), lambda x: torch.exp(-((2 * x) ** 2))),
    ("log", (-1, 1), lambda x: torch.log(x + 1.5)),
    ("sqrt", (-1, 1), lambda x: torch.sqrt(x + 1.2)),
    ("1/x", (-1, 1), lambda x: 1 / (x + 2)),
    ("abs", (-1, 1), lambda x: torch.abs(x - 0.2)),
    ("arctan", (-1, 1), lambda x: torch.atan(3 * x)),
    ("cos", (-1, 1), lambda x: torch.cos(3 * x)),
    ("x", (-1, 1), lambda x: -x),
    ("exp", (-2.5, 2.5), lambda x: torch.exp(0.8 * x)),
    ("x^2", (-3, 1.5), lambda x: 0.2 * x**2),
    ("sin", (-2, 2), lambda x: torch.sin(1.5 * x - 0.5)),
    ("tanh", (-2, 3), lambda x: 2 * torch.tanh(x)),
]
EQUIVALENT = {("cos", "sin")}  # a phase turns one into the other; the rule prefers library order


def edge_curves(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([torch.linspace(*lim, M, dtype=torch.float64) for _, lim, _ in EDGES])
    y = torch.stack([f(xe) for xe, (_, _, f) in zip(x, EDGES, strict=True)])
    t = torch.linspace(0, 1, M, dtype=torch.float64)
    y = y + 1e-3 * y.std(1, keepdim=True) * torch.sin(17 * t + torch.arange(len(EDGES))[:, None])
    return x.to(dtype), y.to(dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--float32", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = edge_curves(torch.float32 if args.float32 else torch.float64)

    times, cpu = [], []
    for _ in range(args.repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fits = fit_edges(x, y, DEFAULT_LIBRARY)
        choices = choose(fits, {})
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)

    matches = 0
    for (truth, lim, _), c in zip(EDGES, choices, strict=True):
        ok = c.name == truth or (truth, c.name) in EQUIVALENT
        matches += ok
        params = ", ".join(f"{v:.4g}" for v in c.params)
        miss = "" if ok else "  MISS"
        print(f"{truth:>9} on {str(lim):>11} -> {c.name!s:>9}  r2=1-{1 - c.r2:.1e}  ({params}){miss}")
    print(
        f"\n{len(EDGES)} edges x {len(DEFAULT_LIBRARY)} functions, M={M}, {x.dtype}, "
        f"{args.threads} threads, load average {os.getloadavg()[0]:.1f}: wall first call "
        f"{times[0]:.3f} s, best of {len(times)} {min(times):.3f} s (budget 2 s); "
        f"CPU best {min(cpu):.3f} s; picks matching the truth: {matches}/{len(EDGES)}"
    )


if __name__ == "__main__":
    main()
