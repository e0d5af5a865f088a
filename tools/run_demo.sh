#!/usr/bin/env bash
# Install what is missing, pre-train FAMT on the embedded dataset (CPU: about 1.5 minutes of
# training, plus the install; measured: README, Quick start), and draw what it masked.
#   bash tools/run_demo.sh [WORK_DIR]      (default work_dirs/famt_demo)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK_DIR="${1:-work_dirs/famt_demo}"
PY="${PYTHON:-python}"
bash "$ROOT/tools/install.sh"
cd "$ROOT"
"$PY" tools/train.py configs/famt_mae_vit-t_demo.py --work-dir "$WORK_DIR"
"$PY" tools/visualization/vis_famt_masks.py configs/famt_mae_vit-t_demo.py \
  "$WORK_DIR/epoch_6.pth" --indices 0 1 2 3 --out-dir "$WORK_DIR/masks"
echo "FAMT demo done: checkpoints and logs in $WORK_DIR, pictures in $WORK_DIR/masks/"
