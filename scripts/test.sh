#!/usr/bin/env bash
# Quick start, part 2: install paperfeed with its test tools (and Debian's chromium for the
# browser tests) and run every test. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# apt-get, retried while another apt or dpkg holds its lock (a fresh machine often runs
# unattended upgrades at boot): up to about five minutes, then give up with apt's message.
apt_retry() {
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  local try
  for try in $(seq 1 30); do
    if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=10 "$@"; then
      return 0
    fi
    echo "apt-get $1 failed (try $try of 30; the apt lock may be busy): retrying in 10 s" >&2
    sleep 10
  done
  return 1
}

# Headless Chromium drives the end-to-end page tests (Debian's build, no browser downloads);
# PostgreSQL's server binaries run the [postgres] half of the suite (tests/pg_support.py
# starts a throwaway server with initdb/pg_ctl on a temp folder and a free port).
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  apt_retry update -qq
  apt_retry install -y -qq "${need[@]}" >/dev/null
fi
# Debian's package starts its own cluster on port 5432; the tests use their own server.
bash scripts/setup.sh
.venv/bin/ruff check paperfeed tests bench scripts
exec .venv/bin/python -m pytest -q "$@"
