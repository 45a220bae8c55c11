#!/usr/bin/env bash
# Create ./.venv (once) and install mvlt with everything it needs.
# Re-running is cheap: the install is skipped while requirements are unchanged.
#
# The interpreter: $PYTHON if set, else the first of python3, python3.14 ...
# python3.10 on PATH whose version is supported. Supported are CPython 3.10
# to 3.14, the versions that torch 2.14.1 (requirements/runtime.txt) has
# wheels for; keep this range, setup.py's python_requires and README.md
# together.
set -euo pipefail
cd "$(dirname "$0")/.."
MIN_MINOR=10
MAX_MINOR=14
SUPPORTED="3.${MIN_MINOR} to 3.${MAX_MINOR}"

# "3.X" of interpreter $1, or nothing when it cannot be run.
version_of() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null |
        tail -n 1 || true
}

supported() {
    case "$1" in
    3.*) minor=${1#3.} ;;
    *) return 1 ;;
    esac
    [[ $minor =~ ^[0-9]+$ ]] && ((minor >= MIN_MINOR && minor <= MAX_MINOR))
}

# An existing .venv of an unsupported Python (a set-up that failed in pip)
# is made anew.
clear=
if [ -x .venv/bin/python ]; then
    have=$(version_of .venv/bin/python)
    if supported "$have"; then
        keep_venv=1
    else
        echo "setup_env.sh: .venv has Python ${have:-of unknown version}," \
            "not one of $SUPPORTED; it is made anew." >&2
        clear=--clear
    fi
fi

if [ -z "${keep_venv:-}" ]; then
    if [ -n "${PYTHON:-}" ]; then
        have=$(version_of "$PYTHON")
        if ! supported "$have"; then
            if [ -n "$have" ]; then
                what="Python $have"
            else
                what="not a Python interpreter that runs"
            fi
            echo "setup_env.sh: PYTHON=$PYTHON is $what; mvlt needs" \
                "Python $SUPPORTED (torch 2.14.1 has wheels only for those)." \
                "Point PYTHON at one, e.g. PYTHON=python3.12 bash" \
                "tools/setup_env.sh." >&2
            exit 1
        fi
    else
        seen=
        for candidate in python3 python3.14 python3.13 python3.12 \
            python3.11 python3.10; do
            command -v "$candidate" >/dev/null 2>&1 || continue
            have=$(version_of "$candidate")
            if supported "$have"; then
                PYTHON=$candidate
                break
            fi
            seen="$seen $candidate (${have:-does not run})"
        done
        if [ -z "${PYTHON:-}" ]; then
            echo "setup_env.sh: no supported Python found; mvlt needs" \
                "Python $SUPPORTED (torch 2.14.1 has wheels only for" \
                "those). Found:${seen:- none}. Install one and run" \
                "PYTHON=/path/to/python3.12 bash tools/setup_env.sh." >&2
            exit 1
        fi
    fi
    echo "setup_env.sh: making .venv with $PYTHON (Python $have)."
    "$PYTHON" -m venv $clear .venv
fi

stamp=.venv/.mvlt-requirements
want=$(cat requirements.txt requirements/*.txt setup.py | sha1sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt
    .venv/bin/python -m pip install -q --no-deps -e .
    echo "$want" > "$stamp"
fi
