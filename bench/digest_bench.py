"""Digest bench: compose + render + queue for many subscribers, then the send rate to a
local SMTP server, with peak memory.

Builds a fresh database: N subscribers (default 10,000) with varied preferences (daily or
weekly, 5/10/20 papers, no threshold or 0.3/0.6, trending on or off, a spread of time zones),
then M new papers (default 1,000; real titles and abstracts from the bundled SciFact sample,
a third of them with Hugging Face upvotes so trending has something to rank). Then:

1. ``queue_due(force=True)``: every reader's digest composed, rendered (HTML + text),
   built as a mail and stored in the outbox. Target: under 60 s for 10,000 on 2 cores.
2. ``send_queued``: to aiosmtpd (``python -m aiosmtpd``, its Sink handler, in its own
   process) on loopback, no rate limit, for --send mails (default all); prints mails/s.

Prints one line per step and a JSON line at the end. Peak memory is this process's max RSS.

    python bench/digest_bench.py --subscribers 10000 --papers 1000
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paperfeed.config import load_settings  # noqa: E402
from paperfeed.digest.send import queue_due, send_queued  # noqa: E402
from paperfeed.models import Paper  # noqa: E402
from paperfeed.store import open_store  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "scifact-mini" / "corpus.jsonl.gz"
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Los_Angeles",
         "Australia/Sydney"]  # fmt: skip


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _papers(m: int, rng: random.Random) -> list[Paper]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    out = []
    for i in range(m):
        d = docs[i % len(docs)]
        voted = i % 3 == 0
        out.append(Paper(
            id=f"2612.{10000 + i:05d}", title=d["title"] or f"Paper {i}", abstract=d["text"],
            authors=[f"Author {rng.randrange(5000)}" for _ in range(rng.randint(1, 8))],
            categories=[rng.choice(["cs.LG", "cs.CL", "q-bio.NC", "stat.ML"])], version=1,
            published="2026-12-01T00:00:00Z", source="hf-daily" if voted else "arxiv-api",
            upvotes=rng.randint(1, 200) if voted else None, listed_on="2026-12-01" if voted else None,
        ))  # fmt: skip
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument("--papers", type=int, default=1_000)
    ap.add_argument("--send", type=int, default=None, help="Mails to send (default: all queued).")
    ap.add_argument("--dir", help="Work folder (default: a temporary one).")
    args = ap.parse_args()
    rng = random.Random(13)
    work = Path(args.dir or tempfile.mkdtemp(prefix="digest-bench-"))
    db = work / "bench.db"
    for p in work.glob("bench.db*"):
        p.unlink()
    port = _free_port()
    settings = load_settings(env={
        "PAPERFEED_DB": str(db), "PAPERFEED_SECRET": "bench-secret-0123456789abcdef",
        "PAPERFEED_BASE_URL": "https://papers.example.org", "PAPERFEED_SMTP_HOST": "127.0.0.1",
        "PAPERFEED_SMTP_PORT": str(port), "PAPERFEED_SMTP_SECURITY": "none",
        "PAPERFEED_DIGEST_RATE": "0", "PAPERFEED_MAIL_FROM": "digest@papers.example.org",
    })  # fmt: skip
    store = open_store(str(db))
    t = time.perf_counter()
    for i in range(args.subscribers):
        u, _ = store.subscribe(f"reader{i:05d}@example.org")
        store.confirm_subscription(u.id)
        prefs = {"max_papers": rng.choice([5, 10, 20]), "timezone": rng.choice(ZONES),
                 "frequency": rng.choice(["daily", "daily", "weekly"]), "weekday": rng.randrange(7),
                 "min_score": rng.choice([None, None, 0.3, 0.6])}  # fmt: skip
        if rng.random() < 0.2:
            prefs["sections"] = "follows searches foryou"  # no trending: empty until personal picks exist
        store.set_digest_prefs(u.id, **prefs)
    print(f"setup: {args.subscribers} subscribers in {time.perf_counter() - t:.1f} s", flush=True)
    store.upsert_papers(_papers(args.papers, rng))
    print(f"setup: {args.papers} new papers stored", flush=True)

    t = time.perf_counter()
    q = queue_due(store, settings, force=True)
    compose_s = time.perf_counter() - t
    size = store.conn.execute("SELECT avg(length(message)) FROM outbox").fetchone()[0] or 0
    print(f"compose+render+queue: {q.queued} digests ({q.empty} empty) in {compose_s:.1f} s "
          f"= {q.queued / compose_s:.0f}/s; mean mail {size / 1024:.1f} KB; peak RSS {_rss_mb():.0f} MB",
          flush=True)  # fmt: skip

    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        t = time.perf_counter()
        r = send_queued(store, settings, limit=args.send)
        send_s = time.perf_counter() - t
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"send: {r.sent} mails in {send_s:.1f} s = {r.sent / send_s:.0f} mails/s "
          f"(failed {r.failed}, retry {r.retry}); peak RSS {_rss_mb():.0f} MB", flush=True)  # fmt: skip
    store.close()
    print(json.dumps({
        "subscribers": args.subscribers, "papers": args.papers, "queued": q.queued,
        "empty": q.empty, "compose_s": round(compose_s, 2), "sent": r.sent,
        "send_s": round(send_s, 2), "mails_per_s": round(r.sent / send_s, 1),
        "mean_mail_kb": round(size / 1024, 1), "peak_rss_mb": round(_rss_mb()),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
