"""One harvester per database: a second real `paperfeed run` on the same database (a lock file
beside SQLite, an advisory lock on PostgreSQL) says another holds the lock and exits 0 without
harvesting; once the first is killed with SIGKILL the lock is free again at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests import harvest_support
from tests.harvest_support import HF_DAY, Reply, oai_pages, oai_router, settings_for

server = harvest_support.server  # the loopback replay server, a fixture

LOCKED = "another harvester holds the lock on this database"


def _serve_both(server):
    pages, tokens = oai_pages([3, 2])
    oai = oai_router(pages, tokens)

    def respond(req):
        if req.path == "/api/daily_papers":
            return Reply(body=HF_DAY.read_bytes(), content_type="application/json")
        return oai(req)

    server.respond = respond


def _env(server, db: str, tmp_path) -> dict[str, str]:
    env, _ = settings_for(server, harvest_sets="cs", harvest_format="oai_dc",
                          hf_harvest_every=3600, harvest_embed="false")  # fmt: skip
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}, **env}
    env["PAPERFEED_DB"] = db
    env["PAPERFEED_CACHE_DIR"] = str(tmp_path / "cache")
    return env


def _wait_for_text(path, text, proc, timeout=60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = path.read_text() if path.exists() else ""
        if text in out:
            return out
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"never saw {text!r}; output so far:\n{path.read_text()}")


def test_second_run_on_one_database_exits_0_and_the_lock_dies_with_the_first(server, db, tmp_path):
    _serve_both(server)
    env = _env(server, db, tmp_path)
    log = tmp_path / "first.log"
    with log.open("w") as out:
        first = subprocess.Popen([sys.executable, "-m", "paperfeed", "run"], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, cwd=tmp_path)  # fmt: skip
    try:
        _wait_for_text(log, "cycle 1 done", first)  # it holds the lock, and waits an hour
        asked = len(server.requests())
        second = subprocess.run([sys.executable, "-m", "paperfeed", "run", "--once"], env=env,
                                capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
        assert second.returncode == 0, second.stdout + second.stderr
        assert LOCKED in second.stdout and "Traceback" not in second.stdout + second.stderr
        assert "cycle 1 done" not in second.stdout
        assert len(server.requests()) == asked  # the second harvested nothing
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    # The killed one's lock is gone with it: the next run harvests (its due jobs only).
    third = subprocess.run([sys.executable, "-m", "paperfeed", "run", "--once"], env=env,
                           capture_output=True, text=True, cwd=tmp_path, timeout=60)  # fmt: skip
    # (Whether its jobs succeed is the harvest tests' business; here: it got the lock.)
    assert LOCKED not in third.stdout and "paperfeed run: started" in third.stdout, third.stdout
    assert "stopped cleanly after one pass" in third.stdout
