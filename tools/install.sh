#!/usr/bin/env bash
# Install the pinned OpenMMLab stack and famt_mm into the current Python.
#
#   bash tools/install.sh [--wheel-cache DIR] [--tests]
#
# Idempotent: when every pin is already satisfied (and mmcv has its compiled
# ops) it returns in seconds. mmcv 2.1.0 has no wheel for torch 2.14 on PyPI, so
# it is built from the PyPI source with the C++20 fix; a directory holding a
# matching wheel (--wheel-cache or $FAMT_WHEEL_CACHE) skips the ~10 min build,
# and every wheel built here is kept in $FAMT_CACHE_DIR for the next install.
# GPU users: see README "Installation" (CUDA torch + CUDA mmcv from OpenMMLab).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
WHEEL_CACHE="${FAMT_WHEEL_CACHE:-}"
CACHE_DIR="${FAMT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/famt_mm/wheels}"
WITH_TESTS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheel-cache) WHEEL_CACHE="$2"; shift 2 ;;
    --tests) WITH_TESTS=1; shift ;;
    -h|--help) sed -n 2,12p "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

log() { echo "[famt_mm install] $*"; }

# Print what is missing, one line each; nothing when the environment is complete.
missing() {
  "$PY" -I - "$ROOT" "$WITH_TESTS" <<'EOF'
import importlib.metadata as md, os, sys
root, with_tests = sys.argv[1], sys.argv[2] == '1'
def pins(name):
    out = []
    for line in open(os.path.join(root, 'requirements', name)):
        line = line.split('#')[0].strip()
        if line:
            out.append(line)
    return out
want = pins('torch.txt') + pins('mminstall.txt') + pins('runtime.txt')
want += pins('optional.txt')
if with_tests:
    want += pins('tests.txt')
from packaging.requirements import Requirement
for line in want:
    req = Requirement(line)
    try:
        have = md.version(req.name)
    except md.PackageNotFoundError:
        print(f'{line} (not installed)'); continue
    if req.specifier and not req.specifier.contains(have.split('+')[0], prereleases=True):
        print(f'{line} (have {have})')
try:
    import mmcv._ext  # noqa: F401  compiled ops
except Exception as e:  # noqa: BLE001
    print(f'mmcv compiled ops ({type(e).__name__}: {e})')
import importlib.util
spec = importlib.util.find_spec('famt_mm')  # run with -I: the checkout itself is not on sys.path
if spec is None or spec.origin is None:
    print('famt_mm (not installed)')
elif not os.path.realpath(spec.origin).startswith(os.path.realpath(root) + os.sep):
    print(f'famt_mm (installed from {os.path.dirname(spec.origin)}, not this checkout)')
EOF
}

todo="$(missing || true)"
if [ -z "$todo" ]; then
  log "environment complete, nothing to do"
  exit 0
fi
log "missing:"; echo "$todo" | sed 's/^/    /'

PIP=("$PY" -m pip install --disable-pip-version-check)
# mmcv's setup.py and mmengine's config loader need pkg_resources (gone in setuptools 81).
"${PIP[@]}" "setuptools>=77,<81" wheel
# Everything but mmcv first (mmengine brings mmcv's own dependencies); the OpenMMLab
# packages list mmcv only as an extra, so pip never tries to build it here.
reqs="$(mktemp)"
cat "$ROOT"/requirements/{torch,runtime,optional}.txt > "$reqs"
grep -v '^mmcv' "$ROOT/requirements/mminstall.txt" >> "$reqs"
[ "$WITH_TESTS" = 1 ] && cat "$ROOT/requirements/tests.txt" >> "$reqs"
"${PIP[@]}" -r "$reqs" "setuptools>=77,<81"
rm -f "$reqs"

have_ops() { "$PY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; }
install_mmcv_from() {  # never PyPI's sdist: that build lacks the C++20 fix
  "${PIP[@]}" --no-deps --force-reinstall --no-index --only-binary :all: --find-links "$1" mmcv==2.1.0
}
if ! have_ops; then
  mkdir -p "$CACHE_DIR"
  for dir in "$WHEEL_CACHE" "$CACHE_DIR"; do
    [ -n "$dir" ] && [ -d "$dir" ] || continue
    if ls "$dir"/mmcv-2.1.0-*.whl >/dev/null 2>&1; then
      log "trying mmcv wheel from $dir"
      install_mmcv_from "$dir" || true
      if have_ops; then break; else log "that wheel does not work here"; fi
    fi
  done
fi
if ! have_ops; then
  log "building mmcv 2.1.0 with compiled ops from source (about 10 minutes on 2 cores)"
  build="$(mktemp -d)"
  "$PY" -m pip download --disable-pip-version-check --no-deps --no-binary :all: mmcv==2.1.0 -d "$build"
  tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
  # torch >= 2.6 headers need C++20; mmcv 2.1.0 asks for C++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-2.1.0/setup.py"
  rm -f "$CACHE_DIR"/mmcv-2.1.0-*.whl
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "$PY" -m pip wheel --disable-pip-version-check \
    --no-build-isolation --no-deps -w "$CACHE_DIR" "$build/mmcv-2.1.0"
  install_mmcv_from "$CACHE_DIR"
  rm -rf "$build"
  have_ops || { echo "mmcv built but mmcv._ext does not import" >&2; exit 1; }
fi
"${PIP[@]}" --no-deps --no-build-isolation -e "$ROOT"

todo="$(missing || true)"
if [ -n "$todo" ]; then
  echo "install finished but still missing:" >&2; echo "$todo" >&2; exit 1
fi
log "done"
