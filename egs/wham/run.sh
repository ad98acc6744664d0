#!/usr/bin/env bash
# WHAM! recipe for latent iterative refinement models (Kaldi style, like Asteroid's recipes).
#
#   ./run.sh                                   # all stages on the embedded mini corpus (CPU)
#   ./run.sh --wham_dir /data/wham --conf conf/table1/1x4x4.yml --id 0,1
#   ./run.sh --stage 3 --tag mini_cpu_sep_noisy          # re-evaluate, no retraining
#   ./run.sh --set "training.epochs=2 optim.lr=5e-4" --tag short   # override hyper-parameters
#
# Stages: 0 data, 1 metadata, 2 training, 3 evaluation, 4 report. See README.md.
set -euo pipefail
cd "$(dirname "$0")"

stage=0            # first stage to run
stop_stage=4       # last stage to run
conf=""            # experiment configuration (default: conf/mini_cpu.yml without --wham_dir,
                   # conf/table1/1x4x4.yml with it)
task=sep_noisy     # sep_noisy (2 speakers + noise) or enh_single (speech + noise)
wham_dir=""        # real WHAM! root (or its wav8k/min); empty: the embedded mini corpus
tag=""             # experiment name: <exp_dir>/<tag> (default: <conf name>_<task>)
set=""             # configuration overrides "section.key=value ...", saved in the experiment's
                   # conf.yml; a changed configuration under an existing tag is refused
id=""              # GPU ids, e.g. 0,1 (several: DDP); empty: CPU
num_cpu_procs=0    # >= 2: DDP with that many CPU processes (when no --id)
n_workers=""       # data loader workers (default: training.num_workers of the configuration)
exp_dir=exp        # parent folder of the experiments
data_dir=data      # where the mini corpus and the metadata go
eval_set=""        # another WHAM!-layout corpus to evaluate on (stages 3-4; needs tt/)
max_utterances=""  # evaluate only the first N test mixtures (default: all)
extra_metrics=false  # true: stage 3 also computes STOI and PESQ (slow)
gate_budget=""     # gated model: stage 3 first sets its exit margin so that the validation
                   # mixtures take this many steps on average (default: the gate's own margin)
held_out=auto      # mini corpus: stage 3 also scores held-out eSpeak NG voices (auto: when
                   # eSpeak NG is installed; true: required; false: skip)

recipe_options="stage stop_stage conf task wham_dir tag set id num_cpu_procs n_workers exp_dir data_dir eval_set max_utterances extra_metrics gate_budget held_out"
help_message="Usage: $0 [--option value ...]
WHAM! recipe: 0 data, 1 metadata, 2 training, 3 evaluation, 4 report.
It runs in the repository's pinned environment (.venv, made on first use); set LIR_ENV=active
to run it in the Python environment that is active instead (one with asteroid_lir installed)."
. utils/parse_options.sh
. utils/check_options.sh

[[ "$num_cpu_procs" =~ ^[0-9]+$ ]] || die "--num_cpu_procs must be a number, got '$num_cpu_procs'."
case "$extra_metrics" in true | false) ;; *) die "--extra_metrics must be true or false, got '$extra_metrics'." ;; esac
case "$held_out" in auto | true | false) ;; *) die "--held_out must be auto, true or false, got '$held_out'." ;; esac
case "$task" in sep_noisy | enh_single) ;; *) die "--task must be sep_noisy or enh_single, got '$task'." ;; esac
[ -n "$conf" ] || { [ -z "$wham_dir" ] && conf=conf/mini_cpu.yml || conf=conf/table1/1x4x4.yml; }
[ -f "$conf" ] || die "configuration file '$conf' not found (see conf/ and README.md)."
[ -z "$wham_dir" ] || [ -d "$wham_dir" ] || die "--wham_dir '$wham_dir' is not a directory."
[ -z "$eval_set" ] || [ -d "$eval_set" ] || die "--eval_set '$eval_set' is not a directory."
[ -n "$tag" ] || tag="$(basename "$conf" .yml)_${task}"
expdir="$exp_dir/$tag"
overrides=()
for kv in $set; do overrides+=(--set "$kv"); done

. ./path.sh

prep() { python local/prepare_data.py "$@" --conf "$conf" --data_root "$data_dir" "${overrides[@]}"; }
# Corpus and metadata folders depend on the configuration (mini corpus sizes) and --wham_dir.
paths="$(prep paths --wham_dir "$wham_dir" --eval_set "$eval_set")"
wav_dir="$(sed -n 1p <<<"$paths")"
meta_dir="$(sed -n 2p <<<"$paths")"
echo "[run] conf=$conf task=$task tag=$tag stages $stage..$stop_stage"
echo "[run] corpus: $wav_dir; metadata: $meta_dir; experiment: $expdir"
in_stages() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if in_stages 0; then
  echo "[stage 0] Data: $( [ -n "$wham_dir" ] && echo "validating the WHAM! layout" || echo "embedded mini corpus" )"
  prep corpus --wham_dir "$wham_dir"
fi

if in_stages 1; then
  echo "[stage 1] Metadata -> $meta_dir"
  prep metadata --wham_dir "$wham_dir"
fi

if in_stages 2; then
  for f in tr.json cv.json; do
    [ -f "$meta_dir/$f" ] || die "metadata $meta_dir/$f is missing: run stage 1 first (--stage 1)."
  done
  echo "[stage 2] Training -> $expdir (checkpoints/, logs/, best_model.pth)"
  workers=()
  [ -z "$n_workers" ] || workers=(--n_workers "$n_workers")
  python train.py --conf "$conf" --task "$task" --meta_dir "$meta_dir" --exp_dir "$expdir" \
    --gpus "$id" --num_cpu_procs "$num_cpu_procs" "${workers[@]}" "${overrides[@]}"
fi

evaluate() {  # evaluate METADATA_DIR RESULTS_DIR
  [ -f "$1/tt.json" ] || die "test metadata $1/tt.json is missing: run stage 1 first (--stage 1)."
  echo "[stage 3] Evaluation -> $2/results.json, results.md, examples/"
  local extra=()
  [ -z "$max_utterances" ] || extra=(--max_utterances "$max_utterances")
  [ "$extra_metrics" = false ] || extra+=(--extra_metrics)
  [ -z "$gate_budget" ] || extra+=(--gate_budget "$gate_budget" --valid_dir "$meta_dir")
  python eval.py --exp_dir "$expdir" --meta_dir "$1" --task "$task" --out_dir "$2" \
    --gpus "${id%%,*}" "${extra[@]}"
}

# Evaluation on the recipe's test split, or on another WHAM!-layout corpus (--eval_set).
results_dir="$expdir"
[ -z "$eval_set" ] || results_dir="$expdir/eval_$(sed -n 4p <<<"$paths")"
if in_stages 3; then
  [ -f "$expdir/best_model.pth" ] || die "no trained model $expdir/best_model.pth: run stage 2 first (--stage 2)."
  if [ -n "$eval_set" ]; then
    echo "[stage 3] Metadata of the evaluation set $eval_set"
    prep eval_set --eval_set "$eval_set"
    evaluate "$(sed -n 3p <<<"$paths")" "$results_dir"
  else
    evaluate "$meta_dir" "$results_dir"
  fi
  # On the mini corpus, also the speech it never heard: eSpeak NG voices it never uses.
  if [ -z "$wham_dir$eval_set" ] && [ "$held_out" != false ] && [ "$task" = sep_noisy ]; then
    held_dir="$(prep held_out --held_out "$held_out")"
    if [ -n "$held_dir" ]; then
      held_paths="$(prep paths --eval_set "$held_dir")"
      prep eval_set --eval_set "$held_dir"
      evaluate "$(sed -n 3p <<<"$held_paths")" "$expdir/eval_$(sed -n 4p <<<"$held_paths")"
    fi
  fi
fi

if in_stages 4; then
  [ -f "$results_dir/results.json" ] || die "$results_dir/results.json is missing: run stage 3 first (--stage 3)."
  echo "[stage 4] Report -> $results_dir/*.png, $results_dir/results.md"
  python report.py --exp_dir "$expdir" --results_dir "$results_dir"
fi
echo "[run] Done (stages $stage..$stop_stage) in $((SECONDS / 60)) min $((SECONDS % 60)) s." \
  "Results: $results_dir/results.md"
