#!/usr/bin/env bash
# Quick start, part 1: install paperfeed, load the bundled sample into paperfeed.db, show it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PAPERFEED_DB=${PAPERFEED_DB:-paperfeed.db}
.venv/bin/paperfeed import --sample
.venv/bin/paperfeed stats
