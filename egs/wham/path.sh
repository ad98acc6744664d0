#!/usr/bin/env bash
# Environment of the recipe: creates (first run) or activates the repository's pinned virtual
# environment, so that `./run.sh` works on a fresh clone with no manual setup.
_wham_recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091
source "$_wham_recipe_dir/../../.ci/venv.sh"
unset _wham_recipe_dir
# Progress bars and stage messages appear in order when the output is piped to a log file.
export PYTHONUNBUFFERED=1
# asteroid 0.7.0's torchmetrics imports pkg_resources, which warns on every start: not ours to fix.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore:pkg_resources is deprecated:UserWarning}"
