#!/usr/bin/env bash
# The offline demo, from nothing to results on a CPU (about 10 minutes):
#   1. set up ./.venv (tools/setup_env.sh),
#   2. write a synthetic Fashion-Gen in the release's HDF5 layout,
#   3. draw its 101-candidate retrieval lists (validation split),
#   4. pre-train the small MVLT with MIR + ITM + MLM on the CPU,
#   5. test zero-shot TIR / ITR and masked image generation, save figures.
# Results go to $WORK_DIR (default work_dirs/demo); nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/setup_env.sh
PY=.venv/bin/python
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
DATA=data/synthetic_fashiongen
WORK=${WORK_DIR:-work_dirs/demo}
PRETRAIN=configs/mvlt/synthetic/pretrain_synthetic_demo.py
RETRIEVAL=configs/mvlt/synthetic/retrieval_synthetic_zeroshot.py
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

"$PY" tools/train.py "$PRETRAIN" --work-dir "$WORK/pretrain"
train_done=$(date +%s)
checkpoint=$(cat "$WORK/pretrain/last_checkpoint")

"$PY" tools/test.py "$RETRIEVAL" "$checkpoint" --work-dir "$WORK/retrieval" \
    --show-dir "$WORK/retrieval/figures"
"$PY" tools/test.py "$MIG" "$checkpoint" --work-dir "$WORK/mig" \
    --show-dir "$WORK/mig/figures"
end=$(date +%s)

"$PY" tools/demo/demo_summary.py --work-dir "$WORK" --checkpoint "$checkpoint" \
    --seconds "data=$((data_done - start))" \
    "pre-training=$((train_done - data_done))" \
    "testing=$((end - train_done))"
