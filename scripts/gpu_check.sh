#!/usr/bin/env bash
# One-shot GPU check for kandisc on a lent CUDA machine (not part of CI): CPU/GPU agreement of the
# engine, training on the GPU, `kandisc fit --device cuda` on the quickstart with figures and explain,
# and benchmarks/engine.py on the GPU. That machine's python has torch but not pydantic: download the
# wheels here first (they are carried in the git-ignored gpu_wheels/ folder):
#   pip download pydantic pydantic-core annotated-types typing-inspection --python-version 3.12 \
#     --only-binary=:all: --platform manylinux2014_x86_64 -d gpu_wheels
#   echo /gpu_wheels/ >> .git/info/exclude
# then run `bash scripts/gpu_check.sh` there with gpu_wheels carried.
set -uo pipefail
export PYTHONUNBUFFERED=1
mkdir -p /tmp/pydeps && python3 -m pip install -q --no-deps --target /tmp/pydeps gpu_wheels/*.whl 2>&1 | tail -2
export PYTHONPATH="$PWD:/tmp/pydeps"
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 - <<'PY'
import math, time, torch
from kandisc.model import ModelSpec, MultKAN
from kandisc.train import Dataset, TrainSettings, train
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
# 1. same function on CPU and GPU (float64), forward, backward and traced statistics
spec = ModelSpec.build([3, [2, 1], 1], grid=6)
cpu = MultKAN(spec); gpu = MultKAN(ModelSpec.from_dict(spec.to_dict()), device="cuda")
cpu.set_symbolic(0, 1, 2, "sin", [1.2, 0.1, 0.8, 0.0]); gpu.set_symbolic(0, 1, 2, "sin", [1.2, 0.1, 0.8, 0.0])
x = torch.rand(500, 3, dtype=torch.float64) * 2 - 1
print("forward max |cpu-gpu|:", float((cpu(x) - gpu(x.cuda()).cpu()).abs().max()))
gpu.update_grid(x.cuda()); cpu.update_grid(x)
print("after grid update max |cpu-gpu|:", float((cpu(x) - gpu(x.cuda()).cpu()).abs().max()))
# 2. training on the GPU reaches the CPU accuracy target
g = torch.Generator().manual_seed(0)
xx = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 2 - 1
yy = torch.exp(torch.sin(math.pi * xx[:, [0]]) + xx[:, [1]] ** 2)
d = Dataset(*(t.cuda() for t in (xx[:1000], yy[:1000], xx[1000:], yy[1000:])))
m = MultKAN(ModelSpec.build([2, 5, 1]), device="cuda")
t = time.time(); r = train(m, d, TrainSettings(steps=30, lamb=0.01)); torch.cuda.synchronize()
print(f"gpu train 30 steps: status {r.status}, test rmse {r.history[-1].test_loss:.3e}, {time.time()-t:.1f}s")
PY
echo "== kandisc fit --device cuda (quickstart)"
python3 -m kandisc fit sample_data/quickstart.csv --config configs/quickstart.yaml --device cuda --out /tmp/run_cuda --overwrite --quiet && ls /tmp/run_cuda/figures && python3 -m kandisc explain /tmp/run_cuda/model.pt --out /tmp/run_cuda/ex && cp /tmp/run_cuda/figures/network.png "${OUT:-/tmp}"/
python3 -c "import json; s=json.load(open('/tmp/run_cuda/summary.json')); print(s['test_r2'], s['formulas'], s['wall_seconds'])"
python3 -c "import json; print(json.load(open('/tmp/run_cuda/run.json'))['device'])"
echo "== engine benchmark on the GPU"
python3 benchmarks/engine.py --device cuda --reps 20
echo "== larger shapes (batch 65536)"
python3 - <<'PY'
import sys; sys.path.insert(0, "benchmarks")
import torch, engine
for n_in, n_out, grid, batch in [(16, 32, 5, 65536), (100, 100, 10, 65536)]:
    kan, mm = engine.bench_shape(n_in, n_out, grid, batch, torch.float32, 20, "cuda")
    print(f"[{n_in}->{n_out}] G={grid} B={batch} f32: kan {kan*1e3:.3f} ms, matmul {mm*1e3:.3f} ms, ratio {kan/mm:.2f}")
PY
