#!/usr/bin/env bash
# One run records every GPU figure of docs/benchmark.md (about 6-8 min on an
# H100 / H200; each of its 7 steps has its own time limit, 11 min in all):
#   1. training, PVT-Tiny, 256 px, L = 128, batch 150 (the paper's per-GPU
#      batch), bf16 AMP: the config and its baseline config interleaved
#      (samples/s, peak memory, model-FLOPs utilisation against the bf16
#      matmul rate measured in the same rounds);
#   2. the same, eager vs compiled (model.compile: each block on its own,
#      inductor);
#   3. eager vs compiled + CUDA graphs (torch.compile mode reduce-overhead);
#   4. ITM retrieval scoring, 1,024 pairs a batch, bf16: config vs baseline
#      (pairs/s) and the wall time of COCO 5K on 8 such GPUs;
#   5. a generated 256 px Fashion-Gen (tools/misc/make_synthetic_fashiongen.py);
#   6. end to end: configs/mvlt/pretrain_fashiongen.py's real loader feeding
#      the bf16 training step at batch 150 with 2, 4 and 8 workers
#      (samples/s, share of the time spent waiting for data);
#   7. that loader alone: samples/s of one loader process and with 8
#      workers, and the loader processes a GPU needs at step 1's rate.
# Needs no data, no vocabulary and no internet. Figures go to $OUT (default
# work_dirs/gpu_benchmark): benchmark_*.json, gpu_benchmark.log, summary.txt.
#
#   bash tools/analysis_tools/gpu_benchmark.sh           # on the GPU machine
#   bash tools/analysis_tools/gpu_benchmark.sh --smoke   # tiny, on CPU: checks
#                                                        # the script end to end
#
# Python packages the GPU image may lack (mmengine, mmcv-lite, h5py and their
# small dependencies) are installed from ./.whl when that folder exists (see
# docs/benchmark.md for how to fill it).
set -uo pipefail
cd "$(dirname "$0")/../.."

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
PY=${PYTHON:-python3}
OUT=${OUT:-work_dirs/gpu_benchmark}
mkdir -p "$OUT"
export OUT HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
LOG="$OUT/gpu_benchmark.log"
CONFIG=configs/mvlt/benchmark/mvlt_pvt-tiny_256px.py
BASELINE=configs/mvlt/benchmark/mvlt_pvt-tiny_256px_baseline.py
PRETRAIN=configs/mvlt/pretrain_fashiongen.py
FG="$OUT/fashiongen"

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/mvlt_site .whl/*.whl &&
        export PYTHONPATH="$PYTHONPATH:/tmp/mvlt_site"
fi

if [ "$SMOKE" = 1 ]; then
    # Tiny settings on CPU: every step of the real run in a few minutes (no
    # AMP training on CPU; aot_eager compiles in seconds; no CUDA graphs).
    DEVICE=(--device cpu --img-size 64 --text-len 32)
    TRAIN=(--batch-size 2 --iters 1 --warmup 1)
    RETRIEVAL=(--batch-size 4 --iters 1 --warmup 1)
    AMP=()
    COMPILE=(--compile --compile-backend aot_eager)
    DATA=(--train-products 6 --val-products 3)
    E2E=(--batch-size 4 --iters 2 --warmup 1 --workers 1 2)
    LOADER=(--batch-size 4 --iters 4 --warmup 1 --workers 2)
    LIMITS=(300 300 300 300 120 300 300)
else
    DEVICE=(--device cuda)
    TRAIN=(--batch-size 150 --iters 8 --warmup 3)
    RETRIEVAL=(--batch-size 1024 --iters 8 --warmup 3 --amp)
    AMP=(--amp)
    COMPILE=(--compile)
    DATA=(--train-products 420 --val-products 140)
    E2E=(--batch-size 150 --iters 12 --warmup 3 --workers 2 4 8)
    LOADER=(--batch-size 150 --iters 20 --warmup 3 --workers 8)
    # Eager figures first and compiled ones apart, so that a slow compile
    # cannot cost the eager figures. 660 s in all at most.
    LIMITS=(75 150 150 45 60 120 60)
fi
FG_OPTIONS=(--cfg-options "train_dataloader.dataset.data_root=$FG/"
    "model.data_preprocessor.tokenizer.vocab_file=$FG/vocab.txt")

{
    echo "== $(date -u +%FT%TZ) gpu_benchmark.sh smoke=$SMOKE"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
} 2>&1 | tee "$LOG"

status=0
step() {  # step LIMIT COMMAND...: one step under a time limit
    local limit=$1
    shift
    echo "== $*" | tee -a "$LOG"
    timeout "$limit" "$@" 2>&1 | grep -v -e Warning -e warnings.warn |
        tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" != 0 ]; then
        echo "== step failed or ran out of time (exit $rc)" | tee -a "$LOG"
        status=1
    fi
}
bench() {  # bench LIMIT NAME ARGS...: benchmark.py, figures to NAME.json
    local limit=$1 name=$2
    shift 2
    step "$limit" "$PY" tools/analysis_tools/benchmark.py "$@" \
        --out "$OUT/$name.json"
}

bench "${LIMITS[0]}" benchmark_train "$CONFIG" --baseline "$BASELINE" \
    --mode train "${DEVICE[@]}" "${TRAIN[@]}" "${AMP[@]}"
bench "${LIMITS[1]}" benchmark_train_compile "$CONFIG" --mode train \
    "${DEVICE[@]}" "${TRAIN[@]}" "${AMP[@]}" "${COMPILE[@]}" --no-memory
bench "${LIMITS[2]}" benchmark_train_cudagraphs "$CONFIG" --mode train \
    "${DEVICE[@]}" "${TRAIN[@]}" "${AMP[@]}" "${COMPILE[@]}" \
    --compile-mode reduce-overhead --no-memory
bench "${LIMITS[3]}" benchmark_retrieval "$CONFIG" --baseline "$BASELINE" \
    --mode retrieval "${DEVICE[@]}" "${RETRIEVAL[@]}"
step "${LIMITS[4]}" "$PY" tools/misc/make_synthetic_fashiongen.py \
    "$FG" "${DATA[@]}"
bench "${LIMITS[5]}" benchmark_e2e "$PRETRAIN" --mode e2e "${DEVICE[@]}" \
    "${E2E[@]}" "${AMP[@]}" "${FG_OPTIONS[@]}"
# Loader processes per GPU at the GPU's measured training rate (step 1).
RATE=$("$PY" -c 'import json, sys
try:
    r = json.load(open(sys.argv[1]))
    print(r["variants"]["fast"]["samples_per_s"]["median"])
except Exception:
    print(1601)' "$OUT/benchmark_train.json")
bench "${LIMITS[6]}" benchmark_data "$PRETRAIN" --mode data "${DEVICE[@]}" \
    "${LOADER[@]}" --target-rate "$RATE" --no-model-compare \
    "${FG_OPTIONS[@]}"

"$PY" - "$OUT" <<'EOF' 2>&1 | tee "$OUT/summary.txt" | tee -a "$LOG"
import glob, json, os, sys
out = sys.argv[1]
for path in sorted(glob.glob(os.path.join(out, 'benchmark_*.json'))):
    r = json.load(open(path))
    print(f"{os.path.basename(path)}: {r['machine']}")
    if r['mode'] in ('data', 'e2e'):
        for run in r['runs']:
            line = (f"  {run['num_workers']} workers: "
                    f"{run['samples_per_s']:.1f} samples/s")
            if 'wait_share' in run:
                line += (f" end to end ({run['step_only_samples_per_s']:.1f}"
                         f" without waiting), waiting "
                         f"{100 * run['wait_share']:.1f} %")
            print(line)
        if 'processes_needed' in r:
            print(f"  one loader process {r['per_process_samples_per_s']:.1f}"
                  f" samples/s -> {r['processes_needed']} processes for "
                  f"{r['target_samples_per_s']:.0f} samples/s")
        continue
    unit = 'pairs' if r['mode'] == 'retrieval' else 'samples'
    print(f"  settings {r['settings']}; {r['flops_per_sample'] / 1e9:.2f} "
          f"GFLOP per {unit[:-1]}; matmul "
          + ', '.join(f"{k} {v['median']:.0f} GFLOP/s"
                      for k, v in r['matmul_gflops'].items()))
    for name, v in r['variants'].items():
        line = (f"  {name:>13}: {v[unit + '_per_s']['median']:.1f} {unit}/s, "
                f"{v['achieved_gflops']['median']:.0f} GFLOP/s = "
                f"{100 * v['fraction_of_matmul']['median']:.1f} % of "
                f"{r['matmul_reference']} matmul")
        for other in ('baseline', 'fast'):
            if f'speedup_vs_{other}' in v:
                line += (f", x{v[f'speedup_vs_{other}']['median']:.2f} vs "
                         f"{other}")
        print(line)
    for name, m in r.get('memory', {}).items():
        print(f"  {name:>13}: peak {m['peak_bytes'] / 2**30:.2f} GiB")
    if 'coco5k_estimate' in r:
        e = r['coco5k_estimate']
        print(f"  COCO 5K on {e['gpus']} GPUs: exact {e['exact_hours']:.2f} h,"
              f" re-ranking top {e['top_k']} {e['rerank_minutes']:.1f} min")
EOF
exit $status
