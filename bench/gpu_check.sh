#!/usr/bin/env bash
# The one prepared GPU check (<= 8 minutes on one H200). The GPU machine's image has Python 3.12 and
# torch but not all of this project's packages; the missing pure-Python and binary wheels travel in
# bench/.wheels (git-ignored), which `bench/gpu_check.sh --prepare` fills here, for Python 3.12.
#
#   bench/gpu_check.sh --prepare      # here: download the wheels (needs PyPI)
#   bench/gpu_check.sh                # on the GPU machine: install them to /tmp/site, run the check
#
# It runs the suite's CUDA-marked tests (fixture in fp32/TF32/bf16, Grad-CAM determinism at every layer,
# device moves, uint8 normalisation on the GPU) and bench/bench_gpu.py; results go to $OUT (or out/gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=bench/.wheels
# Not in the GPU image (see the device notes): the CAM library and its test-time-augmentation helper,
# PyAV for decoding the sample clips. Versions as in requirements.txt.
PURE=(grad-cam==1.5.7 ttach==0.0.3)  # published as sources only: built here into py3-none-any wheels
BINARY=(av==18.1.0)                   # manylinux wheels for CPython 3.12

if [[ "${1:-}" == "--prepare" ]]; then
  mkdir -p "$WHEELS"
  python3 -m pip wheel -q --no-deps -w "$WHEELS" "${PURE[@]}"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$WHEELS" "${BINARY[@]}"
  ls -la "$WHEELS"
  exit 0
fi

OUT_DIR=${OUT:-out/gpu}
mkdir -p "$OUT_DIR"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT_DIR/gpu.txt"
status=0
timeout 150 python3 -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py tests/test_compile.py 2>&1 \
  | tee "$OUT_DIR/pytest.log" || status=1
timeout 300 python3 -m bench.bench_gpu --out "$OUT_DIR/bench_gpu.json" 2>&1 | tail -n 80 || status=1
exit $status
