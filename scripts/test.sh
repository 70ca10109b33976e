#!/usr/bin/env bash
# Quick start, part 2: install paperfeed with its test tools and run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check paperfeed tests bench
exec .venv/bin/python -m pytest -q "$@"
