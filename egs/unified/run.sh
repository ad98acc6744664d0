#!/usr/bin/env bash
# Unified source separation recipe (TUSS, prompts) in Kaldi style, like Asteroid's recipes.
#
#   ./run.sh                                           # all stages, embedded corpus, CPU
#   ./run.sh --conf conf/baseline_cpu.yml              # the unconditional baseline, same budget
#   ./run.sh --source_dir /data/classes --conf conf/tuss_medium.yml --id 0
#   ./run.sh --stage 3 --tag tuss_cpu                  # re-evaluate, no retraining
#   ./run.sh --set "training.epochs=10" --tag tuss_short   # override hyper-parameters
#
# Stages: 0 data, 1 metadata, 2 training, 3 evaluation, 4 report. See README.md.
set -euo pipefail
cd "$(dirname "$0")"

stage=0            # first stage to run
stop_stage=4       # last stage to run
conf=conf/tuss_cpu.yml   # experiment configuration
source_dir=""      # real sources, one folder per class (see README.md); empty: embedded corpus
tag=""             # experiment name: <exp_dir>/<tag> (default: the configuration's name)
set=""             # configuration overrides "section.key=value ...", saved in the experiment's
                   # conf.yml; a changed configuration under an existing tag is refused
id=""              # GPU ids, e.g. 0 or 0,1 (several: DDP); empty: CPU
n_workers=""       # data loader workers (default: training.num_workers of the configuration)
exp_dir=exp        # parent folder of the experiments
data_dir=data      # where the embedded corpus and the metadata go
compare=""         # other experiment folder(s) to compare with in the report (comma separated)

recipe_options="stage stop_stage conf source_dir tag set id n_workers exp_dir data_dir compare"
help_message="Usage: $0 [--option value ...]
Unified (TUSS) recipe: 0 data, 1 metadata, 2 training, 3 evaluation, 4 report.
It runs in the repository's pinned environment (.venv, made on first use); set LIR_ENV=active
to run it in the Python environment that is active instead (one with asteroid_lir installed)."
. utils/parse_options.sh
. utils/check_options.sh

[ -f "$conf" ] || die "configuration file '$conf' not found (see conf/ and README.md)."
[ -z "$source_dir" ] || [ -d "$source_dir" ] || die "--source_dir '$source_dir' is not a directory."
[ -n "$tag" ] || tag="$(basename "$conf" .yml)"
expdir="$exp_dir/$tag"
overrides=()
for kv in $set; do overrides+=(--set "$kv"); done

. ./path.sh

prep() { python local/prepare_data.py "$1" --conf "$conf" --data_dir "$data_dir" \
  --source_dir "$source_dir" "${overrides[@]}"; }
paths="$(prep paths)"
src_dir="$(sed -n 1p <<<"$paths")"
meta_dir="$(sed -n 2p <<<"$paths")"
echo "[run] conf=$conf tag=$tag stages $stage..$stop_stage"
echo "[run] sources: $src_dir"
echo "[run] metadata: $meta_dir"
echo "[run] experiment: $expdir"
in_stages() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }
need_index() { [ -f "$meta_dir/sources.json" ] || die "metadata $meta_dir/sources.json is missing: run stage 1 first (--stage 1)."; }

if in_stages 0; then
  echo "[stage 0] Data: $( [ -n "$source_dir" ] && echo "source folders" || echo "embedded corpus" )"
  prep corpus
fi

if in_stages 1; then
  echo "[stage 1] Metadata -> $meta_dir/sources.json"
  prep metadata
fi

if in_stages 2; then
  need_index
  echo "[stage 2] Training -> $expdir (checkpoints/, logs/, best_model.pth)"
  workers=()
  [ -z "$n_workers" ] || workers=(--n_workers "$n_workers")
  python train.py --conf "$conf" --meta_dir "$meta_dir" --exp_dir "$expdir" --gpus "$id" \
    "${workers[@]}" "${overrides[@]}"
fi

if in_stages 3; then
  [ -f "$expdir/best_model.pth" ] || die "no trained model $expdir/best_model.pth: run stage 2 first (--stage 2)."
  need_index
  echo "[stage 3] Evaluation -> $expdir/results.json, results.md, examples/"
  python eval.py --exp_dir "$expdir" --meta_dir "$meta_dir" --gpus "${id%%,*}"
fi

if in_stages 4; then
  [ -f "$expdir/results.json" ] || die "$expdir/results.json is missing: run stage 3 first (--stage 3)."
  echo "[stage 4] Report -> $expdir/*.png, $expdir/results.md"
  cmp=()
  IFS=',' read -r -a others <<<"$compare"
  for other in "${others[@]}"; do [ -z "$other" ] || cmp+=(--compare "$other"); done
  python report.py --exp_dir "$expdir" "${cmp[@]}"
fi
echo "[run] Done (stages $stage..$stop_stage) in $((SECONDS / 60)) min $((SECONDS % 60)) s." \
  "Results: $expdir/results.md"
