#!/usr/bin/env bash
# Train and evaluate every run of an experiment grid (configurations x seeds, every model at the
# same number of training steps; see asteroid_lir/experiment/grid.py), then write the recipe's
# claims report (local/claims.py). Shared by the recipes (utils/ is linked); run from a recipe:
#
#   utils/run_grid.sh --grid conf/grids/paper.yml                    # mini corpus, CPU
#   utils/run_grid.sh --grid conf/grids/paper.yml --jobs 2           # two runs at a time
#   utils/run_grid.sh --grid conf/grids/paper.yml --steps 20000 -- --wham_dir /data/wham --id 0
#   utils/run_grid.sh --grid conf/grids/paper.yml --entries enh_1x1x4,enh_gated_1x1x4  # a subset
#
# Arguments after "--" go to every ./run.sh call, after the grid's own (its run_args).
# Re-running continues: run.sh skips a finished training and an interrupted one resumes from
# its last checkpoint; an evaluated run is not evaluated again. Delete <exp_root>/<tag> to redo one.
set -euo pipefail
cd "$(dirname "$0")/.."   # the recipe folder (utils/ is one of its entries)

grid=""            # grid file (YAML): steps, seeds, entries
exp_root=""        # where the runs go (default: exp/grid_<grid name>)
jobs=1             # runs at a time (each with the grid's thread count)
steps=""           # override the grid's training steps of every model
seeds=""           # override its seeds, comma separated (e.g. 0,1,2)
entries=""         # run only these entries, in this order, comma separated (default: all)
measure=true       # after each run: local/claims.py measure (compute, memory, anytime scores)
report_dir=""      # where the report goes (default: <exp_root>)

command_line="$0 $*"
recipe_options="grid exp_root jobs steps seeds entries measure report_dir"
help_message="Usage: $0 --grid FILE [--option value ...] [-- run.sh options]
Trains, evaluates and measures every run of a grid, then writes <exp_root>/report.md."
run_args=()
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--" ]; then run_args=("${@:i+1}"); set -- "${@:1:i-1}"; break; fi
done
. utils/parse_options.sh
. utils/check_options.sh
[ -f "$grid" ] || die "--grid '$grid' is not a file (see conf/grids/)."
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, got '$jobs'."
case "$measure" in true | false) ;; *) die "--measure must be true or false, got '$measure'." ;; esac
[ -n "$exp_root" ] || exp_root="exp/grid_$(basename "$grid" .yml)"
[ -n "$report_dir" ] || report_dir="$exp_root"

. ./path.sh
start=$SECONDS
mkdir -p "$exp_root/logs"
effective="$exp_root/grid.yml"   # the grid as run (steps/seeds overrides applied)
python - "$grid" "$effective" "$steps" "$seeds" "$entries" <<'EOF' || die "cannot use the grid $grid."
import sys, yaml
src, out, steps, seeds, entries = sys.argv[1:]
grid = yaml.safe_load(open(src))
if steps:
    grid["steps"] = int(steps)
if seeds:
    grid["seeds"] = [int(s) for s in seeds.split(",")]
if entries:
    unknown = [e for e in entries.split(",") if e not in grid["entries"]]
    if unknown:
        sys.exit(f"--entries: {unknown} not in {src} (entries: {list(grid['entries'])})")
    grid["entries"] = {e: grid["entries"][e] for e in entries.split(",")}
yaml.safe_dump(grid, open(out, "w"), sort_keys=False)
EOF
mapfile -t grid_args < <(python -c 'import sys, yaml
for arg in yaml.safe_load(open(sys.argv[1])).get("run_args", []): print(arg)' "$effective")
run_args=("${grid_args[@]}" "${run_args[@]}")
mapfile -t runs < <(python -m asteroid_lir.experiment.grid runs "$effective")
[ "${#runs[@]}" -gt 0 ] || die "the grid $grid has no runs."

# Data and metadata once, with the first run's configuration and options.
IFS=$'\t' read -r _ first_conf first_set first_args <<<"${runs[0]}"
read -r -a first_args <<<"$first_args"
./run.sh --stop_stage 1 --conf "$first_conf" --set "$first_set" "${first_args[@]}" "${run_args[@]}"

run_one() {  # tag conf overrides run.sh-options
  local tag=$1 conf=$2 set=$3 log="$exp_root/logs/$1.log" own
  read -r -a own <<<"$4"
  {
    if [ ! -f "$exp_root/$tag/results.json" ]; then
      ./run.sh --stage 2 --stop_stage 3 --conf "$conf" --tag "$tag" --exp_dir "$exp_root" \
        --set "$set" "${own[@]}" "${run_args[@]}"
    fi
    if [ "$measure" = true ] && [ ! -f "$exp_root/$tag/measure.json" ]; then
      python local/claims.py measure --exp_dir "$exp_root/$tag"
    fi
  } >"$log" 2>&1 || { echo "[grid] $tag FAILED (see $log)"; return 1; }
  echo "[grid] $(date +%H:%M:%S) $tag done"
}

echo "[grid] ${#runs[@]} runs of $grid, $jobs at a time -> $exp_root"
failed=0
running=0
for line in "${runs[@]}"; do
  IFS=$'\t' read -r tag conf set args <<<"$line"
  run_one "$tag" "$conf" "$set" "$args" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n || failed=1; running=$((running - 1)); fi
done
while [ "$running" -gt 0 ]; do wait -n || failed=1; running=$((running - 1)); done

wall=$((SECONDS - start))
machine="$(nproc)-core CPU ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1))"
python local/claims.py report --grid "$effective" --root "$exp_root" --out_dir "$report_dir" \
  --command "$command_line" --wall_seconds "$wall" --machine "$machine" --jobs "$jobs"
echo "[grid] Done in $((wall / 60)) min $((wall % 60)) s: $report_dir/report.md"
exit $failed
