#!/usr/bin/env bash
# Kaldi-style command-line parser, sourced by a recipe *after* it has defined its options as
# shell variables with their default values:
#
#   stage=0; tag=""                       # every option is a variable that already exists
#   . utils/parse_options.sh              # "--stage 3 --tag x" then sets stage=3, tag=x
#
# Rules:
#   --name value  or  --name=value  sets the existing variable `name` (dashes in the name map
#                  to underscores: --stop-stage is --stop_stage);
#   an option whose variable is not defined is an error that lists the known options;
#   --help / -h prints the caller's $help_message (if any) and every option with its current
#                  value and its description, the comment after `name=value` in the calling
#                  script (continued on the following comment-only lines), then exits 0;
#   parsing stops at the first argument that is not an option (or after "--"); the remaining
#   arguments are left in "$@" for the caller.
# The caller lists its option names in $recipe_options (space separated) so that --help and the
# error message can show them; without it the error just names the unknown option.

_po_known="${recipe_options:-}"

_po_describe() {  # the comment of `name=value  # ...` in the calling script, with continuations
  awk -v name="$1" '
    found && /^[[:space:]]+#/ { sub(/^[[:space:]]+#[[:space:]]?/, ""); print "      " $0; next }
    found { exit }
    $0 ~ "^" name "=" && /#/ { sub(/^[^#]*#[[:space:]]?/, ""); print "      " $0; found = 1 }
  ' "$0"
}

_po_usage() {
  [ -z "${help_message:-}" ] || printf '%s\n' "$help_message"
  if [ -n "$_po_known" ]; then
    echo "Options (current values):"
    for _po_n in $_po_known; do
      printf '  --%-16s %s\n' "$_po_n" "${!_po_n-}"
      _po_describe "$_po_n"
    done
  fi
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help | -h) _po_usage; exit 0 ;;
    --) shift; break ;;
    --*=*) _po_name="${1%%=*}"; _po_value="${1#*=}"; shift ;;
    --*)
      _po_name="$1"
      [ $# -ge 2 ] || { echo "$0: ERROR: option '$1' needs a value (use --${1#--} \"\" for an empty one)." >&2; exit 1; }
      _po_value="$2"
      shift 2
      ;;
    *) break ;;
  esac
  _po_name="${_po_name#--}"
  _po_name="${_po_name//-/_}"
  [[ "$_po_name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "$0: ERROR: '--$_po_name' is not a valid option name." >&2; exit 1; }
  # Only variables the recipe defined are options: a typo must not silently create a new one.
  if [ -z "${!_po_name+defined}" ] || { [ -n "$_po_known" ] && ! [[ " $_po_known " == *" $_po_name "* ]]; }; then
    echo "$0: ERROR: unknown option '--$_po_name'." >&2
    [ -z "$_po_known" ] || echo "Known options: $(printf -- '--%s ' $_po_known)(and --help)." >&2
    exit 1
  fi
  printf -v "$_po_name" '%s' "$_po_value"
done

unset _po_name _po_value _po_n
true
