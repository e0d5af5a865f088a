#!/usr/bin/env bash
# Install what famt_mm needs into the current Python, keeping what is already there.
#
#   bash tools/install.sh [--with-ops] [--tests] [--wheel-cache DIR]
#
# torch:  an installed torch (2.1 or newer) is kept exactly as it is, never up- or
#         downgraded (pip runs with it pinned); only where there is no torch does the
#         pinned torch/torchvision of requirements/torch.txt go in.
# mmcv:   a working mmcv 2.x is kept. Otherwise pre-training needs only mmcv's Python
#         part: mmcv-lite 2.1.0 (a pure-Python wheel; nothing is compiled).
# --with-ops (or FAMT_WITH_OPS=1): mmcv 2.1.0 with its compiled ops, which the mmdet /
#         mmseg transfer needs: from a matching wheel in --wheel-cache DIR
#         ($FAMT_WHEEL_CACHE) or $FAMT_CACHE_DIR, else built from the PyPI source (about
#         10 minutes on 2 cores; FORCE_CUDA=1 builds the CUDA ops, needs nvcc).
# --tests: also pytest, and the ops (the suite runs the transfer).
# Idempotent: when nothing is missing it returns in seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
WHEEL_CACHE="${FAMT_WHEEL_CACHE:-}"
CACHE_DIR="${FAMT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/famt_mm/wheels}"
WITH_OPS="${FAMT_WITH_OPS:-0}"
WITH_TESTS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheel-cache) WHEEL_CACHE="$2"; shift 2 ;;
    --with-ops) WITH_OPS=1; shift ;;
    --tests) WITH_TESTS=1; WITH_OPS=1; shift ;;
    -h|--help) sed -n 2,17p "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

log() { echo "[famt_mm install] $*"; }
die() { echo "[famt_mm install] ERROR: $*" >&2; exit 1; }

check_args=(missing "$ROOT")
[ "$WITH_OPS" = 1 ] && check_args+=(--with-ops)
[ "$WITH_TESTS" = 1 ] && check_args+=(--tests)
# A failing check stops the install (set -e): it never reads as "nothing missing".
missing() { "$PY" -I "$ROOT/tools/install_check.py" "${check_args[@]}"; }

todo="$(missing)"
if [ -z "$todo" ]; then
  log "environment complete, nothing to do"
  exit 0
fi
log "missing:"; echo "$todo" | cut -f2- | sed 's/^/    /'
if grep -q -e '^torch-unsupported' -e '^mmcv-unsupported' <<< "$todo"; then
  die "$(grep -e '^torch-unsupported' -e '^mmcv-unsupported' <<< "$todo" | cut -f2-)"
fi

PIP=("$PY" -m pip install --disable-pip-version-check)
torch_before="$("$PY" -I -c 'import importlib.metadata as m; print(m.version("torch"))' \
  2>/dev/null || true)"
cons="$(mktemp)"
trap 'rm -f "$cons"' EXIT
if [ -z "$torch_before" ]; then
  log "no torch here: installing the pinned $(tr '\n' ' ' < "$ROOT/requirements/torch.txt")"
  "${PIP[@]}" -r "$ROOT/requirements/torch.txt"
  # requirements/torch.txt's pins are from 2.4 on: NumPy 2 is fine with them.
else
  log "keeping the installed torch $torch_before"
fi
"$PY" -I "$ROOT/tools/install_check.py" constraints > "$cons"
log "pip runs with: $(tr '\n' ' ' < "$cons")"

# mmcv's setup.py and mmengine's config loader need pkg_resources (gone in setuptools 81).
"${PIP[@]}" -c "$cons" "setuptools>=77,<81" wheel
# What install_check.py found missing, by module: a module some other distribution
# installed (onedl-mmengine for mmengine, ...) counts and is never installed a second time;
# a missing OpenMMLab module comes from the family of the installed mmengine. mmcv is
# handled below (the OpenMMLab packages list it only as an extra, so pip never builds it).
reqs="$(mktemp)"
{
  "$PY" -I -c 'import torchvision' >/dev/null 2>&1 || echo torchvision
  missing | awk -F'\t' '$1 == "pip" {split($2, w, " "); print w[1]}'
} > "$reqs"
if [ -s "$reqs" ]; then
  log "pip installs: $(tr '\n' ' ' < "$reqs")"
  "${PIP[@]}" -c "$cons" -r "$reqs"
fi
rm -f "$reqs"

# mmcv: keep a working one; else its Python part, or (asked for) the compiled ops.
mmcv_probe() { "$PY" -I -c "import mmcv$1" >/dev/null 2>&1; }
have_ops() { "$PY" -I -c "import mmcv, mmcv._ext" >/dev/null 2>&1; }
install_ops_wheel() {  # never PyPI's sdist: that build lacks the C++20 fix
  "$PY" -m pip uninstall -y mmcv-lite >/dev/null 2>&1 || true  # both own the mmcv/ folder
  "${PIP[@]}" -c "$cons" --no-deps --force-reinstall --no-index --only-binary :all: \
    --find-links "$1" mmcv==2.1.0
}
if [ "$WITH_OPS" != 1 ]; then
  if mmcv_probe ""; then
    log "keeping the installed mmcv $("$PY" -I -c 'import mmcv; print(mmcv.__version__)')"
  else
    log "mmcv: its Python part (mmcv-lite 2.1.0), no compiled ops"
    "${PIP[@]}" -c "$cons" --no-deps mmcv-lite==2.1.0
  fi
elif ! have_ops; then
  user_mmcv="$("$PY" -I "$ROOT/tools/install_check.py" owner mmcv)"  # "DIST VERSION"
  if [ -n "$user_mmcv" ] && [ "$user_mmcv" != "mmcv 2.1.0" ] \
      && [ "${user_mmcv%% *}" != mmcv-lite ]; then
    die "$user_mmcv (module mmcv) without compiled ops is installed and install.sh keeps an" \
      "installed mmcv: build its ops yourself, or \`pip uninstall ${user_mmcv%% *}\` and run" \
      "this again"
  fi
  mkdir -p "$CACHE_DIR"
  for dir in "$WHEEL_CACHE" "$CACHE_DIR"; do
    [ -n "$dir" ] && [ -d "$dir" ] || continue
    if ls "$dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
      log "trying the mmcv wheel in $dir"
      install_ops_wheel "$dir" || true
      if have_ops; then break; else log "that wheel does not work with this torch"; fi
    fi
  done
  if ! have_ops; then
    log "building mmcv 2.1.0 with compiled ops from source (about 10 minutes on 2 cores)"
    build="$(mktemp -d)"
    "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
      mmcv==2.1.0 -d "$build"
    tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
    # torch >= 2.6 headers need C++20; mmcv 2.1.0 asks for C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-2.1.0/setup.py"
    rm -f "$CACHE_DIR"/mmcv-2.1.0-*.whl
    MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "$PY" -m pip wheel --disable-pip-version-check \
      --no-build-isolation --no-deps -w "$CACHE_DIR" "$build/mmcv-2.1.0"
    install_ops_wheel "$CACHE_DIR"
    rm -rf "$build"
    have_ops || die "mmcv built but mmcv._ext does not import"
  fi
fi
"${PIP[@]}" -c "$cons" --no-deps --no-build-isolation -e "$ROOT"

torch_after="$("$PY" -I -c 'import importlib.metadata as m; print(m.version("torch"))')"
if [ -n "$torch_before" ] && [ "$torch_after" != "$torch_before" ]; then
  die "torch changed from $torch_before to $torch_after: this is a bug of install.sh"
fi
todo="$(missing)"
[ -z "$todo" ] || die "install finished but still missing:"$'\n'"$(echo "$todo" | cut -f2-)"
ops="without compiled ops (enough for pre-training; --with-ops for the transfer)"
have_ops && ops="with compiled ops"
log "done: torch $torch_after, mmcv $("$PY" -I -c 'import mmcv; print(mmcv.__version__)') $ops"
