#!/usr/bin/env bash
# Quick start, part 1: install paperfeed, load the bundled sample into paperfeed.db, index it
# with the bundled embedding model, and serve the web app on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PAPERFEED_DB=${PAPERFEED_DB:-paperfeed.db}
.venv/bin/paperfeed import --sample
.venv/bin/paperfeed index
.venv/bin/paperfeed stats
exec .venv/bin/paperfeed serve "$@"
