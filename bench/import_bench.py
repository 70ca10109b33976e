"""Import throughput and peak memory for the arXiv snapshot format.

Generates N synthetic Kaggle-snapshot records whose titles and abstracts are real (SciFact
corpus abstracts, reused round-robin) and whose ids, authors (a long-tailed pool of 1.5M
names), categories and versions are drawn like arXiv's, then imports the file into a fresh
SQLite database in a child process (so peak RSS is the import's own) and prints papers/s and
peak RSS. Repeats --runs times and reports the median.

    python bench/import_bench.py --n 1000000 --runs 3

With --backend postgres (or both, interleaved run by run, with the ratio) each run imports
into a fresh database on PostgreSQL instead: a throwaway server with PostgreSQL's default
durability (tests/pg_support.py, on this machine), or the server of --pg-admin-url (an account
that may CREATE DATABASE):

    python bench/import_bench.py --n 100000 --runs 3 --backend both
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = ROOT.parent / "shared" / "data" / "scifact-beir" / "corpus.jsonl.gz"
FALLBACK = ROOT / "tests" / "data" / "beir" / "scifact" / "corpus.jsonl"

CATS = ["cs.LG", "cs.CL", "cs.CV", "cs.AI", "stat.ML", "math.OC", "hep-th", "hep-ph",
        "astro-ph.GA", "cond-mat.mes-hall", "quant-ph", "q-bio.NC", "eess.SP", "physics.optics"]
FIRST = ["Ana", "Bo", "Chen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal",
         "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Yuki"]
LAST = ["Smith", "Wang", "Garcia", "Müller", "Kumar", "Nguyen", "Okafor", "Rossi", "Kowalski",
        "Tanaka", "Haddad", "Johansson", "Silva", "Ivanova", "Cohen", "Park", "Dubois", "Li"]
# Surnames beyond LAST are made of syllables: 25^2 + 25^3 of them, some with accents.
SYLLABLES = ["ka", "to", "mi", "ra", "sen", "lo", "ve", "dan", "ni", "ber", "gu", "shi", "mor",
             "an", "el", "kö", "ta", "ri", "no", "vá", "hu", "ze", "ol", "pe", "sa"]
MIDDLE = ["", " A.", " J.", " K.", " M."]
# arXiv's authors have a long tail: a few write hundreds of papers, most write one or two.
# Names are drawn with weight 1 / (rank + 10) from a pool this big, which gives about 0.63
# distinct names per paper over 1M papers, and a name-ordered index no cache holds.
AUTHOR_POOL = 1_500_000
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def load_abstracts() -> list[tuple[str, str]]:
    src = SCIFACT if SCIFACT.exists() else FALLBACK
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    return [(d["title"], d["text"]) for d in docs if d.get("text")]


def _surname(i: int) -> str:
    if i < len(LAST):
        return LAST[i]
    i -= len(LAST)
    k = len(SYLLABLES)
    parts = [SYLLABLES[i % k], SYLLABLES[(i // k) % k]]
    if i >= k * k:
        parts.append(SYLLABLES[(i // (k * k)) % k])
    return "".join(parts).capitalize()


def _author(rank: int) -> list[str]:
    """[last, first, suffix] of the author of popularity ``rank``, as authors_parsed has it."""
    i = (rank * 7919 + 13) % AUTHOR_POOL  # spread popular names over the whole pool
    first = FIRST[i % len(FIRST)] + MIDDLE[(i // len(FIRST)) % len(MIDDLE)]
    return [_surname(i // (len(FIRST) * len(MIDDLE))), first, ""]


def generate(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    texts = load_abstracts()
    cum = list(itertools.accumulate(1.0 / (r + 10) for r in range(AUTHOR_POOL)))
    total = cum[-1]
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            title, abstract = texts[i % len(texts)]
            yymm = 1501 + (i // 90000) % 12 + 100 * ((i // 1080000) % 10)
            pid = f"{yymm:04d}.{i % 90000 + 10000:05d}"
            k = rng.randint(1, 6)
            parsed = [_author(bisect.bisect(cum, rng.random() * total)) for _ in range(k)]
            cats = rng.sample(CATS, rng.randint(1, 3))
            nver = rng.choice([1, 1, 1, 2, 2, 3])
            versions = [
                {
                    "version": f"v{v + 1}",
                    "created": f"{DAYS[(i + v) % 5]}, {1 + (i + v) % 28} {MONTHS[(i // 7 + v) % 12]} "
                    f"20{15 + (i // 1080000) % 10} {(i % 24):02d}:{(i % 60):02d}:{(v * 7) % 60:02d} GMT",
                }
                for v in range(nver)
            ]
            rec = {
                "id": pid,
                "submitter": f"{parsed[0][1]} {parsed[0][0]}",
                "authors": ", ".join(f"{a[1]} {a[0]}" for a in parsed),
                "title": title,
                "comments": f"{rng.randint(4, 40)} pages" if rng.random() < 0.6 else None,
                "journal-ref": None,
                "doi": f"10.1000/bench.{i}" if rng.random() < 0.4 else None,
                "report-no": None,
                "categories": " ".join(cats),
                "license": None,
                "abstract": "  " + abstract + "\n",
                "versions": versions,
                "update_date": f"20{15 + (i // 1080000) % 10}-0{1 + i % 9}-1{i % 10}",
                "authors_parsed": parsed,
            }
            out.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")


_CHILD = r"""
import json, resource, sys, time
from paperfeed.importer import import_files
from paperfeed.store import open_store
path, db, mode = sys.argv[1], sys.argv[2], sys.argv[3]
store = open_store(db)
t = time.perf_counter()
rep = import_files(store, [path], batch_size=5000,
                   parser_process={"auto": None, "off": False}[mode])
dt = time.perf_counter() - t
store.close()
# The parser process counts too: the sum of both peaks (an upper bound, as pages a fork
# shares with its parent are counted twice).
peak = sum(resource.getrusage(who).ru_maxrss for who in
           (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
print(json.dumps({"seconds": dt, "added": rep.added, "rejected": rep.rejected,
                  "peak_rss_mb": peak}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="records to generate")
    ap.add_argument("--runs", type=int, default=3, help="timed imports (median reported)")
    ap.add_argument("--keep", help="folder to keep the generated file and databases in")
    ap.add_argument("--parser-process", choices=["auto", "off"], default="auto",
                    help="off: parse in the writing process (a thread), the baseline the parser "
                    "process is measured against")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite",
                    help="where each run imports (both: interleaved, ratio printed)")
    ap.add_argument("--pg-admin-url", default="",
                    help="PostgreSQL server to use (default: start a throwaway one)")
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    pg = PgDatabases(args.pg_admin_url) if "postgres" in backends else None
    work = Path(args.keep or tempfile.mkdtemp(prefix="pf-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"snapshot-{args.n}.jsonl"
    if not data.exists():
        t = time.perf_counter()
        generate(data, args.n)
        print(f"generated {args.n} records ({data.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    from paperfeed.search.cpu import cpu_info

    print(f"CPU: {cpu_info().summary()}", file=sys.stderr)
    results: dict[str, list[dict]] = {b: [] for b in backends}
    try:
        for run in range(args.runs):
            for backend in backends:
                if backend == "postgres":
                    db = pg.new()
                else:
                    db = str(work / f"bench-{run}.db")
                    for suffix in ("", "-wal", "-shm"):
                        Path(db + suffix).unlink(missing_ok=True)
                out = subprocess.run(
                    [sys.executable, "-c", _CHILD, str(data), db, args.parser_process],
                    capture_output=True, text=True, check=True, cwd=ROOT,
                )  # fmt: skip
                r = json.loads(out.stdout.strip().splitlines()[-1])
                r["papers_per_s"] = r["added"] / r["seconds"]
                results[backend].append(r)
                print(f"run {run + 1} {backend:<8}: {r['added']} papers in {r['seconds']:.1f}s = "
                      f"{r['papers_per_s']:,.0f} papers/s, peak RSS {r['peak_rss_mb']:.0f} MB",
                      file=sys.stderr)  # fmt: skip
                if backend == "postgres":
                    pg.drop(db)
                elif not args.keep:
                    for suffix in ("", "-wal", "-shm"):
                        Path(db + suffix).unlink(missing_ok=True)
    finally:
        if pg is not None:
            pg.close()
    summary = {
        "records": args.n,
        "parser_process": args.parser_process,
        "runs": args.runs,
        "cpu": cpu_info().summary(),
        "cpu_count": os.cpu_count(),
    }
    for backend, rs in results.items():
        summary[backend] = {
            "median_papers_per_s": round(statistics.median(r["papers_per_s"] for r in rs)),
            "median_seconds": round(statistics.median(r["seconds"] for r in rs), 2),
            "median_peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in rs)),
            "max_peak_rss_mb": round(max(r["peak_rss_mb"] for r in rs)),
        }
    if len(backends) == 1:  # the single-backend shape earlier runs printed
        summary.update(summary.pop(backends[0]))
    else:
        summary["postgres_over_sqlite"] = round(
            summary["postgres"]["median_papers_per_s"] / summary["sqlite"]["median_papers_per_s"], 3
        )
    print(json.dumps(summary))
    if not args.keep:
        data.unlink(missing_ok=True)


class PgDatabases:
    """Fresh databases on a PostgreSQL server for each run: a throwaway durable one started
    here (tests/pg_support.py), or the server behind ``admin_url``."""

    def __init__(self, admin_url: str = ""):
        import psycopg

        self._psycopg = psycopg
        self.server = None
        if admin_url:
            self.admin_url = admin_url
        else:
            sys.path.insert(0, str(ROOT))
            from tests.pg_support import start_server

            server = start_server(durable=True)
            if isinstance(server, str):
                raise SystemExit(server)
            self.server, self.admin_url = server, server.admin_url
        self.n = 0

    def new(self) -> str:
        self.n += 1
        name = f"pf_import_bench_{os.getpid()}_{self.n}"
        with self._psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name}")
            c.execute(f"CREATE DATABASE {name}")
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    def drop(self, url: str) -> None:
        with self._psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)")

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()

if __name__ == "__main__":
    main()
