#!/usr/bin/env bash
# Install what is missing (tools/install.sh --tests), then run the test suite.
#   bash tools/run_tests.sh [--wheel-cache DIR] [pytest args...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
install_args=(--tests)
if [ "${1:-}" = "--wheel-cache" ]; then install_args+=(--wheel-cache "$2"); shift 2; fi
bash "$ROOT/tools/install.sh" "${install_args[@]}"
cd "$ROOT"
exec "${PYTHON:-python}" -m pytest tests "$@"
