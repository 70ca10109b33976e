#!/usr/bin/env bash
# Quick start, part 1: install paperfeed, load the bundled sample into paperfeed.db, index it
# with the bundled embedding model, and serve the web app on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PAPERFEED_DB=${PAPERFEED_DB:-paperfeed.db}
# The web app refuses to sign anything with a known secret: make one for this checkout once
# (git-ignored) unless PAPERFEED_SECRET is already set.
if [ -z "${PAPERFEED_SECRET:-}" ]; then
  if [ ! -s paperfeed.secret ]; then
    (umask 077; .venv/bin/python -c "import secrets; print(secrets.token_urlsafe(32))" > paperfeed.secret)
  fi
  PAPERFEED_SECRET=$(cat paperfeed.secret)
  export PAPERFEED_SECRET
fi
.venv/bin/paperfeed import --sample
.venv/bin/paperfeed index
.venv/bin/paperfeed stats
exec .venv/bin/paperfeed serve "$@"
