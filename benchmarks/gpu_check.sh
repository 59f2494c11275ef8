#!/usr/bin/env bash
# The GPU check in one go (about 5 minutes on one H200): CuPy op tests and CPU/GPU parity,
# a short --device cuda run of the example, and the GPU benchmark against PyTorch CUDA.
#   bash benchmarks/gpu_check.sh LOGDIR
# Needs CuPy, pytest and hypothesis installed (PyTorch optional); no network.
set -u
out=${1:-gpu_logs}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())" 2>&1
} | tee "$out/env.txt"
# 1. every op test body on CuPy (the 'cuda' parametrisations) and the parity tests
timeout 240 python -m pytest -q -p no:cacheprovider -k "cuda or parity" tests 2>&1 | tee "$out/tests.txt"
# 2. the example end to end on the GPU, and the same seed on the CPU for comparison
timeout 120 python examples/mnist_fitnet.py --quick --device cuda --no-progress --out "$out/run_cuda" 2>&1 | tee "$out/example_cuda.txt"
timeout 120 python examples/mnist_fitnet.py --quick --device cpu --no-progress --out "$out/run_cpu" 2>&1 | tail -8 | tee "$out/example_cpu.txt"
# 3. step times at batch 128 and 1024 against PyTorch CUDA eager, with the host-device copy count
timeout 180 python benchmarks/bench_step.py --device cuda --batch 128 1024 --compare-torch --reps 5 2>&1 | tee "$out/bench_cuda.txt"
echo "logs in $out"
