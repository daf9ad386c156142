#!/usr/bin/env bash
# Set up everything SlicerLungAI needs in ./.venv (idempotent; re-installs only when
# pyproject.toml or constraints.txt changed).  Needs python3 (3.10-3.12) with venv and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.lungai-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # torch is pinned to 2.13.0 (CPU build); constraints.txt pins every other package.
  .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
  echo "$want" > "$stamp"
fi
