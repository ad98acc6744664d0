#!/usr/bin/env bash
# Environment of a recipe: the repository's pinned virtual environment, created on first use
# (.ci/venv.sh), so that ./run.sh works on a fresh clone with no manual setup. With LIR_ENV=active
# the Python environment that is active is used instead (one where asteroid_lir is installed,
# e.g. with a GPU build of torch). Either way this checkout comes first on PYTHONPATH, so the
# recipe runs the library of its own checkout.
_lir_recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_lir_checkout="$(cd "$_lir_recipe_dir/../.." && pwd)"
if [ "${LIR_ENV:-}" = active ]; then
  python -c "import asteroid_lir" 2>/dev/null || {
    echo "LIR_ENV=active, but the active python ($(command -v python)) cannot import asteroid_lir:" \
      "install it there (pip install -e '$_lir_checkout[synth]'), or unset LIR_ENV." >&2
    exit 1
  }
else
  # shellcheck disable=SC1091
  source "$_lir_checkout/.ci/venv.sh"
fi
export PYTHONPATH="$_lir_checkout${PYTHONPATH:+:$PYTHONPATH}"
unset _lir_recipe_dir _lir_checkout
# Progress bars and stage messages appear in order when the output is piped to a log file.
export PYTHONUNBUFFERED=1
# asteroid 0.7.0's torchmetrics imports pkg_resources, which warns on every start: not ours to fix.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore:pkg_resources is deprecated:UserWarning}"
