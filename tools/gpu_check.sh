#!/usr/bin/env bash
# End-to-end check of a GPU machine, printed as one short table (docs/benchmark.md):
#   1. bash tools/install.sh [--with-ops]: the user's torch must stay as it was;
#   2. the FAMT vs MAE training step (tools/analysis/benchmark_pretrain.py), bf16:
#      ViT-B/16 batch 512 and ViT-L/16 batch $L_BATCH (default 256, as docs/benchmark.md);
#   3. a short AMP training through the switch and two weight refreshes (the demo
#      config, --amp, 3 epochs), which must keep AmpOptimWrapper (no CPU fallback);
#   4. the refresh speed and the weight bank's memory (benchmark and training log).
#
#   bash tools/gpu_check.sh [--with-ops] [--out DIR]      # on the GPU machine
#   bash tools/gpu_check.sh --dry-run [--out DIR]          # CPU smoke: same steps, tiny
#
# --dry-run changes nothing in the environment (the install only reports what it would
# do), runs on the CPU with one tiny ViT benchmark at 64 px and fp32 training, and
# stands for nothing measured: it checks that the script and its table work.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
OUT="work_dirs/gpu_check"
DRY=0
install_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --with-ops) install_args+=(--with-ops); shift ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n 2,16p "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
cd "$ROOT"
mkdir -p "$OUT"
log() { echo "[gpu_check] $*"; }
torch_version() { "$PY" -c 'import torch; print(torch.__version__)'; }

# 1. install, keeping torch
before="$(torch_version)"
if [ "$DRY" = 1 ]; then
  log "dry run: what tools/install.sh would install (nothing is changed)"
  "$PY" -I tools/install_check.py missing "$ROOT" "${install_args[@]}" > "$OUT/install.txt"
  install="dry run: $(wc -l < "$OUT/install.txt") item(s) missing"
else
  bash tools/install.sh "${install_args[@]}" 2>&1 | tee "$OUT/install.txt"
  after="$(torch_version)"
  [ "$after" = "$before" ] && install="torch kept ($after)" || install="FAIL: torch $before -> $after"
fi

# 2. benchmark, 3. AMP training
if [ "$DRY" = 1 ]; then
  bench=(--device cpu --precision fp32 --batch 2 --img-size 64 --steps 2 --warmup 1
         --threads 1 --bank-size 50 --famt-config configs/famt_mae_vit-s_cifar10.py
         --mae-config configs/mae_vit-s_cifar10.py)
  runs=("b:t")  # name:arch; one tiny run stands for both
  train=(--cfg-options train_dataloader.dataset.num_samples=16 train_dataloader.batch_size=8
         train_dataloader.num_workers=0 train_dataloader.persistent_workers=False
         custom_hooks.0.start_epoch=1 custom_hooks.0.interval=1 custom_hooks.0.batch_size=8
         custom_hooks.0.num_workers=0 custom_hooks.1.indices=[0] train_cfg.max_epochs=3)
else
  "$PY" -c 'import torch; assert torch.cuda.is_available(), "no usable GPU: see tools/train.py"'
  bench=(--device cuda --precision bf16 --steps 50 --warmup 10)
  runs=("b:b:512" "l:l:${L_BATCH:-256}")
  train=(--amp --cfg-options custom_hooks.0.start_epoch=1 custom_hooks.0.interval=1
         train_cfg.max_epochs=3)
fi
for run in "${runs[@]}"; do
  IFS=: read -r name arch batch <<< "$run"
  log "benchmark ViT-$name (arch $arch)"
  "$PY" tools/analysis/benchmark_pretrain.py --arch "$arch" "${bench[@]}" \
    ${batch:+--batch "$batch"} --out "$OUT/bench_$name.json" > "$OUT/bench_$name.log" 2>&1
done
log "short training through the switch and two refreshes"
rm -rf "$OUT/train"
FAMT_ALLOW_CPU=0 "$PY" tools/train.py configs/famt_mae_vit-t_demo.py --work-dir "$OUT/train" \
  "${train[@]}" > "$OUT/train.log" 2>&1 || { tail -n 30 "$OUT/train.log"; exit 1; }

# 4. one table
"$PY" - "$OUT" "$install" "$DRY" <<'EOF'
import json, os.path as osp, re, sys
import torch
out, install, dry = sys.argv[1], sys.argv[2], sys.argv[3] == '1'
card = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU (dry run)'
try:
    import mmcv
    import importlib.util
    ops = 'with ops' if importlib.util.find_spec('mmcv._ext') else 'no ops'
    mmcv_text = f'{mmcv.__version__} ({ops})'
except ImportError:
    mmcv_text = 'not installed'
log = open(osp.join(out, 'train.log')).read()
refreshes = re.findall(r'FAMT refresh before epoch (\d+): (\d+) images in [\d.]+s '
                       r'\(([\d.]+) img/s\).*?bank ([\d.]+) MiB', log)
amp_kept = 'AmpOptimWrapper -> OptimWrapper' not in log
rows = [('machine', f'{card}; torch {torch.__version__}; mmcv {mmcv_text}'),
        ('install', install)]
for name in ('b',) if dry else ('b', 'l'):
    r = json.load(open(osp.join(out, f'bench_{name}.json')))
    s = r['setup']
    rows.append((f"{s['arch_name']}, batch {s['batch']}, {s['precision']}",
                 f"FAMT {r['famt']['step']['median_s'] * 1e3:.0f} ms, MAE "
                 f"{r['mae']['step']['median_s'] * 1e3:.0f} ms per step: "
                 f"{r['ratios']['speedup']:.2f}x (FLOP ratio {r['ratios']['flop_ratio']:.2f}x); "
                 f"refresh {r['refresh']['images_per_s']:.0f} img/s; bank for ImageNet-1K "
                 f"{r['bank']['bytes_imagenet_1k']['float16'] / 2**20:.0f} MiB (float16)"))
train_ok = len(refreshes) == 2 and osp.isfile(osp.join(out, 'train', 'epoch_3.pth'))
rows.append(('training, ' + ('fp32 (dry run)' if dry else 'AMP'),
             ('ok' if train_ok and (amp_kept or dry) else 'FAIL') + ': refreshes before epochs '
             + ', '.join(f'{e} ({n} images, {v} img/s, bank {b} MiB)' for e, n, v, b in refreshes)
             + ('' if dry else '; AmpOptimWrapper kept' if amp_kept else '; AMP was dropped')))
print('\n| check | result |\n| --- | --- |')
for k, v in rows:
    print(f'| {k} | {v} |')
sys.exit(0 if train_ok and (amp_kept or dry) and not install.startswith('FAIL') else 1)
EOF
