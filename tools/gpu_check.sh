#!/usr/bin/env bash
# End-to-end check of a GPU machine on the ImageNet path, printed as one table (docs/benchmark.md);
# about 6 minutes on one H100 (budget: 8):
#   1. bash tools/install.sh [--with-ops]: the user's torch must stay as it was;
#   2. the data pipelines on generated ImageNet-size JPEGs (tools/analysis/benchmark_data.py):
#      img/s per core of mmpretrain's MAE pipeline, FAMT's and each decode= switch, with as many
#      workers as the machine has cores, and the GPU decoding path (nvJPEG, decode_crop_batch);
#   3. the FAMT vs MAE training step (tools/analysis/benchmark_pretrain.py), bf16:
#      ViT-B/16 batch 512 and ViT-L/16 batch $L_BATCH (default 256);
#   4. configs/famt_mae_vit-b_in1k.py on 512 generated JPEGs (ImageNet layout), 3 epochs through
#      the switch and two refreshes, the bank in a file (the per-step row path reads it):
#      AMP fp16 (the recipe's own), AMP bf16 with decode='gpu' (nvJPEG decoding, crop, resize
#      and flip in the model's data preprocessor; the CPU only reads files), and the bf16 run with
#      two processes where the machine has two GPUs (the table says so where it has one);
#   5. the table; exit status 1 with one "FAIL: <run>: <reason>" line per failure: a failed or
#      missing step, a traceback, a non-finite loss, "fallback to uniform: N" with N > 0, fewer
#      refreshes, a bank not in a file, AMP not really run (wrapper, autocast dtype, loss scale).
#
#   bash tools/gpu_check.sh [--with-ops] [--out DIR]   # on the GPU machine
#   bash tools/gpu_check.sh --dry-run [--out DIR]       # print the plan (commands, configs); run
#                                                       # nothing (GPUS_PLAN=2: a 2-GPU machine's)
#   bash tools/gpu_check.sh --smoke [--out DIR]         # CPU: the same steps, tiny, fp32 (tests
#                                                       # the script and checks; measures nothing)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
OUT="work_dirs/gpu_check"
MODE=gpu
install_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) MODE=dry; shift ;;
    --smoke) MODE=smoke; shift ;;
    --with-ops) install_args+=(--with-ops); shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n 2,23p "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
mkdir -p "$OUT/configs"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
log() { echo "[gpu_check] $*"; }

# step NAME CMD...: run CMD (stdout+stderr to OUT/NAME.log, status to OUT/NAME.rc); a failure
# is reported in the table, the other steps still run. --dry-run prints CMD only.
step() {
  local name="$1"; shift
  if [ "$MODE" = dry ]; then printf '[gpu_check] %s:' "$name"; printf ' %q' "$@"; echo; return; fi
  log "$name"
  "$@" > "$OUT/$name.log" 2>&1
  echo $? > "$OUT/$name.rc"
}

NPROC="$("$PY" -c 'import os; print(len(os.sched_getaffinity(0)))')"  # nproc obeys OMP_NUM_THREADS
if [ "$MODE" = gpu ]; then
  "$PY" -c 'import torch; assert torch.cuda.is_available(), "no usable GPU: see tools/train.py"' \
    || exit 1
  GPUS="$("$PY" -c 'import torch; print(torch.cuda.device_count())')"
else
  GPUS=0
  # --dry-run: the plan as on a one-GPU machine (GPUS=2 shows the two-process run)
  [ "$MODE" = dry ] && GPUS="${GPUS_PLAN:-1}"
fi

# 1. install, keeping torch
before="$("$PY" -c 'import torch; print(torch.__version__)')"
install_fail=""
if [ "$MODE" = gpu ]; then
  bash tools/install.sh "${install_args[@]}" > "$OUT/install.log" 2>&1 \
    || install_fail="tools/install.sh failed: $(tail -n 1 "$OUT/install.log")"
  after="$("$PY" -c 'import torch; print(torch.__version__)')"
  install="torch kept ($after)"
  [ "$after" = "$before" ] || { install="torch $before -> $after"; install_fail="$install"; }
  [ -z "$install_fail" ] || install="FAIL: $install_fail"
elif [ "$MODE" = dry ]; then
  step install bash tools/install.sh "${install_args[@]}"
  install="not run (dry)"
else  # the smoke run only lists what install.sh would install
  step install "$PY" -I tools/install_check.py missing "$ROOT" "${install_args[@]}"
  missing=0
  [ -f "$OUT/install.log" ] && missing="$(wc -l < "$OUT/install.log")"
  install="not run ($MODE): $missing item(s) missing"
fi

# sizes: the GPU run, or the tiny CPU smoke run
if [ "$MODE" = smoke ]; then
  IMAGES=16; BATCH=8; WORKERS=0
  data_args=(--images 12 --repeats 1 --workers 2 --decoders cv2-reduced)
  bench=(--device cpu --precision fp32 --batch 2 --img-size 64 --steps 2 --warmup 1 --threads 1
         --bank-size 50 --famt-config configs/famt_mae_vit-s_cifar10.py
         --mae-config configs/mae_vit-s_cifar10.py)
  benches=("b:t")
  amp16=""; amp_bf=""
else
  IMAGES=512; BATCH=64; WORKERS=$(( NPROC < 8 ? NPROC : 8 ))
  data_args=(--images 300 --repeats 2 --workers "$NPROC" --gpu --gpu-batch 256)
  bench=(--device cuda --precision bf16 --steps 30 --warmup 5)
  benches=("b:b:512" "l:l:${L_BATCH:-256}")
  amp16=float16; amp_bf=bfloat16
fi

# 2. data pipelines (and the generated ImageNet-layout folder the trainings read)
step data "$PY" tools/analysis/benchmark_data.py --root "$OUT/jpegs" "${data_args[@]}" \
  --out "$OUT/data.json"
step imagenet "$PY" -c "from famt_mm.datasets import make_imagenet_like_root as m; \
m('$OUT/imagenet', $IMAGES)"

# 3. benchmarks
bench_plan=""
for b in "${benches[@]}"; do
  IFS=: read -r name arch batch <<< "$b"
  step "bench_$name" "$PY" tools/analysis/benchmark_pretrain.py --arch "$arch" "${bench[@]}" \
    ${batch:+--batch "$batch"} --out "$OUT/bench_$name.json"
  bench_plan+="\"$name\": \"$arch\", "
done

# 4. trainings: configs written to OUT/configs (printed by --dry-run)
write_config() {  # NAME AMP_DTYPE DECODE
  local file="$OUT/configs/$1.py"
  {
    echo "_base_ = '$ROOT/configs/famt_mae_vit-b_in1k.py'"
    echo "from famt_mm.recipe import famt_data_preprocessor, famt_pipeline  # noqa: E402"
    echo "custom_imports = dict(imports=['famt_mm', 'famt_mm.analysis.gpu_check'],"
    echo "                      allow_failed_imports=False)"
    echo "train_dataloader = dict(batch_size=$BATCH, num_workers=$WORKERS,"
    persistent=True; [ "$WORKERS" = 0 ] && persistent=False
    echo "                        persistent_workers=$persistent,"
    echo "                        dataset=dict(data_root='$OUT/imagenet', pipeline=famt_pipeline("
    echo "                            _base_.train_pipeline, decode=${3:-None})))  # noqa: F821"
    echo "data_preprocessor = famt_data_preprocessor(decode=${3:-None})"
    echo "custom_hooks = [dict(type='FAMTWeightHook', start_epoch=1, interval=1, batch_size=$BATCH,"
    echo "                     num_workers=$WORKERS, bank_storage='file', log_interval=1),"
    echo "                dict(type='GPUCheckReportHook')]"
    echo "train_cfg = dict(max_epochs=3)"
    echo "default_hooks = dict(logger=dict(interval=4),"
    echo "                     checkpoint=dict(interval=1, max_keep_ckpts=1))"
    if [ -n "$2" ]; then
      echo "optim_wrapper = dict(type='AmpOptimWrapper', dtype='$2')"
    else  # the CPU smoke: fp32 and a tiny encoder
      echo "optim_wrapper = dict(_delete_=True, type='OptimWrapper',"
      echo "                     optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05))"
      echo "model = dict(backbone=dict(arch=dict(_delete_=True, embed_dims=32, num_layers=2,"
      echo "                                     num_heads=2, feedforward_channels=64)),"
      echo "             neck=dict(embed_dim=32, decoder_embed_dim=16, decoder_depth=1,"
      echo "                       decoder_num_heads=2))"
    fi
  } > "$file"
  [ "$MODE" = dry ] && { echo "[gpu_check] config $file:"; sed 's/^/    /' "$file"; }
  echo "$file"
}
train_plan=""
cfg16="$(write_config in1k_fp16 "$amp16" "" | tail -n 1)"
[ "$MODE" = dry ] && write_config in1k_fp16 "$amp16" "" | sed '$d'
cfgbf="$(write_config in1k_bf16_gpudecode "$amp_bf" "'gpu'" | tail -n 1)"
[ "$MODE" = dry ] && write_config in1k_bf16_gpudecode "$amp_bf" "'gpu'" | sed '$d'
amp_json() { [ -n "$1" ] && echo "\"$1\"" || echo null; }
allow_cpu=$( [ "$MODE" = smoke ] && echo 1 || echo 0 )
for run in "in1k_fp16:$cfg16:$amp16" "in1k_bf16_gpudecode:$cfgbf:$amp_bf"; do
  IFS=: read -r name cfg amp <<< "$run"
  rm -rf "$OUT/train_$name"
  step "$name" env FAMT_ALLOW_CPU=$allow_cpu "$PY" tools/train.py "$cfg" \
    --work-dir "$OUT/train_$name"
  train_plan+="\"$name\": {\"amp\": $(amp_json "$amp"), \"world_size\": 1}, "
done
notes=""
if [ "$GPUS" -ge 2 ]; then
  rm -rf "$OUT/train_in1k_bf16_2gpu"
  step in1k_bf16_2gpu env FAMT_ALLOW_CPU=$allow_cpu bash tools/dist_train.sh "$cfgbf" 2 \
    --work-dir "$OUT/train_in1k_bf16_2gpu"
  train_plan+="\"in1k_bf16_2gpu\": {\"amp\": $(amp_json "$amp_bf"), \"world_size\": 2}, "
else
  notes="[\"two processes\", \"not run: this machine has $GPUS GPU(s), the check needs 2\"]"
  [ "$MODE" = dry ] && log "in1k_bf16_2gpu: not run, $GPUS GPU(s) (needs 2):" \
    "bash tools/dist_train.sh $cfgbf 2"
fi

# 5. the table
card="$("$PY" -c 'import torch
print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU")')"
mmcv_text="$("$PY" -c 'import importlib.util, mmcv
print(mmcv.__version__, "with ops" if importlib.util.find_spec("mmcv._ext") else "no ops")' \
  2>/dev/null || echo 'not installed')"
PLAN_MACHINE="$card ($MODE); $GPUS GPU(s), $NPROC CPU cores; torch $before; mmcv $mmcv_text" \
PLAN_INSTALL="$install" PLAN_NOTES="[${notes}]" PLAN_BENCH="{${bench_plan%, }}" \
PLAN_TRAIN="{${train_plan%, }}" "$PY" - "$OUT/plan.json" <<'EOF'
import json, os, sys
env = os.environ  # free text (machine, install) goes through json.dumps
plan = dict(head=[['machine', env['PLAN_MACHINE']], ['install', env['PLAN_INSTALL']]],
            benchmarks=json.loads(env['PLAN_BENCH']), trainings=json.loads(env['PLAN_TRAIN']),
            notes=json.loads(env['PLAN_NOTES']), data=True)
json.dump(plan, open(sys.argv[1], 'w'), indent=1)
EOF
if [ "$MODE" = dry ]; then
  log "then: $PY -m famt_mm.analysis.gpu_check $OUT $OUT/plan.json" \
    "(the table; exit 1 on any failure)"
  exit 0
fi
status=0
"$PY" -m famt_mm.analysis.gpu_check "$OUT" "$OUT/plan.json" || status=1
[ -z "$install_fail" ] || { echo "FAIL: install: $install_fail"; status=1; }
exit $status
