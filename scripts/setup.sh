#!/usr/bin/env bash
# Create .venv and install paperfeed into it (idempotent; re-run after pulling changes).
# torch is installed first, pinned to the CPU build, so that nothing pulls a CUDA build later.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q torch==2.13.0
fi
.venv/bin/pip install -q -e ".[${EXTRAS:-test}]"
