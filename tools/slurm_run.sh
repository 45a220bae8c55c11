#!/usr/bin/env bash
# Usage: [GPUS=8] tools/slurm_run.sh PARTITION JOB_NAME SCRIPT [SCRIPT arguments]
# Submits tools/SCRIPT (train.py or test.py) to SLURM with srun, one task
# per GPU, the repository root on PYTHONPATH; tools/slurm_train.sh and
# tools/slurm_test.sh call it. GPUS_PER_NODE (8), CPUS_PER_TASK (5) and
# SRUN_ARGS (extra srun options) adjust the job.
set -x
TOOLS=$(dirname "$0")
GPUS_PER_NODE=${GPUS_PER_NODE:-8}

PYTHONPATH="$TOOLS/..":$PYTHONPATH \
srun -p "$1" \
    --job-name="$2" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS:-8}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    python -u "$TOOLS/$3" "${@:4}"
