#!/usr/bin/env bash
# Usage: tools/dist_run.sh GPUS SCRIPT [SCRIPT arguments]
# Runs tools/SCRIPT (train.py or test.py) in GPUS processes per node with
# torchrun, the repository root on PYTHONPATH; tools/dist_train.sh and
# tools/dist_test.sh call it. Multi-node: NNODES, NODE_RANK, MASTER_ADDR,
# PORT; PYTHON names the interpreter. Without CUDA the processes run on CPU
# with the gloo backend.
TOOLS=$(dirname "$0")

PYTHONPATH="$TOOLS/..":$PYTHONPATH \
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$1" \
    --master_port="${PORT:-29500}" \
    "$TOOLS/$2" "${@:3}"
