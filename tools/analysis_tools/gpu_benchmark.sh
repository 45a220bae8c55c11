#!/usr/bin/env bash
# One run records every GPU figure of docs/benchmark.md (about 3-5 min on an
# H100 / H200; each of its 4 steps has its own time limit, 6 min in all):
#   1. training, PVT-Tiny, 256 px, L = 128, batch 150 (the paper's per-GPU
#      batch), bf16 AMP: fast path and baseline interleaved (samples/s, peak
#      memory, model-FLOPs utilisation against the bf16 matmul rate measured
#      in the same rounds), then fast path and fast path + torch.compile;
#   2. ITM retrieval scoring, 1,024 pairs a batch, bf16: the same pairs of
#      runs (pairs/s) and the wall time of the COCO 5K protocol on 8 such
#      GPUs, exact (125 M pairs) and re-ranking the top 128.
# Needs no data, no vocabulary and no internet (synthetic inputs, a
# throw-away vocabulary). Figures go to $OUT (default
# work_dirs/gpu_benchmark): benchmark_*.json, gpu_benchmark.log, summary.txt.
#
#   bash tools/analysis_tools/gpu_benchmark.sh           # on the GPU machine
#   bash tools/analysis_tools/gpu_benchmark.sh --smoke   # tiny, on CPU: checks
#                                                        # the script end to end
#
# Python packages the GPU image may lack (mmengine, mmcv-lite and their
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

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/mvlt_site .whl/*.whl &&
        export PYTHONPATH="$PYTHONPATH:/tmp/mvlt_site"
fi

COMMON=(--iters 8 --warmup 3 --amp)
COMPILE=(--compile)
if [ "$SMOKE" = 1 ]; then
    # Tiny settings on CPU: every step of the real run, in about a minute
    # (no AMP training on CPU; the aot_eager backend compiles in seconds).
    DEVICE=(--device cpu --img-size 64 --text-len 32)
    TRAIN_BATCH=2
    RETRIEVAL_BATCH=4
    COMMON=(--iters 1 --warmup 1)
    COMPILE=(--compile --compile-backend aot_eager)
    LIMITS=(300 300 300 300)
else
    DEVICE=(--device cuda)
    TRAIN_BATCH=150
    RETRIEVAL_BATCH=1024
    # Eager figures first and compiled ones apart, so that a slow compile
    # cannot cost the eager figures. 360 s in all at most.
    LIMITS=(75 150 60 75)
fi

{
    echo "== $(date -u +%FT%TZ) gpu_benchmark.sh smoke=$SMOKE"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
} 2>&1 | tee "$LOG"

status=0
run() {  # run LIMIT ARGS...: one benchmark call under a time limit
    local limit=$1
    shift
    echo "== benchmark.py $*" | tee -a "$LOG"
    timeout "$limit" "$PY" tools/analysis_tools/benchmark.py "$CONFIG" \
        "${DEVICE[@]}" "$@" 2>&1 | grep -v -e Warning -e warnings.warn |
        tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" != 0 ]; then
        echo "== step failed or ran out of time (exit $rc)" | tee -a "$LOG"
        status=1
    fi
}

AMP=(--amp)
[ "$SMOKE" = 1 ] && AMP=()
run "${LIMITS[0]}" --mode train --batch-size "$TRAIN_BATCH" "${COMMON[@]}" \
    "${AMP[@]}"
run "${LIMITS[1]}" --mode train --batch-size "$TRAIN_BATCH" "${COMMON[@]}" \
    "${AMP[@]}" "${COMPILE[@]}" --no-baseline --no-memory
run "${LIMITS[2]}" --mode retrieval --batch-size "$RETRIEVAL_BATCH" \
    "${COMMON[@]}" --amp
run "${LIMITS[3]}" --mode retrieval --batch-size "$RETRIEVAL_BATCH" \
    "${COMMON[@]}" --amp "${COMPILE[@]}" --no-baseline

"$PY" - "$OUT" <<'EOF' 2>&1 | tee "$OUT/summary.txt" | tee -a "$LOG"
import glob, json, os, sys
out = sys.argv[1]
for path in sorted(glob.glob(os.path.join(out, 'benchmark_*.json'))):
    r = json.load(open(path))
    unit = 'pairs' if r['mode'] == 'retrieval' else 'samples'
    print(f"{os.path.basename(path)}: {r['machine']}")
    print(f"  settings {r['settings']}; {r['flops_per_sample'] / 1e9:.2f} "
          f"GFLOP per {unit[:-1]}; matmul "
          + ', '.join(f"{k} {v['median']:.0f} GFLOP/s"
                      for k, v in r['matmul_gflops'].items()))
    for name, v in r['variants'].items():
        line = (f"  {name:>13}: {v[unit + '_per_s']['median']:.1f} {unit}/s, "
                f"{v['achieved_gflops']['median']:.0f} GFLOP/s = "
                f"{100 * v['fraction_of_matmul']['median']:.1f} % of "
                f"{r['matmul_reference']} matmul")
        if 'speedup_vs_baseline' in v:
            line += f", x{v['speedup_vs_baseline']['median']:.2f} vs baseline"
        print(line)
    for name, m in r.get('memory', {}).items():
        print(f"  {name:>13}: peak {m['peak_bytes'] / 2**30:.2f} GiB")
    if 'coco5k_estimate' in r:
        e = r['coco5k_estimate']
        print(f"  COCO 5K on {e['gpus']} GPUs: exact {e['exact_hours']:.2f} h,"
              f" re-ranking top {e['top_k']} {e['rerank_minutes']:.1f} min")
EOF
exit $status
