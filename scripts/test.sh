#!/usr/bin/env bash
# Quick start, part 2: install paperfeed with its test tools (and Debian's chromium for the
# browser tests) and run every test. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  # Headless Chromium drives the end-to-end page tests: Debian's build, no browser downloads.
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi
bash scripts/setup.sh
.venv/bin/ruff check paperfeed tests bench scripts
exec .venv/bin/python -m pytest -q "$@"
