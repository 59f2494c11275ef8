#!/usr/bin/env bash
# The GPU check in one go (about 5 minutes on one H200, most of it compiling CuPy kernels on a
# fresh machine): CPU/GPU parity first, then every op test body on CuPy, a short --device cuda
# run of the example beside the same run on the CPU, and the GPU benchmark against PyTorch CUDA.
#   bash benchmarks/gpu_check.sh LOGDIR [MNIST_DIR]
# MNIST_DIR: the four MNIST IDX files (default ../shared/data/mnist when it exists); without
# them the example uses the embedded digits. Needs CuPy, pytest and hypothesis
# (PyTorch optional for the comparison); no network.
set -u
out=$(realpath -m "${1:-gpu_logs}")
mkdir -p "$out"
cd "$(dirname "$0")/.."
mnist=${2:-../shared/data/mnist}
data=()
if [ -f "$mnist/train-images-idx3-ubyte.gz" ] || [ -f "$mnist/train-images-idx3-ubyte" ]; then
  data=(--data-dir "$mnist" --init glorot)
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS CMD...: run with a time limit, log to NAME.txt, record the time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc, $((SECONDS - t0)) s (limit $limit s)" | tee -a "$out/steps.txt"
  tail -n 4 "$out/$name.txt"
}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python -c "import cupy, numpy; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'devices', cupy.cuda.runtime.getDeviceCount())" 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1
  echo "data: ${data[*]:-embedded digits}"
} > "$out/env.txt"
cat "$out/env.txt"
# 1. CPU/GPU parity (compiles most kernels), then every op test body on CuPy
step parity 150 python -m pytest -q -p no:cacheprovider tests/test_parity.py
step tests_cuda 200 python -m pytest -q -p no:cacheprovider -k "cuda" tests
# 2. the example end to end on the GPU, and the same seed on the CPU for comparison
step example_cuda 90 python examples/mnist_fitnet.py --quick --device cuda --no-progress "${data[@]}" --out "$out/run_cuda"
step example_cpu 90 python examples/mnist_fitnet.py --quick --device cpu --no-progress "${data[@]}" --out "$out/run_cpu"
# 3. step times at batch 128 and 1024 against PyTorch CUDA eager, with the host-device copy count
step bench_cuda 150 python benchmarks/bench_step.py --device cuda --batch 128 1024 --compare-torch --reps 5
echo "logs in $out"
