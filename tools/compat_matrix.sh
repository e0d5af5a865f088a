#!/usr/bin/env bash
# Compatibility matrix: each torch in its own fresh virtual environment, through
#   1. that torch (+ its torchvision, numpy < 2 where it needs it) from the registry, and
#      for an 'onedl' row the maintained successor stack (onedl-mmengine, onedl-mmcv built
#      without ops, onedl-mmpretrain) the way a user of it has it,
#   2. bash tools/install.sh (must keep that torch, and on an onedl row add no mmengine /
#      mmcv / mmpretrain distribution: the onedl ones provide those modules),
#   3. the FAMT test subset (weights, sampling, model, hook, resume, checkpoint
#      safety),
#   4. the demo training (configs/famt_mae_vit-t_demo.py on 320 of its images: random
#      masking, the switch to FAMT and two weight refreshes, 6 epochs),
# then one table with the versions and pass/fail. Not part of CI (minutes per torch,
# most of it pip; CPU only).
#
#   bash tools/compat_matrix.sh [--work DIR] [TORCH,TORCHVISION[,NUMPY_SPEC[,onedl]] ...]
#
# Default rows: the oldest and the newest supported torch, and the onedl stack on the pinned
# torch (README, "Installation").
# pip options come from the environment: where a pip config caps torch (a constraint
# file), lift it for this run, e.g. PIP_CONSTRAINT=/dev/null bash tools/compat_matrix.sh.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="${TMPDIR:-/tmp}/famt_compat_matrix"
rows=()
while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK="$2"; shift 2 ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) rows+=("$1"); shift ;;
  esac
done
[ ${#rows[@]} -gt 0 ] || rows=("2.1.2,0.16.2,<2" "2.15.0,0.29.2" "2.14.1,0.29.1,,onedl")
ONEDL=(onedl-mmengine==0.10.12 onedl-mmcv==2.3.6 onedl-mmpretrain==1.3.6)
BASE_PY="${PYTHON:-python3}"
TESTS=(tests/test_models/test_famt_weights.py tests/test_models/test_famt_sampling.py
       tests/test_models/test_famt_mae.py tests/test_engine/test_famt_weight_hook.py
       "tests/test_tools/test_train_tools.py::test_train_writes_a_checkpoint_and_resume_continues"
       "tests/test_compat.py::test_mmengine_checkpoints_load_on_modern_torch"
       tests/test_checkpoint_safety.py
       "tests/test_no_patches.py::test_with_famt_mm_imported_mmengine_refuses_a_crafted_checkpoint")
mkdir -p "$WORK"
table="$WORK/table.md"
{
  echo "| torch | stack | torchvision | numpy | mmcv | install (torch kept) | FAMT tests | demo training | minutes |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} > "$table"

for row in "${rows[@]}"; do
  IFS=, read -r torch_v vision_v numpy_spec stack <<< "$row"
  stack="${stack:-openmmlab}" name="torch$torch_v${stack/openmmlab/}"
  venv="$WORK/venv-$name" log="$WORK/$name.log" start=$SECONDS
  echo "== torch $torch_v: $venv (log $log)"
  rm -rf "$venv"
  install=fail tests=fail demo=fail numpy_v=- mmcv_v=-
  {
    "$BASE_PY" -m venv "$venv" &&
    "$venv/bin/python" -m pip install --disable-pip-version-check "torch==$torch_v" \
      "torchvision==$vision_v" ${numpy_spec:+"numpy$numpy_spec"} &&
    # pip builds onedl-mmcv's sdist in an isolated environment without torch: no ops
    if [ "$stack" = onedl ]; then "$venv/bin/python" -m pip install \
      --disable-pip-version-check "${ONEDL[@]}"; fi
  } > "$log" 2>&1
  py="$venv/bin/python"
  before="$("$py" -c 'import torch; print(torch.__version__)' 2>>"$log")"
  "$py" -m pip list --format=freeze > "$WORK/$name.pip-before.txt" 2>>"$log"
  if [ -n "$before" ] && PYTHON="$py" bash "$ROOT/tools/install.sh" >> "$log" 2>&1; then
    after="$("$py" -c 'import torch; print(torch.__version__)' 2>>"$log")"
    "$py" -m pip list --format=freeze > "$WORK/$name.pip-after.txt" 2>>"$log"
    # distributions the install added that install a module the user's stack already had
    second="$(comm -13 <(cut -d= -f1 "$WORK/$name.pip-before.txt" | sort) \
      <(cut -d= -f1 "$WORK/$name.pip-after.txt" | sort) \
      | grep -x -E 'mmengine|mmcv|mmcv-lite|mmpretrain' || true)"
    if [ "$after" != "$before" ]; then install="fail (torch became $after)"
    elif [ "$stack" = onedl ] && [ -n "$second" ]; then install="fail (added $second)"
    else install="pass ($after)"; fi
  fi
  numpy_v="$("$py" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo -)"
  mmcv_v="$("$py" -c 'import mmcv; print(mmcv.__version__)' 2>/dev/null || echo -)"
  if [ "${install%% *}" = pass ]; then
    "$py" -m pip install -q --disable-pip-version-check "pytest>=7" >> "$log" 2>&1
    (cd "$ROOT" && OMP_NUM_THREADS=1 "$py" -m pytest -q -p no:cacheprovider "${TESTS[@]}") \
      > "$WORK/$name.tests.log" 2>&1
    summary="$(tail -n 1 "$WORK/$name.tests.log" | sed 's/=//g; s/^ *//; s/ *$//')"
    if grep -q passed <<< "$summary" && ! grep -q -E 'failed|error' <<< "$summary"; then
      tests="pass: $summary"
    else
      tests="fail: $summary"
    fi
    demo_dir="$WORK/demo-$name"
    rm -rf "$demo_dir"
    if (cd "$ROOT" && OMP_NUM_THREADS=1 "$py" tools/train.py configs/famt_mae_vit-t_demo.py \
          --work-dir "$demo_dir" --cfg-options train_dataloader.dataset.num_samples=320 \
          > "$WORK/$name.demo.log" 2>&1) &&
       grep -q 'FAMT refresh before epoch 5' "$WORK/$name.demo.log" &&
       [ -s "$demo_dir/epoch_6.pth" ]; then
      demo="pass (FAMT from epoch 3, refreshes before 3 and 5)"
    fi
  fi
  minutes="$(awk "BEGIN {printf \"%.1f\", ($SECONDS - $start) / 60}")"
  echo "| $torch_v | $stack | $vision_v | $numpy_v | $mmcv_v | $install | $tests | $demo | $minutes |" \
    >> "$table"
done
echo
cat "$table"
! grep -q -E '\| fail' "$table"
