#!/usr/bin/env bash
# Checks shared by the recipes' run.sh, sourced right after utils/parse_options.sh: no argument
# left over, die() for the recipe's own checks, and the options every recipe has (--stage,
# --stop_stage, --id).
[ $# -eq 0 ] || { echo "$0: ERROR: unexpected argument(s) '$*' (options are --name value; see --help)." >&2; exit 1; }
die() { echo "$0: ERROR: $*" >&2; exit 1; }
[[ "$stage" =~ ^[0-9]+$ ]] || die "--stage must be a number, got '$stage'."
[[ "$stop_stage" =~ ^[0-9]+$ ]] || die "--stop_stage must be a number, got '$stop_stage'."
[ -z "$id" ] || [[ "$id" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--id takes GPU ids such as 0 or 0,1, got '$id'."
