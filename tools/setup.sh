#!/usr/bin/env bash
# Set up everything SlicerLungAI needs in ./.venv (idempotent; re-installs only when
# pyproject.toml or constraints.txt changed).  Needs python3 (3.11 or 3.12: the pinned numpy,
# scipy and pandas publish no 3.10 build) with venv and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# the Python the environment is (or would be) made with: 3.11 or 3.12, said before anything is installed
check_python() {
  if ! "$1" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' 2>/dev/null; then
    found=$("$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "none")
    echo "error: $2 is Python $found; SlicerLungAI needs Python 3.11 or 3.12 (the pinned numpy, scipy and pandas" \
      "have no build for other versions)" >&2
    echo "  How to fix: install Python 3.12 and run PYTHON=/path/to/python3.12 bash tools/setup.sh$3" >&2
    exit 2
  fi
}
if [ ! -x .venv/bin/python ]; then
  check_python "$PY" "$PY" ""
  "$PY" -m venv .venv
fi
check_python .venv/bin/python ".venv/bin/python" " (after removing .venv/)"
stamp=.venv/.lungai-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # torch is pinned to 2.13.0, CPU build; constraints.txt pins every other package.  On Linux, PyPI's
  # torch 2.13.0 is the multi-GB CUDA build: when the configured package sources offer no "+cpu" build,
  # torch comes from PyTorch's CPU index first (LUNGAI_TORCH_INDEX overrides it; empty: skip this step).
  torch_index=${LUNGAI_TORCH_INDEX-https://download.pytorch.org/whl/cpu}
  if [ "$(uname -s)" = Linux ] && [ -n "$torch_index" ]; then
    torch_found=$(.venv/bin/python -m pip install --dry-run --quiet --ignore-installed --no-deps --report - \
      "torch==2.13.0" 2>/dev/null | .venv/bin/python -c \
      'import json, sys; print(" ".join(i["metadata"]["version"] for i in json.load(sys.stdin)["install"]))' \
      2>/dev/null || true)
    case "$torch_found" in
      *+cpu*) ;;
      *) echo "torch 2.13.0: the CPU build from $torch_index"
         .venv/bin/python -m pip install --quiet --no-deps --index-url "$torch_index" "torch==2.13.0+cpu" \
           || echo "warning: $torch_index not reachable; torch comes from the configured package sources" ;;
    esac
  fi
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
  echo "$want" > "$stamp"
fi
