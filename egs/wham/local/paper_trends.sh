#!/usr/bin/env bash
# The paper's three claims at small scale (Table 1, Table 2, Fig. 5): train every entry of the
# grid (local/paper_trends.py GRID, configurations in conf/trends/) through run.sh under the
# same wall-time budget, evaluate it, measure its compute and training memory, and write
# <exp_root>/report.md, report.json and plots.
#
#   ./local/paper_trends.sh                                  # mini corpus, CPU, 8 min per model
#   ./local/paper_trends.sh --budget_minutes 4 --parallel 2  # two trainings at once, 1 thread each
#   ./local/paper_trends.sh --wham_dir /data/wham --id 0 --budget_minutes 120
#
# Re-running continues: a trained entry is not retrained (run.sh stage 2 skips it), an evaluated
# one is not re-evaluated; delete <exp_root>/<tag> to redo one. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

budget_minutes=8   # training wall time of every model (a gated model: both phases together)
parallel=1         # 2: train two entries at once, each with half the CPU threads
wham_dir=""        # real WHAM! (see run.sh); empty: the embedded mini corpus
task=sep_noisy
id=""              # GPU id (run.sh --id); empty: CPU
exp_root=exp/paper_trends
data_dir=data
max_utterances=""  # evaluate only the first N test mixtures
wait_file=""       # while this file exists, wait before starting an entry (shared machines)
notes=""           # Markdown file added to the report (e.g. the gate investigation)
only=""            # comma-separated tags: run only these entries (the report uses every one found)

recipe_options="budget_minutes parallel wham_dir task id exp_root data_dir max_utterances wait_file notes only"
help_message="Usage: $0 [--option value ...]
Trains, evaluates and measures the paper-trends grid, then writes \$exp_root/report.md."
. utils/parse_options.sh
[ $# -eq 0 ] || { echo "$0: ERROR: unexpected argument(s) '$*'." >&2; exit 1; }
die() { echo "$0: ERROR: $*" >&2; exit 1; }
[[ "$budget_minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--budget_minutes must be a number, got '$budget_minutes'."
case "$parallel" in 1 | 2) ;; *) die "--parallel must be 1 or 2, got '$parallel'." ;; esac

. ./path.sh
start=$SECONDS
command_line="$0 --budget_minutes $budget_minutes --parallel $parallel"
if [ -n "$wham_dir" ]; then command_line+=" --wham_dir $wham_dir"; fi
if [ -n "$id" ]; then command_line+=" --id $id"; fi
cpus=$(nproc)
threads=$(( cpus / parallel )); [ "$threads" -ge 1 ] || threads=1
mkdir -p "$exp_root/confs" "$exp_root/logs"
wham_opt=(); [ -n "$wham_dir" ] && wham_opt=(--wham_dir "$wham_dir")
gpu_opt=(); [ -n "$id" ] && gpu_opt=(--id "$id")
eval_opt=(); [ -n "$max_utterances" ] && eval_opt=(--max_utterances "$max_utterances")
notes_opt=(); [ -n "$notes" ] && notes_opt=(--notes "$notes")

wait_for_machine() {
  if [ -n "$wait_file" ]; then
    while [ -e "$wait_file" ]; do echo "[trends] $wait_file exists: waiting"; sleep 30; done
  fi
}

# Data and metadata once (every trends configuration uses the corpus of conf/trends/base.yml).
./run.sh --stage 0 --stop_stage 1 --conf conf/trends/base.yml --task "$task" \
  --data_dir "$data_dir" "${wham_opt[@]}"

meta_dir="$(python local/prepare_data.py paths --conf conf/trends/base.yml --data_root "$data_dir" \
  --wham_dir "$wham_dir" --eval_set "" | sed -n 2p)"

# One entry: its configuration (the budget written in), training + evaluation, measurements.
run_entry() {
  local tag=$1 conf="$exp_root/confs/$1.yml" log="$exp_root/logs/$1.log"
  {
    [ -f "$conf" ] || OMP_NUM_THREADS=$threads python local/paper_trends.py write-conf \
      --tag "$tag" --budget_minutes "$budget_minutes" --out "$conf" --threads "$threads"
    if [ ! -f "$exp_root/$tag/results.json" ]; then
      OMP_NUM_THREADS=$threads ./run.sh --stage 2 --stop_stage 3 --conf "$conf" --task "$task" \
        --tag "$tag" --exp_dir "$exp_root" --data_dir "$data_dir" "${wham_opt[@]}" \
        "${gpu_opt[@]}" "${eval_opt[@]}"
    fi
    OMP_NUM_THREADS=$threads python local/paper_trends.py measure --exp_dir "$exp_root/$tag" \
      --meta_dir "$meta_dir" --task "$task"
  } >"$log" 2>&1 || { echo "[trends] $tag FAILED (see $log)"; return 1; }
  echo "[trends] $tag done ($(python -c "import json,sys; s=json.load(open(sys.argv[1]))['summary']; print(f\"SI-SDRi {s['si_sdri']:.2f} dB\")" "$exp_root/$tag/results.json"))"
}

mapfile -t tags < <(python local/paper_trends.py grid | cut -d' ' -f1)
if [ -n "$only" ]; then IFS=, read -r -a tags <<<"$only"; fi
failed=0
for ((i = 0; i < ${#tags[@]}; i += parallel)); do
  wait_for_machine
  batch=("${tags[@]:i:parallel}")
  echo "[trends] $(date +%H:%M:%S) training ${batch[*]} ($threads thread(s) each, $budget_minutes min)"
  pids=()
  for tag in "${batch[@]}"; do run_entry "$tag" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
done

wall=$((SECONDS - start))
machine="$cpus-core CPU ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1))"
[ -z "$id" ] || machine="GPU $id ($(nvidia-smi --query-gpu=name --format=csv,noheader -i "${id%%,*}" 2>/dev/null))"
python local/paper_trends.py report --root "$exp_root" --command "$command_line" \
  --wall_seconds "$wall" --machine "$machine" --budget_minutes "$budget_minutes" \
  --parallel "$parallel" --threads "$threads" "${notes_opt[@]}"
echo "[trends] Done in $((wall / 60)) min $((wall % 60)) s: $exp_root/report.md"
exit $failed
