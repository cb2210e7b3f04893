"""Engine benchmark: forward+backward of one KAN layer vs the dense matmul of the same contraction.

For each shape the KAN layer time is printed as a ratio to (B × in·(G+k)) @ (in·(G+k) × out),
forward+backward, measured in the same run (best wall time over repetitions, the two measurements
interleaved). Also prints the peak memory increase of the largest shape (in a fresh subprocess).

    python benchmarks/engine.py [--threads 1]
    KANDISC_NATIVE=0 python benchmarks/engine.py    # the eager torch path, for comparison
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import torch

from kandisc.model import native
from kandisc.model.layer import KANLayer

SHAPES = [(2, 5, 5, 1000), (16, 32, 5, 4096), (100, 100, 10, 2048)]  # in, out, G, B
K = 3


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time_pair(first, second, reps: int, device: str = "cpu") -> tuple[float, float]:
    """Best wall time of each of two functions, their repetitions interleaved so that both see
    the same machine conditions (a shared VM's speed drifts; a ratio of two separate runs drifts too)."""
    for _ in range(3):
        first()
        second()
    _sync(device)
    best = [float("inf"), float("inf")]
    for _ in range(reps):
        for slot, fn in enumerate((first, second)):
            start = time.perf_counter()
            fn()
            _sync(device)
            best[slot] = min(best[slot], time.perf_counter() - start)
    return best[0], best[1]


def make_steps(n_in: int, n_out: int, grid: int, batch: int, dtype: torch.dtype, device: str = "cpu"):
    """(kan_step, mm_step): forward+backward of one KAN layer and of the matching dense matmul."""
    gen = torch.Generator().manual_seed(0)
    layer = KANLayer(n_in, n_out, grid, K, "silu", (-1.0, 1.0), 0.3, gen, dtype).to(device)
    x = (torch.rand(batch, n_in, generator=gen, dtype=dtype) * 2 - 1).to(device).requires_grad_()
    width = n_in * (grid + K)
    a = torch.rand(batch, width, dtype=dtype, device=device, requires_grad=True)
    w = torch.rand(width, n_out, dtype=dtype, device=device, requires_grad=True)

    def kan_step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).sum().backward()

    def mm_step():
        a.grad = w.grad = None
        (a @ w).sum().backward()

    return kan_step, mm_step


def bench_shape(
    n_in: int, n_out: int, grid: int, batch: int, dtype: torch.dtype, reps: int, device: str = "cpu"
) -> tuple[float, float]:
    return _time_pair(*make_steps(n_in, n_out, grid, batch, dtype, device), reps, device)


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_child(dtype_name: str) -> None:
    """Peak resident memory a forward+backward of the largest KAN layer adds on top of its
    parameters and input (Linux: VmHWM reset through /proc/self/clear_refs)."""
    n_in, n_out, grid, batch = SHAPES[-1]
    kan_step, _ = make_steps(n_in, n_out, grid, batch, getattr(torch, dtype_name))
    kan_step()  # warm up kernels and lazily built state; its gradients are then dropped
    kan_step()
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak to the current resident size
        fh.write("5")
    before = _status_kb("VmRSS")
    kan_step()
    print((_status_kb("VmHWM") - before) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (timings synchronise the GPU)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_child:
        peak_memory_child(args.memory_child)
        return
    kernel = "compiled C kernel" if native.available() and args.device == "cpu" else "eager torch"
    print(f"torch {torch.__version__}, device={args.device}, threads={args.threads}, k={K}, features: {kernel}")
    print(f"min of {args.reps} repetitions (ms)")
    print(f"{'shape':>24} {'dtype':>8} {'kan f+b':>9} {'matmul f+b':>11} {'ratio':>6}")
    for dtype in (torch.float32, torch.float64):
        for n_in, n_out, grid, batch in SHAPES:
            kan, mm = bench_shape(n_in, n_out, grid, batch, dtype, args.reps, args.device)
            label = f"[{n_in}->{n_out}] G={grid} B={batch}"
            print(f"{label:>24} {str(dtype)[6:]:>8} {kan * 1e3:9.3f} {mm * 1e3:11.3f} {kan / mm:6.2f}")
    if args.device != "cpu":
        return  # peak resident memory is a CPU measure
    for dtype_name in ("float32", "float64"):
        # Large blocks straight from mmap and back on free: the resident peak then follows the
        # live tensors instead of whatever glibc's heap happened to keep from earlier calls.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
        out = subprocess.run(
            [sys.executable, __file__, "--threads", str(args.threads), "--memory-child", dtype_name],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        ).stdout.strip()
        print(f"peak memory added by one KAN forward+backward, largest shape ({dtype_name}): {float(out):.1f} MB")


if __name__ == "__main__":
    main()
