#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# Multi-node and CPU runs: see tools/dist_run.sh.
exec bash "$(dirname "$0")/dist_run.sh" "$3" test.py "$1" "$2" \
    --launcher pytorch "${@:4}"
