#!/usr/bin/env bash
# Checks shared by the recipes' scripts (run.sh, utils/run_grid.sh), sourced right after
# utils/parse_options.sh: no argument left over, die() for the script's own checks, and the
# options of a recipe's run.sh (--stage, --stop_stage, --id) where the script has them.
[ $# -eq 0 ] || { echo "$0: ERROR: unexpected argument(s) '$*' (options are --name value; see --help)." >&2; exit 1; }
die() { echo "$0: ERROR: $*" >&2; exit 1; }
[ -z "${stage+set}" ] || [[ "$stage" =~ ^[0-9]+$ ]] || die "--stage must be a number, got '$stage'."
[ -z "${stop_stage+set}" ] || [[ "$stop_stage" =~ ^[0-9]+$ ]] || die "--stop_stage must be a number, got '$stop_stage'."
[ -z "${id:-}" ] || [[ "$id" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--id takes GPU ids such as 0 or 0,1, got '$id'."
