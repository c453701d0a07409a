#!/usr/bin/env bash
# The re-identification work that needs a GPU, in one call on the device machine (see docs/models.md):
# render the synthetic ReID training and held-out sets (16 processes), train the two-stream network, evaluate it
# beside OSNet x0.25 (MSMT17 weights carried in .dev/, research use only) and the colour-histogram baseline on the
# held-out set, and time the embedding on the GPU. Everything it makes goes to $OUT.
#   usage (device): bash bench/reid_gpu.sh STEPS TRAIN_FRAMES HELDOUT_FRAMES
set -euo pipefail
STEPS=${1:-3000}; TRAIN=${2:-4000}; HELD=${3:-800}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
mkdir -p /tmp/pkg/matchflow
for f in matchflow/*; do ln -sf "$PWD/$f" /tmp/pkg/matchflow/; done
for d in flows tasks models storage; do ln -sfn "$PWD/$d" /tmp/pkg/matchflow/$d; done
export PYTHONPATH=/tmp/site:/tmp/pkg PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 bench/reid_gpu.py --steps "$STEPS" --train-frames "$TRAIN" --heldout-frames "$HELD" \
  --osnet .dev/osnet_x0_25_msmt17.pt --out "$OUT" 2>&1 | tee "$OUT/log.txt"
