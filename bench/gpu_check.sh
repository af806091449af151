#!/usr/bin/env bash
# The GPU check on a bare GPU machine with no internet (issue 12): installs what `make gpu-wheels`
# put in .gpu/ (numpy<2, Jittor, jittor_offline's CUDA sources, faiss, segment-anything, the demo
# data; about 55 MB) into /tmp, then runs bench/gpu_check.py and prints its table.
#   here:   make gpu-wheels
#   there:  bash bench/gpu_check.sh            (through the device tool: carry [".gpu"])
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_DIR=${GPU_DIR:-.gpu}
SITE=${SITE:-/tmp/luss-site}
OUT_DIR=${OUT:-bench/out}
test -d "$GPU_DIR/wheels" || { echo "$GPU_DIR/wheels missing: run \`make gpu-wheels\` first" >&2; exit 2; }
start=$(date +%s)
pip_install() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "$@"; }
# numpy<2 only for the Jittor processes (Jittor 1.3.11 corrupts int64/float64 arrays under numpy 2);
# PyTorch keeps the machine's numpy.
pip_install --target "$SITE/numpy1" "$GPU_DIR"/wheels/numpy-*.whl
pip_install --target "$SITE/py" "$GPU_DIR"/wheels/faiss_cpu-*.whl "$GPU_DIR"/wheels/segment_anything-*.whl
pip_install --no-build-isolation --target "$SITE/py" "$GPU_DIR"/wheels/jittor-*.tar.gz
cp -r "$GPU_DIR/jittor_offline" "$SITE/py/"
echo "installed in $(( $(date +%s) - start )) s"
# oneDNN is Jittor's CPU convolution library: not carried, not needed on the GPU.
export use_mkl=0 PYTHONPATH="$SITE/py${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L || true
python3 bench/gpu_check.py --jittor-path "$SITE/numpy1" --data "$GPU_DIR/demo" --out "$OUT_DIR" "$@"
