#!/usr/bin/env bash
# Environment of the recipe: creates (first run) or activates the repository's pinned virtual
# environment, and puts this checkout first on PYTHONPATH so that the recipe always runs the
# library of its own checkout (also when the environment is shared through LIR_VENV).
_unified_recipe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091
source "$_unified_recipe_dir/../../.ci/venv.sh"
export PYTHONPATH="$(cd "$_unified_recipe_dir/../.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
unset _unified_recipe_dir
export PYTHONUNBUFFERED=1
# asteroid 0.7.0's torchmetrics imports pkg_resources, which warns on every start.
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore:pkg_resources is deprecated:UserWarning}"
