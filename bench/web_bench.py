"""Web throughput and latency over a 100,000-paper database, on loopback only.

Builds (or reuses, under --keep) a database of N synthetic papers whose titles and abstracts
are real (bench/import_bench.py's generator), brings the search indexes up to date
(`paperfeed index`), starts `paperfeed serve --workers W` as a real process, warms it up, then
loads each target for --duration seconds at --connections connections, one target after the
other: the trending page `/`, the search page `/search?q=...` and the JSON search
`/api/search?q=...` (queries rotate over 200 real SciFact claims, first five words). It
prints requests/s, p50/p99 latency and errors (socket errors and non-2xx/3xx answers) per
target and run, their medians over --runs, and one JSON line.

The load comes from wrk when it is installed (Debian: apt-get install wrk), else from a
bounded asyncio/httpx generator in this file. Either runs on the same 2 cores as the server,
so the figures are for the pair.

    python bench/web_bench.py --n 100000 --duration 60 --connections 32 --workers 2 --runs 3

`/api/search` is also loaded with two query mixes, reported apart: "zipf" (5,000 requests
drawn with Zipf weights from the 200 queries: popular queries repeat, as paging and feed
readers make them) and "distinct" (about 2,000 queries, none repeated, none used to warm up).
With --baseline DIR (a git worktree of an earlier commit) the same database is served by that
code too, interleaved run by run, and the ratios now/baseline are printed:

    git worktree add ../pf-base e200122
    python bench/web_bench.py --baseline ../pf-base --duration 20

Vectors: the generator reuses the 5,183 SciFact abstracts, so the build embeds each distinct
text once with the real model and gives every paper sharing it the same vector (a minute,
where embedding 100,000 texts took half an hour); `paperfeed index` then finds every paper
embedded and builds only the indexes. --embed-all embeds every paper as `paperfeed index`
would.

With --backend postgres (or both: interleaved run by run, ratios postgres/sqlite printed) the
same papers are served from PostgreSQL: imported into a fresh database (papers/s reported),
the same vectors filled in, and `paperfeed serve` started on the URL. The server is the one
of --pg-admin-url (an account that may CREATE DATABASE) or a throwaway durable one started
here (tests/pg_support.py):

    python bench/web_bench.py --n 100000 --backend both --duration 30 --runs 3

With --import-beside M it measures instead `/api/search` while `paperfeed import` of M more
papers runs against the same database (a copy of the built one, so the next run starts
again from N): p50/p99 over the requests made while the import ran, the import's time,
and how long the app's background indexer took after it to make every paper searchable.
Searches never index inline, so their latency should stay that of an idle index (target
p99 < 1 s at M = 100,000):

    python bench/web_bench.py --n 100000 --import-beside 100000 --connections 8
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_plus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

QUERIES_SRC = ROOT.parent / "shared" / "data" / "scifact-beir" / "queries.jsonl"
FALLBACK_SRC = ROOT / "tests" / "data" / "beir" / "scifact" / "corpus.jsonl"
LOOPBACK = "127.0.0.1"


def all_queries() -> list[str]:
    """Every distinct short query the claims give (first 4, 5 and 6 words of each)."""
    if QUERIES_SRC.exists():
        texts = [json.loads(line)["text"] for line in QUERIES_SRC.open(encoding="utf-8")]
    else:
        opener = gzip.open if FALLBACK_SRC.suffix == ".gz" else open
        with opener(FALLBACK_SRC, "rt", encoding="utf-8") as f:
            texts = [json.loads(line)["title"] for line in f]
    seen: dict[str, None] = {}
    for n in (5, 4, 6):
        for t in texts:
            words = re.findall(r"[A-Za-z][A-Za-z\-]+", t)
            if len(words) >= n:
                seen.setdefault(" ".join(words[:n]), None)
    return list(seen)


def zipf_mix(qs: list[str], n: int = 5000, s: float = 1.1, seed: int = 20261201) -> list[str]:
    """``n`` queries drawn from ``qs`` with Zipf weights (rank r has weight 1/r^s): a few
    popular queries, a long tail, repeats as in real traffic (paging, feed readers)."""
    import random

    rng = random.Random(seed)
    weights = [1 / (r + 1) ** s for r in range(len(qs))]
    return rng.choices(qs, weights=weights, k=n)


def queries(n: int = 200) -> list[str]:
    """Short queries: the first words of real SciFact claims (or corpus titles)."""
    if QUERIES_SRC.exists():
        texts = [json.loads(line)["text"] for line in QUERIES_SRC.open(encoding="utf-8")]
    else:
        opener = gzip.open if FALLBACK_SRC.suffix == ".gz" else open
        with opener(FALLBACK_SRC, "rt", encoding="utf-8") as f:
            texts = [json.loads(line)["title"] for line in f]
    out = []
    for t in texts:
        words = re.findall(r"[A-Za-z][A-Za-z\-]+", t)
        if len(words) >= 3:
            out.append(" ".join(words[:5]))
        if len(out) == n:
            break
    return out


def build_db(work: Path, n: int) -> Path:
    from import_bench import generate

    from paperfeed.importer import import_files
    from paperfeed.store import open_store

    db = work / f"web-{n}.db"
    done = work / f"web-{n}.done"
    if db.exists() and done.exists():
        print(f"reusing {db}", file=sys.stderr)
        return db
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    shutil.rmtree(str(db) + ".index", ignore_errors=True)
    data = work / f"snapshot-{n}.jsonl"
    if not data.exists():
        generate(data, n)
    t = time.perf_counter()
    store = open_store(str(db))
    report = import_files(store, [data], progress=sys.stderr.isatty())
    store.close()
    print(f"imported {report.added} papers in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    done.write_text(json.dumps(report.as_dict()))
    return db


def import_into(db: str, data: Path) -> dict:
    """Import the snapshot into ``db`` (a fresh database); papers/s of the import."""
    from paperfeed.importer import import_files
    from paperfeed.store import open_store

    store = open_store(db)
    t = time.perf_counter()
    report = import_files(store, [data], progress=sys.stderr.isatty())
    dt = time.perf_counter() - t
    store.close()
    print(f"imported {report.added} papers into {db.split('@')[-1]} in {dt:.0f}s "
          f"({report.added / dt:,.0f} papers/s)", file=sys.stderr)  # fmt: skip
    return {"added": report.added, "seconds": round(dt, 1), "papers_per_s": round(report.added / dt)}


class _OncePerText:
    """An embedder that embeds each distinct text once (the bench corpus repeats texts)."""

    def __init__(self, embedder):
        self.inner = embedder
        self.model_id, self.dim = embedder.model_id, embedder.dim
        self.cache: dict[str, "object"] = {}

    def encode(self, texts: list[str], batch_size: int = 32, progress: bool = False):
        import numpy as np

        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            for t, v in zip(todo, self.inner.encode(todo, batch_size=batch_size)):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts])


def fill_vectors(db: str, work: Path, embed_all: bool = False) -> dict:
    """Every paper's vector, stored as `paperfeed index` stores them (see the docstring)."""
    from paperfeed.config import load_settings
    from paperfeed.search.index import embed_missing, load_embedder
    from paperfeed.store import open_store

    settings = load_settings(env=cli_env(db, work))
    embedder = load_embedder(settings)
    store = open_store(db)
    t = time.perf_counter()
    n = embed_missing(store, embedder if embed_all else _OncePerText(embedder),
                      progress=sys.stderr.isatty())  # fmt: skip
    store.close()
    return {"vectors": n, "seconds": round(time.perf_counter() - t, 1)}


def cli_env(db: Path | str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
    env["PAPERFEED_DB"] = str(db)
    env["PAPERFEED_CACHE_DIR"] = os.environ.get("PAPERFEED_CACHE_DIR", str(work / "cache"))
    env["PAPERFEED_PROGRESS"] = "false"
    env["PAPERFEED_SECRET"] = "bench-secret-0123456789abcdef"
    return env


def run_index(db: Path | str, work: Path) -> dict:
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "paperfeed", "index", "--json"],
        env=cli_env(db, work), capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"paperfeed index failed:\n{proc.stderr[-3000:]}")
    out = proc.stdout.strip().splitlines()
    result = json.loads(out[-1]) if out else {}
    print(f"paperfeed index: {time.perf_counter() - t:.0f}s {result}", file=sys.stderr)
    return result


def start_server(
    db: Path | str, work: Path, workers: int, code: Path = ROOT
) -> tuple[subprocess.Popen, str]:
    """`paperfeed serve` from the code in ``code`` (this tree, or a git worktree of an
    earlier commit for a side-by-side baseline)."""
    log = open(work / "serve.log", "w")
    env = cli_env(db, work)
    env["PYTHONPATH"] = str(code)
    proc = subprocess.Popen(
        [sys.executable, "-m", "paperfeed", "serve", "--host", LOOPBACK, "--port", "0",
         "--workers", str(workers)],
        env=env, stdout=subprocess.PIPE, stderr=log, text=True, cwd=code,
    )  # fmt: skip
    line = proc.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"serve did not start: {line!r}; see {work / 'serve.log'}")
    # The URL is printed before uvicorn binds its workers: wait until the port answers.
    import socket

    host, port = m.group(1).rsplit(":", 1)
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection((LOOPBACK, int(port)), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"serve never accepted connections; see {work / 'serve.log'}")
            time.sleep(0.2)
    return proc, m.group(1)


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(2)  # SIGINT: uvicorn's supervisor stops its workers
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- load generators -----------------------------------------------------------------------
_LUA = r"""
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def run_wrk(base: str, paths: list[str], duration: int, connections: int, work: Path) -> dict:
    script = work / "rotate.lua"
    script.write_text(_LUA % ", ".join(json.dumps(p) for p in paths))
    proc = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--timeout", "30s",
         "-s", str(script), base + paths[0]],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    m = re.search(r"WRKJSON (\{.*\})", proc.stdout)
    r = json.loads(m.group(1))
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {
        "requests": r["requests"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "errors": errors,
        "non_2xx_3xx": r["status"],
    }


async def _python_load(base: str, paths: list[str], duration: int, connections: int) -> dict:
    import httpx

    lat: list[float] = []
    errors = statuses = 0
    stop = time.perf_counter() + duration
    counter = iter(range(10**12))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, statuses
        while time.perf_counter() < stop:
            path = paths[next(counter) % len(paths)]
            t = time.perf_counter()
            try:
                r = await client.get(base + path)
                if r.status_code >= 400:
                    statuses += 1
            except httpx.HTTPError:
                errors += 1
                continue
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    return {
        "requests": len(lat),
        "rps": len(lat) / elapsed,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "max_ms": (lat[-1] if lat else 0) * 1000,
        "errors": errors + statuses,
        "non_2xx_3xx": statuses,
    }


def warm_up(base: str, targets: dict[str, list[str]]) -> None:
    """Every worker loads the model and opens the indexes before the clock starts: requests
    go out 8 at a time on separate connections, so each worker process gets some."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    def get(path: str) -> None:
        r = httpx.get(base + path, timeout=300)
        if r.status_code != 200:
            raise SystemExit(f"warm-up: {path} answered {r.status_code}: {r.text[:300]}")

    with ThreadPoolExecutor(8) as pool:
        for paths in targets.values():
            list(pool.map(get, (paths * 32)[:32]))


def split_tail(work: Path, n: int, m: int) -> Path:
    """M papers that are not among the database's N (the generator's records N..N+M)."""
    from import_bench import generate

    tail = work / f"beside-{n}-{m}.jsonl"
    if tail.exists():
        return tail
    full = work / f"snapshot-{n + m}.jsonl"
    if not full.exists():
        generate(full, n + m)
    with open(full, encoding="utf-8") as src, open(tail, "w", encoding="utf-8") as out:
        for i, line in enumerate(src):
            if i >= n:
                out.write(line)
    return tail


def copy_db(db: Path, work: Path) -> Path:
    """A scratch copy of the database and its indexes (the import changes them)."""
    import sqlite3

    dst = work / "beside.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(dst) + suffix).unlink(missing_ok=True)
    shutil.rmtree(str(dst) + ".index", ignore_errors=True)
    src_conn, dst_conn = sqlite3.connect(db), sqlite3.connect(dst)
    src_conn.backup(dst_conn)
    src_conn.close()
    dst_conn.close()
    shutil.copytree(str(db) + ".index", str(dst) + ".index")
    return dst


async def _timed_load(base: str, paths: list[str], connections: int, until) -> dict:
    """Like _python_load, but for as long as ``until()`` is false; latencies of answers."""
    import httpx

    lat: list[float] = []
    errors = 0
    notes: set[str] = set()
    counter = iter(range(10**12))
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not until():
            path = paths[next(counter) % len(paths)]
            t = time.perf_counter()
            try:
                r = await client.get(base + path)
            except httpx.HTTPError:
                errors += 1
                continue
            lat.append(time.perf_counter() - t)
            if r.status_code != 200:
                errors += 1
            elif len(notes) < 5:
                notes.update(n for n in r.json()["notes"] if "not searchable yet" in n)

    t0 = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    elapsed = time.perf_counter() - t0
    lat.sort()
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
    return {
        "requests": len(lat), "rps": len(lat) / elapsed, "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000, "max_ms": (lat[-1] if lat else 0) * 1000, "errors": errors,
        "seconds": elapsed, "notes_seen": sorted(notes)[:2],
    }  # fmt: skip


def beside_import(args, db: Path, work: Path) -> dict:
    """`/api/search` latency while `paperfeed import` adds --import-beside papers."""
    import httpx

    tail = split_tail(work, args.n, args.import_beside)
    scratch = copy_db(db, work)
    paths = [f"/api/search?q={quote_plus(q)}" for q in queries()]
    proc, base = start_server(scratch, work, args.workers)
    try:
        warm_up(base, {"/api/search": paths})
        idle = asyncio.run(_python_load(base, paths, min(args.duration, 15), args.connections))
        print(f"idle        /api/search {idle['rps']:7.1f} req/s  p50 {idle['p50_ms']:7.1f} ms"
              f"  p99 {idle['p99_ms']:7.1f} ms", file=sys.stderr)  # fmt: skip
        t0 = time.perf_counter()
        importer = subprocess.Popen(
            [sys.executable, "-m", "paperfeed", "import", str(tail), "--json"],
            env=cli_env(scratch, work), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT,
        )  # fmt: skip
        during = asyncio.run(_timed_load(base, paths, args.connections,
                                         lambda: importer.poll() is not None))  # fmt: skip
        out, err = importer.communicate()
        import_s = time.perf_counter() - t0
        if importer.returncode != 0:
            raise SystemExit(f"import failed: {err[-2000:]}")
        # Then: how long until the background indexer has every new paper.
        probe = f"{base}/api/search?q=model&mode=keyword"
        while any("not searchable yet" in n for n in httpx.get(probe, timeout=60).json()["notes"]):
            time.sleep(0.2)
        caught_up_s = time.perf_counter() - t0 - import_s
        print(f"during import /api/search {during['rps']:7.1f} req/s  p50 {during['p50_ms']:7.1f} ms"
              f"  p99 {during['p99_ms']:7.1f} ms  max {during['max_ms']:7.1f} ms  errors "
              f"{during['errors']}; import of {args.import_beside} took {import_s:.0f}s, index "
              f"caught up {caught_up_s:.1f}s after it", file=sys.stderr)  # fmt: skip
    finally:
        stop_server(proc)
    return {
        "papers": args.n, "imported_beside": args.import_beside, "workers": args.workers,
        "connections": args.connections, "cpu_count": os.cpu_count(),
        "import": json.loads(out.strip().splitlines()[-1]), "import_s": round(import_s, 1),
        "index_caught_up_after_s": round(caught_up_s, 1),
        "idle": {k: round(v, 2) if isinstance(v, float) else v for k, v in idle.items()},
        "during_import": {k: round(v, 2) if isinstance(v, float) else v
                          for k, v in during.items()},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="papers in the database")
    ap.add_argument("--duration", type=int, default=60, help="seconds per target")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections")
    ap.add_argument("--workers", type=int, default=2, help="`paperfeed serve` worker processes")
    ap.add_argument("--runs", type=int, default=1, help="runs per target (medians reported)")
    ap.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto",
                    help="load generator (auto: wrk when installed)")  # fmt: skip
    ap.add_argument("--no-index", action="store_true",
                    help="skip `paperfeed index` (search then uses whatever index exists)")  # fmt: skip
    ap.add_argument("--import-beside", type=int, default=0, metavar="M",
                    help="measure /api/search while `paperfeed import` adds M papers")  # fmt: skip
    ap.add_argument("--baseline", default="",
                    help="a checkout of earlier code (git worktree add DIR COMMIT) served the same "
                         "way, interleaved with this tree, for ratios from the same run")  # fmt: skip
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite",
                    help="which database `paperfeed serve` runs on (both: interleaved, ratios)")  # fmt: skip
    ap.add_argument("--pg-admin-url", default="",
                    help="PostgreSQL server for --backend postgres (default: a throwaway one)")  # fmt: skip
    ap.add_argument("--embed-all", action="store_true",
                    help="embed every paper's text (default: each distinct text once)")  # fmt: skip
    ap.add_argument("--prepare", action="store_true",
                    help="only build the database and its indexes, then stop")  # fmt: skip
    ap.add_argument("--keep", default=str(ROOT / "bench" / "out" / "web"),
                    help="folder for the database (reused on the next run); '' for a temp one")  # fmt: skip
    args = ap.parse_args()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pf-web-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "python")

    db = build_db(work, args.n)
    vectors = {} if args.no_index else fill_vectors(str(db), work, args.embed_all)
    index = {} if args.no_index else run_index(db, work)
    dbs: dict[str, Path | str] = {}
    if args.backend in ("sqlite", "both"):
        dbs["sqlite"] = db
    pg = pg_import = None
    if args.backend in ("postgres", "both"):
        sys.path.insert(0, str(ROOT / "bench"))
        from import_bench import PgDatabases

        pg = PgDatabases(args.pg_admin_url)
        url = pg.new()
        pg_import = import_into(url, work / f"snapshot-{args.n}.jsonl")
        fill_vectors(url, work, args.embed_all)
        run_index(url, work)
        dbs["postgres"] = url
    try:
        if args.prepare:
            return
        serve(args, work, tool, dbs, db, {"vectors": vectors, "index": index,
                                          "postgres_import": pg_import})  # fmt: skip
    finally:
        if pg is not None:
            pg.close()


def serve(args, work: Path, tool: str, dbs: dict, db: Path, built: dict) -> None:
    """The load runs of main(): every target on every (code, database) configuration."""
    if args.import_beside:
        print(json.dumps({"built": built, **beside_import(args, db, work)}))
        return
    qs = queries()
    pool = all_queries()
    warm = pool[:32]  # warm-up queries: never part of the all-distinct mix
    distinct = pool[32:]
    targets = {
        "/": ["/"],
        "/search?q=...": [f"/search?q={quote_plus(q)}" for q in qs],
        "/api/search?q=...": [f"/api/search?q={quote_plus(q)}" for q in qs],
        "/api/search zipf": [f"/api/search?q={quote_plus(q)}" for q in zipf_mix(qs)],
        "/api/search distinct": [f"/api/search?q={quote_plus(q)}" for q in distinct],
    }
    warm_targets = {"/": ["/"], "/search?q=...": targets["/search?q=..."],
                    "/api/search": [f"/api/search?q={quote_plus(q)}" for q in warm]}
    # Configurations served, interleaved run by run: this tree on each database asked for,
    # and the baseline checkout on the first.
    codes: dict[str, tuple[Path, Path | str]] = {}
    for backend, where in dbs.items():
        codes["now" if len(dbs) == 1 else backend] = (ROOT, where)
    if args.baseline:
        codes["baseline"] = (Path(args.baseline).resolve(), next(iter(dbs.values())))
    from paperfeed.search.cpu import cpu_info

    print(f"CPU: {cpu_info().summary()}; load avg {os.getloadavg()}", file=sys.stderr)
    runs: dict[str, dict[str, list[dict]]] = {c: {name: [] for name in targets} for c in codes}
    search_mode = search_notes = None
    for run in range(args.runs):
        for code_name, (code, where) in codes.items():  # interleaved: load hits all alike
            proc, base = start_server(where, work, args.workers, code)
            try:
                warm_up(base, warm_targets)
                import httpx

                probe = httpx.get(base + targets["/api/search?q=..."][0], timeout=60).json()
                if search_mode is None:
                    search_mode, search_notes = probe["mode"], probe["notes"]
                for name, paths in targets.items():
                    if tool == "wrk":
                        r = run_wrk(base, paths, args.duration, args.connections, work)
                    else:
                        r = asyncio.run(_python_load(base, paths, args.duration, args.connections))
                    runs[code_name][name].append(r)
                    print(f"run {run + 1} {code_name:<8} {name:<22} {r['rps']:8.1f} req/s"
                          f"  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms"
                          f"  errors {r['errors']}", file=sys.stderr)  # fmt: skip
            finally:
                stop_server(proc)
    results: dict[str, dict] = {}
    for code_name, per in runs.items():
        results[code_name] = {}
        for name, rs in per.items():
            results[code_name][name] = {
                "median_rps": statistics.median(r["rps"] for r in rs),
                "median_p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "median_p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "max_ms": max(r["max_ms"] for r in rs),
                "requests": sum(r["requests"] for r in rs),
                "errors": sum(r["errors"] for r in rs),
            }
    pairs = [("now", "baseline")] if "baseline" in results else []
    if "postgres" in results and "sqlite" in results:
        pairs.append(("postgres", "sqlite"))
    for a, b in pairs:
        print(f"-- {a} / {b}", file=sys.stderr)
        for name in targets:
            now, base_r = results[a][name], results[b][name]
            ratio = now["median_rps"] / max(base_r["median_rps"], 1e-9)
            print(f"{name:<22} {a} {now['median_rps']:8.1f} req/s (p99 {now['median_p99_ms']:.0f} ms)"
                  f"  {b} {base_r['median_rps']:8.1f} req/s (p99 {base_r['median_p99_ms']:.0f} ms)"
                  f"  ratio {ratio:.2f}x", file=sys.stderr)  # fmt: skip
    print(json.dumps({
        "papers": args.n, "duration_s": args.duration, "connections": args.connections,
        "workers": args.workers, "runs": args.runs, "tool": tool, "cpu_count": os.cpu_count(),
        "cpu": cpu_info().summary(), "loadavg_end": os.getloadavg(),
        "baseline": args.baseline or None,
        "search_mode": search_mode, "search_notes": search_notes, "built": built,
        "results": {c: {k: {m: round(v, 2) if isinstance(v, float) else v for m, v in r.items()}
                        for k, r in per.items()} for c, per in results.items()},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
