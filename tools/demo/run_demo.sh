#!/usr/bin/env bash
# The offline demo, from nothing to results on a CPU (about 11 minutes on 2
# idle cores, 8 of them pre-training):
#   1. set up ./.venv (tools/setup_env.sh),
#   2. write a synthetic Fashion-Gen in the release's HDF5 layout,
#   3. draw its 101-candidate retrieval lists (validation split),
#   4. pre-train the small MVLT on the CPU (MIR + ITM + MLM + ITC) and plot
#      its training curves,
#   5. test zero-shot TIR / ITR (ranked by ITC, the demo's ranking, and by
#      ITM, the paper's) and masked image generation, save figures,
#   6. index the validation split for the catalogue search page,
#   7. predict garment type and colour zero-shot (ITC similarity to prompt
#      captions) on the validation split.
# Results go to $WORK_DIR (default work_dirs/demo, or work_dirs/demo_seed<N>
# with SEED=N); nothing is downloaded.
#   SEED=3 bash tools/demo/run_demo.sh            # another seed (default 0)
#   OMP_NUM_THREADS=1 bash tools/demo/run_demo.sh # one thread
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/setup_env.sh
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
DATA=data/synthetic_fashiongen
SEED=${SEED:-0}
if [ "$SEED" = 0 ]; then
    WORK=${WORK_DIR:-work_dirs/demo}
else
    WORK=${WORK_DIR:-work_dirs/demo_seed$SEED}
fi
PRETRAIN=configs/mvlt/synthetic/pretrain_synthetic_demo.py
RETRIEVAL=configs/mvlt/synthetic/retrieval_synthetic_zeroshot_itc.py
RETRIEVAL_ITM=configs/mvlt/synthetic/retrieval_synthetic_zeroshot.py
MIG=configs/mvlt/synthetic/mig_synthetic.py
start=$(date +%s)

# 420 training products; the validation split draws every one of the 480
# attribute combinations anew (new renderings, new product ids), so each
# query's 100 negatives hold 59 of its sub-category and 41 of its category.
if [ ! -f "$DATA/fashiongen_256_256_validation.h5" ]; then
    "$PY" tools/misc/make_synthetic_fashiongen.py "$DATA" \
        --train-products 420 --val-products 480
fi
if [ ! -f "$DATA/protocols/synthetic-101_validation.json" ]; then
    "$PY" tools/misc/make_retrieval_protocol.py "$RETRIEVAL" --num-queries 200
fi
data_done=$(date +%s)

# The seed drives the model's initialisation, the data order and every
# masking / pairing draw.
"$PY" tools/train.py "$PRETRAIN" --work-dir "$WORK/pretrain" \
    --cfg-options randomness.seed="$SEED" model.data_preprocessor.seed="$SEED"
train_done=$(date +%s)
checkpoint=$(cat "$WORK/pretrain/last_checkpoint")
scalars=$(ls -t "$WORK"/pretrain/*/vis_data/scalars.json | head -n 1)
"$PY" tools/analysis_tools/analyze_logs.py plot_curve "$scalars" \
    --keys loss_mir loss_itm loss_mlm loss_itc itm_acc itc_acc \
    --title "MVLT demo pre-training (seed $SEED)" \
    --out "$WORK/training_curves.png"

"$PY" tools/test.py "$RETRIEVAL" "$checkpoint" --work-dir "$WORK/retrieval" \
    --show-dir "$WORK/retrieval/figures"
"$PY" tools/test.py "$RETRIEVAL_ITM" "$checkpoint" --work-dir "$WORK/retrieval_itm"
"$PY" tools/test.py "$MIG" "$checkpoint" --work-dir "$WORK/mig" \
    --show-dir "$WORK/mig/figures"

# Catalogue search over the validation gallery; status 3: the checkpoint has
# no ITC head (the tool says how to get one), and the demo goes on without.
search_index="$WORK/search_index"
status=0
"$PY" tools/misc/build_search_index.py "$PRETRAIN" "$checkpoint" \
    --gallery "$DATA/fashiongen_256_256_validation.h5" \
    --out "$search_index" || status=$?
if [ "$status" -eq 3 ]; then
    search_index=
elif [ "$status" -ne 0 ]; then
    exit "$status"
fi
end=$(date +%s)

"$PY" tools/demo/demo_summary.py --work-dir "$WORK" --checkpoint "$checkpoint" \
    --search-index "$search_index" --scalars "$scalars" \
    --seconds "data=$((data_done - start))" \
    "pre-training=$((train_done - data_done))" \
    "testing=$((end - train_done))"

# Zero-shot garment type and colour of the validation split (needs the ITC
# head, as the search index); printed after the summary, whose figures it
# leaves alone (it only reads the checkpoint).
if [ -n "$search_index" ]; then
    "$PY" tools/demo/zero_shot_demo.py "$PRETRAIN" "$checkpoint" \
        --gallery "$DATA/fashiongen_256_256_validation.h5"
fi
