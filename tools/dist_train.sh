#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG GPUS [train.py options]
# Multi-node and CPU runs: see tools/dist_run.sh.
exec bash "$(dirname "$0")/dist_run.sh" "$2" train.py "$1" \
    --launcher pytorch "${@:3}"
