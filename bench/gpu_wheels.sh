#!/usr/bin/env bash
# Fill .gpu/ (git-ignored) with what bench/gpu_check.sh installs on a GPU machine without internet:
# cp312 manylinux wheels of numpy<2 and faiss-cpu, segment-anything, Jittor's source archive, the CUDA
# sources jittor_offline ships (cub, cutt, nccl; not its CPU oneDNN or MNIST), and the demo dataset.
# Needs the package registry. The whole working tree that travels must stay under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
GPU_DIR=${GPU_DIR:-.gpu}
rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/wheels" "$GPU_DIR/jittor_offline"
pin() { grep -E "^$1==" requirements.txt | head -1; }
platforms=""
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do
  platforms="$platforms --platform $p"
done
$PYTHON -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  $platforms -d "$GPU_DIR/wheels" "$(pin numpy)" "$(pin faiss-cpu)"
$PYTHON -m pip download -q --no-deps -d "$GPU_DIR/wheels" "$(pin segment-anything)" "$(pin jittor)"
offline=$($PYTHON -c "import jittor_offline, os; print(os.path.dirname(jittor_offline.__file__))")
cp "$offline/__init__.py" "$offline/cub-1.11.0.tgz" "$offline/cutt-1.2.zip" "$offline/nccl.tgz" "$GPU_DIR/jittor_offline/"
$PYTHON -m luss_cli demo-data "$GPU_DIR/demo" --overwrite >/dev/null
du -sh "$GPU_DIR"/* && du -sh "$GPU_DIR"
