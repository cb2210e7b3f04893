"""Second derivatives through the engine, and the structure tests built on them.

For a few model sizes, prints the time of one input gradient (first order) and of one Hessian
(second order: one forward and one double backward over n copies of the rows) for 1000 rows,
their ratio, and that ratio per input (what one row of the Hessian costs in gradients); then
the time of each structure test on 1000 rows of a 10-input model. Best wall time over repetitions.

    python benchmarks/hessian.py [--threads 1] [--rows 1000]
    KANDISC_NATIVE=0 python benchmarks/hessian.py    # the eager torch path, for comparison
"""

from __future__ import annotations

import argparse
import time

import torch

from kandisc.model import ModelSpec, MultKAN, native
from kandisc.structure import (
    check_general_separability,
    check_separability,
    check_symmetry,
    detect_structure,
    jet,
    third_derivatives,
)
from kandisc.structure.hessian import value_gradient_hessian

SIZES = [[2, 5, 1], [5, [5, 2], 1], [10, 10, 1], [10, [10, 5], 5, 1]]


def best_time(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gradient(fn, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_()
    (g,) = torch.autograd.grad(fn(x).sum(), x)
    return g


def model_and_rows(width, rows: int):
    model = MultKAN(ModelSpec.build(width, grid=5, seed=0))
    x = torch.rand(rows, model.spec.n_inputs, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return (lambda v: model(v)[:, 0]), x * 2 - 1


def derivative_costs(rows: int, reps: int) -> None:
    print(f"{'width':>22}  {'gradient ms':>12}  {'Hessian ms':>11}  {'ratio':>6}  {'ratio / n':>9}")
    for width in SIZES:
        fn, x = model_and_rows(width, rows)
        first = best_time(lambda fn=fn, x=x: gradient(fn, x), reps)
        second = best_time(lambda fn=fn, x=x: value_gradient_hessian(fn, x), reps)
        ratio = second / first  # a Hessian is n directional second derivatives: ratio / n is the cost of one
        print(f"{str(width):>22}  {first * 1e3:12.2f}  {second * 1e3:11.2f}  {ratio:6.1f}  {ratio / x.shape[1]:9.1f}")


def structure_costs(rows: int, reps: int) -> None:
    fn, x = model_and_rows([10, [10, 5], 5, 1], rows)
    the_jet = jet(fn, x)
    halves = [list(range(5)), list(range(5, 10))]
    timings = {
        "jet (f, gradient, Hessian)": lambda: jet(fn, x),
        "additive separability": lambda: check_separability(the_jet, halves, "add"),
        "multiplicative separability": lambda: check_separability(the_jet, halves, "mul"),
        "symmetry of 5 inputs": lambda: check_symmetry(the_jet, halves[0]),
        "third derivatives (256 rows)": lambda: third_derivatives(fn, x[:256]),
        "general separability (incl. third)": lambda: check_general_separability(jet(fn, x), halves),
        "detect_structure (all + tree)": lambda: detect_structure(fn, x),
    }
    print(f"\nstructure tests, {rows} rows of a [10, [10, 5], 5, 1] model")
    for name, call in timings.items():
        print(f"{name:>36}  {best_time(call, reps) * 1e3:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kernel = "compiled C kernel" if native.available() else "eager torch"
    print(f"torch {torch.__version__}, threads={args.threads}, rows={args.rows}, features: {kernel}")
    derivative_costs(args.rows, args.reps)
    structure_costs(args.rows, max(1, args.reps // 2))


if __name__ == "__main__":
    main()
