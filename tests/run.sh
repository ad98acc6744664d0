#!/usr/bin/env bash
# Run the test suite in the pinned environment (created on first use).
# Usage: ./tests/run.sh [pytest arguments]   e.g. ./tests/run.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/venv.sh
echo "[tests] Running pytest ${*:-(whole suite)}" >&2
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  # pytest's exit code 5 means no test was collected: for this suite that is a broken
  # selection or a missing test tree, never a success.
  echo "[tests] ERROR: pytest collected no tests (exit code 5)." >&2
  exit 1
fi
exit "$rc"
