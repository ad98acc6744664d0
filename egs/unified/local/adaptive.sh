#!/usr/bin/env bash
# Adaptive TUSS (issue 26): the gated model (conf/tuss_gated_cpu.yml: pre-training without the
# gate, then network and per-prompt gate jointly) against its ungated network
# (conf/tuss_iter_cpu.yml: the same TSE block x 4 iterations) at equal training steps, for
# several seeds; both are evaluated with the TSE GMACs counted and the anytime curve, then
# compared in <exp_dir>/<prefix>_summary.md (and .json, _quality_vs_compute.png).
#
#   ./local/adaptive.sh                                   # seeds 0 1 2, one training at a time
#   ./local/adaptive.sh --parallel 2                      # two trainings at once (1 thread each)
#   ./local/adaptive.sh --seeds "0" --set "gated.lambda=0.3" --prefix lambda03
#
# Re-running continues: run.sh skips a finished training and this script an evaluated one
# (delete <exp_dir>/<tag>/results.json to re-evaluate). Run from anywhere.
set -euo pipefail
# An absolute $0: --help reads the option comments from this file after the cd below.
case "$0" in /*) ;; *) exec "$(cd "$(dirname "$0")" && pwd)/$(basename "$0")" "$@" ;; esac
cd "$(dirname "$0")/.."

seeds="0 1 2"                        # training seeds (training.seed)
parallel=1                           # trainings at once (each uses training.num_threads threads)
prefix=adaptive                      # experiment tags: <prefix>_{ungated,gated}_s<seed>
ungated_conf=conf/tuss_iter_cpu.yml  # the ungated network
gated_conf=conf/tuss_gated_cpu.yml   # the gated model (same steps in all)
set=""                               # extra overrides for both, "section.key=value ..."
exp_dir=exp
data_dir=data
source_dir=""                        # real sources (see README.md); empty: embedded corpus

recipe_options="seeds parallel prefix ungated_conf gated_conf set exp_dir data_dir source_dir"
help_message="Usage: $0 [--option value ...]
Trains and evaluates gated and ungated TUSS for every seed, then writes the comparison."
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: ERROR: unexpected argument(s) '$*'." >&2; exit 1; }
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || { echo "$0: ERROR: --parallel must be >= 1." >&2; exit 1; }

. ./path.sh
start=$SECONDS
common=(--exp_dir "$exp_dir" --data_dir "$data_dir" --source_dir "$source_dir")
./run.sh --stage 0 --stop_stage 1 --conf "$gated_conf" "${common[@]}"  # the corpus, once
mkdir -p "$exp_dir/logs"

run_one() {  # kind conf seed
  local tag="${prefix}_$1_s$3"
  if [ -f "$exp_dir/$tag/results.json" ]; then echo "[adaptive] $tag: evaluated already"; return; fi
  echo "[adaptive] $(date +%H:%M:%S) $tag: training and evaluation (log $exp_dir/logs/$tag.log)"
  ./run.sh --stage 2 --stop_stage 3 --conf "$2" --tag "$tag" "${common[@]}" \
    --set "training.seed=$3 $set" >"$exp_dir/logs/$tag.log" 2>&1 \
    || { echo "[adaptive] $tag FAILED (see $exp_dir/logs/$tag.log)"; return 1; }
  echo "[adaptive] $(date +%H:%M:%S) $tag: done"
}

jobs_list=()
for seed in $seeds; do
  jobs_list+=("ungated $ungated_conf $seed" "gated $gated_conf $seed")
done
failed=0
for ((i = 0; i < ${#jobs_list[@]}; i += parallel)); do
  pids=()
  for job in "${jobs_list[@]:i:parallel}"; do
    # shellcheck disable=SC2086
    run_one $job & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
done
[ "$failed" -eq 0 ] || { echo "$0: ERROR: some runs failed (see $exp_dir/logs/)." >&2; exit 1; }

for seed in $seeds; do  # each gated model's report, with its ungated network's curve on it
  python report.py --exp_dir "$exp_dir/${prefix}_gated_s$seed" \
    --compare "$exp_dir/${prefix}_ungated_s$seed" >/dev/null
done
# shellcheck disable=SC2086
python local/adaptive_summary.py --exp_dir "$exp_dir" --prefix "$prefix" --seeds $seeds
echo "[adaptive] Done in $(((SECONDS - start) / 60)) min: $exp_dir/${prefix}_summary.md"
