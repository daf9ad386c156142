#!/usr/bin/env bash
# Set up everything SlicerLungAI needs in ./.venv (idempotent; re-installs only when
# pyproject.toml or constraints.txt changed).  Needs python3 (3.11 or 3.12: the pinned numpy,
# scipy and pandas publish no 3.10 build) with venv and pip, and a C compiler with Python's headers (pyradiomics-bhklab
# is built from source: a failed install says which is missing).
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
# pyradiomics-bhklab has no wheel on PyPI: pip builds it, which needs a C compiler and Python's headers.  After a failed
# install, say which of them is missing here and how to get it (pip's own error is a compiler trace).
build_tools_hint() {
  .venv/bin/python - >&2 <<'PYEOF' || true
import os, shutil, sys, sysconfig
missing = []
cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
if not any(shutil.which(c) for c in (cc, "cc", "gcc", "clang")):
    missing.append("a C compiler")
header = os.path.join(sysconfig.get_paths()["include"], "Python.h")
if not os.path.isfile(header):
    missing.append(f"Python's headers ({header})")
if missing:
    v = "%d.%d" % sys.version_info[:2]
    print(f"error: pyradiomics-bhklab (radiomics) is built from source during the install and needs "
          f"{' and '.join(missing)}, not found on this machine.")
    print(f"  How to fix: Debian/Ubuntu: sudo apt-get install build-essential python{v}-dev; Fedora/RHEL: sudo dnf "
          f"install gcc python{v}-devel; macOS: xcode-select --install.  Then run bash tools/setup.sh again.")
PYEOF
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
  if ! .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"; then
    build_tools_hint
    exit 1
  fi
  echo "$want" > "$stamp"
fi
