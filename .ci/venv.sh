#!/usr/bin/env bash
# Create (or reuse) the pinned virtual environment of the repository and activate it.
# Sourced by the README commands (egs/*/run.sh, tests/run.sh) and by CI, so that every entry
# point runs in the same environment: the pins live in .ci/requirements.lock alone.
#
# Usage: source .ci/venv.sh      (from anywhere; the venv is <repo>/.venv unless LIR_VENV is set)
_lir_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_lir_venv="${LIR_VENV:-$_lir_root/.venv}"
_lir_lock="$_lir_root/.ci/requirements.lock"
_lir_stamp="$_lir_venv/.asteroid_lir_lock.sha256"
_lir_want="$( (cat "$_lir_lock" "$_lir_root/setup.cfg") | sha256sum | cut -d' ' -f1)"

if [ ! -f "$_lir_stamp" ] || [ "$(cat "$_lir_stamp")" != "$_lir_want" ]; then
  echo "[venv] Setting up the pinned environment in $_lir_venv (first run: about 2-3 minutes)..." >&2
  _lir_py="${PYTHON:-python3.11}"
  command -v "$_lir_py" >/dev/null 2>&1 || _lir_py=python3
  if ! "$_lir_py" -c 'import sys; assert sys.version_info[:2] >= (3, 10)' 2>/dev/null; then
    echo "[venv] ERROR: Python >= 3.10 is required (found: $("$_lir_py" --version 2>&1))." >&2
    return 1 2>/dev/null || exit 1
  fi
  if [ ! -x "$_lir_venv/bin/python" ]; then
    "$_lir_py" -m venv "$_lir_venv" || { echo "[venv] ERROR: could not create $_lir_venv" >&2; return 1 2>/dev/null || exit 1; }
  fi
  # Install the locked set first (pip is told not to resolve anything else), then the package
  # itself in editable mode without dependencies, so that nothing outside the lock sneaks in.
  "$_lir_venv/bin/python" -m pip install -qq --disable-pip-version-check "setuptools==80.10.2" wheel \
    && "$_lir_venv/bin/python" -m pip install -qq --disable-pip-version-check --no-deps -r "$_lir_lock" \
    && "$_lir_venv/bin/python" -m pip install -qq --disable-pip-version-check --no-deps --no-build-isolation -e "$_lir_root" \
    || { echo "[venv] ERROR: installing the pinned environment failed (see pip's message above)." >&2; return 1 2>/dev/null || exit 1; }
  "$_lir_venv/bin/python" -c "import asteroid, torchaudio, asteroid_lir" \
    || { echo "[venv] ERROR: the environment installed but 'import asteroid, torchaudio, asteroid_lir' fails." >&2; return 1 2>/dev/null || exit 1; }
  echo "$_lir_want" > "$_lir_stamp"
  echo "[venv] Environment ready." >&2
fi
# shellcheck disable=SC1091
source "$_lir_venv/bin/activate"
unset _lir_root _lir_venv _lir_lock _lir_stamp _lir_want _lir_py
