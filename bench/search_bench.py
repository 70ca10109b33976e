"""Search latency, index build time and memory at 100,000 and 1,000,000 papers.

What the papers are: synthetic papers made from real ones. Each takes its title and the
first sentences of its abstract from a real SciFact abstract and the rest of its abstract
from one or two others; its vector is the same mixture of those abstracts' real
all-MiniLM-L6-v2 vectors (weights 0.6-1.0 for the first, the rest for the others) plus
a little Gaussian noise, renormalised. So the text has real vocabulary and the vectors
real structure (clusters, neighbourhoods, the query-document geometry of the real
model), which uniform noise would not have. Embedding a million abstracts on 2 cores
would take hours, so the vectors are not recomputed from the mixed text. Authors,
categories (arXiv's, Zipf-weighted) and dates (2007-2026) are drawn at random.

Queries: the SciFact train claims (real questions about this vocabulary), each embedded
by the real model inside the timed call: latency is ``paperfeed.search.search`` end to
end (query parsing, embedding, keyword and vector search, fusion, loading the hits).

Baseline: arxiv-sanity-lite's search scans every paper per query (a weighted count of the
query words in each paper's authors, title and abstract). An equivalent scan is written
here (not their code) and run on the 100,000 set; the ratio to our hybrid p50 is printed.

Each size runs in a child process, so its peak RSS is its own.

PostgreSQL (``--backend postgres``, or ``--db-url postgresql://...`` for a server of your
own): the same papers and vectors go into a fresh database per size (the fill then includes
each paper's tsvector and its GIN entry: the import cost of keyword search there), and the
same searches run on the database's keyword search and the in-memory vectors each process
loads from it (the "vector build" is that load). Without a URL a throwaway server is started
from tests/pg_support.py: fsync and full-page writes off, shared_buffers 512 MB, so its
fill figures are an upper bound for a durable server. A URL names a database the bench
empties itself ("papers-N" suffixes are not added: one size per URL).

    python bench/search_bench.py                       # 100k and 1M (about 20-30 min)
    python bench/search_bench.py --sizes 100000 --queries 100
    python bench/search_bench.py --sizes 5000 --backend postgres
    python bench/search_bench.py --quality             # SciFact nDCG@10: modes, bm25s, RRF
    python bench/search_bench.py --quality --backend postgres   # the same on PostgreSQL
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paperfeed.config import load_settings  # noqa: E402
from paperfeed.models import Paper  # noqa: E402
import paperfeed.search.engine  # noqa: E402,F401 (imported now: editing the tree mid-run is safe)
from paperfeed.search import search  # noqa: E402
from paperfeed.search.evaluate import (  # noqa: E402
    eval_db_path,
    eval_settings,
    load_beir,
    percentile,
    prepare_eval_store,
)
from paperfeed.search.index import IndexPaths, load_embedder, sync_keyword  # noqa: E402
from paperfeed.search.keyword import KeywordIndex  # noqa: E402
from paperfeed.search.text import doc_text, text_hash  # noqa: E402
from paperfeed.search.vectors import StoreVectors, VectorIndex  # noqa: E402
from paperfeed.sources.beir import namespace_for  # noqa: E402
from paperfeed.store import is_postgres_url, open_store, redact_url  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "data" / "scifact-beir"
OUT = ROOT / "bench" / "out" / "search"

CATS = ["cs.LG", "cs.CV", "cs.CL", "cs.AI", "stat.ML", "quant-ph", "hep-ph", "hep-th",
        "cond-mat.mtrl-sci", "cond-mat.mes-hall", "astro-ph.GA", "astro-ph.CO", "math.PR",
        "math.OC", "math.AP", "physics.optics", "eess.SP", "q-bio.NC", "q-bio.BM", "cs.RO",
        "cs.CR", "cs.DS", "econ.EM", "gr-qc", "nucl-th", "math.CO", "cs.IR", "cs.NE"]
_SENT = re.compile(r"(?<=[.!?])\s+")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dir_mb(p: Path) -> float:
    if p.is_file():
        return p.stat().st_size / 1e6
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 1e6


def real_material(settings):
    """SciFact abstracts with their real vectors (embedded once into the cached eval db)."""
    corpus, queries, _ = load_beir(SCIFACT, "train")
    db = eval_db_path(corpus, settings)
    s = eval_settings(settings, db)
    store, info = prepare_eval_store(corpus, db, s, progress=True)
    emb = load_embedder(s)
    vecs = {}
    for batch in store.iter_embeddings(emb.model_id):
        for _, pk, blob in batch:
            vecs[pk] = np.frombuffer(blob, dtype="<f4")
    papers = store.get_papers_by_pk(list(vecs))
    store.close()
    pks = sorted(vecs)
    docs = [(papers[pk].paper.title, _SENT.split(papers[pk].paper.abstract)) for pk in pks]
    return docs, np.stack([vecs[pk] for pk in pks]), list(queries.values()), emb


def synth(n: int, docs, V: np.ndarray, seed: int = 11):
    """Yield (Paper, vector) batches of synthetic papers (see the module docstring)."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    R, dim = V.shape
    first = ["Ana", "Bo", "Chen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal",
             "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Rosa", "Sven", "Yuki", "Zoe"]
    last = [f"{a}{b}" for a in ("Ka", "Lo", "Mi", "Ne", "Sa", "To", "Va", "Ru", "Be", "Di")
            for b in ("nsen", "rova", "tani", "mura", "ller", "berg", "ez", "ski", "wang", "ri")]
    cat_w = [1 / (i + 1) for i in range(len(CATS))]
    batch = 20_000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        src = nrng.integers(0, R, size=(m, 3))
        k = nrng.choice([1, 2, 3], size=m, p=[0.4, 0.4, 0.2])
        w0 = nrng.uniform(0.6, 1.0, size=m)
        w = np.zeros((m, 3), dtype=np.float32)
        w[:, 0] = w0
        rest = 1 - w0
        w[:, 1] = np.where(k >= 2, rest * np.where(k == 3, 0.6, 1.0), 0)
        w[:, 2] = np.where(k == 3, rest * 0.4, 0)
        vec = (V[src] * w[:, :, None]).sum(axis=1)
        vec += nrng.normal(0, 0.02, size=vec.shape).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        papers = []
        for j in range(m):
            i = start + j
            title, s0 = docs[src[j, 0]]
            cut = max(1, int(len(s0) * w0[j]))
            sents = list(s0[:cut])
            for t in range(1, k[j]):
                other = docs[src[j, t]][1]
                sents += other[len(other) // 2:][:2]
            day = rng.randrange(0, 7100)  # 2007-01-01 .. 2026-06
            y, doy = 2007 + day // 365, day % 365
            published = f"{y:04d}-{1 + doy // 31 % 12:02d}-{1 + doy % 28:02d}T00:00:00Z"
            cats = rng.choices(CATS, weights=cat_w, k=rng.randint(1, 3))
            papers.append(Paper(
                id=f"bench:{i}",
                title=title,
                abstract=" ".join(sents),
                authors=[f"{rng.choice(first)} {rng.choice(last)}"
                         for _ in range(rng.randint(1, 6))],
                categories=list(dict.fromkeys(cats)),
                published=published,
                source="bench",
            ))
        yield papers, vec.astype("<f4")


def fill(store, n: int, docs, V, emb) -> float:
    """Store n synthetic papers and their vectors (as `paperfeed index` would have embedded
    them); the seconds it took."""
    t0 = time.perf_counter()
    done = 0
    for papers, vecs in synth(n, docs, V):
        store.upsert_papers(papers)
        rev = store.max_rev()
        # A fresh database numbers papers in insertion order: pk = position + 1.
        last = store.get_paper(papers[-1].id)
        assert last is not None and last.pk == done + len(papers)
        rows = [
            (done + j + 1, rev, text_hash(doc_text(p)), vecs[j].tobytes())
            for j, p in enumerate(papers)
        ]
        store.put_embeddings(emb.model_id, emb.dim, rows)
        done += len(papers)
    store.set_checkpoint(f"embed:{emb.model_id}", store.max_rev())
    return time.perf_counter() - t0


def build(n: int, workdir: Path, settings, docs, V, emb) -> dict:
    db = workdir / f"papers-{n}.db"
    for p in workdir.glob(f"papers-{n}.db*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    store = open_store(str(db))
    fill_s = fill(store, n, docs, V, emb)
    paths = IndexPaths(Path(str(db) + ".index"))
    t0 = time.perf_counter()
    ki = KeywordIndex(paths.keyword)
    sync_keyword(store, ki)
    kw_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    vi = VectorIndex(paths.vectors(emb.model_id), emb.model_id, emb.dim,
                     settings.exact_search_max)
    vi.sync(store)
    vec_s = time.perf_counter() - t0
    paths.current.write_text(json.dumps({"model_id": emb.model_id, "dim": emb.dim}))
    store.close()
    return {
        "db": str(db),
        "fill_s": round(fill_s, 1),
        "keyword_build_s": round(kw_s, 1),
        "vector_build_s": round(vec_s, 1),
        "hnsw": vi.state().get("hnsw_rows", 0) > 0,
        "keyword_mb": round(_dir_mb(paths.keyword), 1),
        "vectors_mb": round(_dir_mb(paths.vectors(emb.model_id)), 1),
        "db_mb": round(_dir_mb(db), 1),
    }


def _empty_pg(url: str) -> None:
    """Drop what an earlier run left in the bench's PostgreSQL database (it is the bench's)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP SCHEMA IF EXISTS public CASCADE")
        c.execute("CREATE SCHEMA public")


def build_pg(n: int, url: str, settings, docs, V, emb) -> dict:
    """``build`` on PostgreSQL: no index to build (the words are indexed as rows are
    written); the vector figure is one process loading every stored vector."""
    _empty_pg(url)
    store = open_store(url)
    fill_s = fill(store, n, docs, V, emb)
    store.set_checkpoint(f"vectors-current:{emb.model_id}", int(time.time() * 1000))
    with store._read() as conn:
        # Statistics as autovacuum would leave them: search weighs words with them.
        conn.raw.execute("ANALYZE papers")
        sizes = conn.raw.execute(
            "SELECT pg_database_size(current_database()), pg_relation_size('papers_search'), "
            "pg_total_relation_size('embeddings')"
        ).fetchone()
    t0 = time.perf_counter()
    vi = StoreVectors(emb.model_id, emb.dim)
    vi.follow(store)
    vec_s = time.perf_counter() - t0
    assert vi.size == n
    store.close()
    return {
        "db": url,
        "fill_s": round(fill_s, 1),
        "keyword_build_s": 0.0,
        "vector_build_s": round(vec_s, 1),
        "hnsw": False,
        "keyword_mb": round(sizes[1] / 1e6, 1),
        "vectors_mb": round(sizes[2] / 1e6, 1),
        "db_mb": round(sizes[0] / 1e6, 1),
        "backend": "postgres",
    }


def time_queries(store, settings, queries, mode, **filters) -> dict:
    for q in queries[:10]:  # warm-up: model, indexes and page cache
        search(store, q, mode=mode, limit=10, settings=settings, **filters)
    times = []
    used = set()
    for q in queries:
        t0 = time.perf_counter()
        res = search(store, q, mode=mode, limit=10, settings=settings, **filters)
        times.append((time.perf_counter() - t0) * 1000)
        used.add(res.mode)
    return {"p50_ms": round(percentile(times, 50), 2), "p99_ms": round(percentile(times, 99), 2),
            "mode_used": "/".join(sorted(used))}


def scan_baseline(db: str, queries: list[str]) -> dict:
    """arxiv-sanity-lite's way: score every paper per query by counting the query words in
    its authors (x10 if present), title (x20 if present) and abstract (count, capped at 3)."""
    store = open_store(db)
    corpus = []
    for batch in store.iter_changed(0, 20000):
        for sp in batch:
            p = sp.paper
            corpus.append((p.id, " ".join(p.authors).lower(), p.title.lower(), p.abstract.lower()))
    store.close()
    times = []
    for q in queries:
        words = q.lower().split()
        t0 = time.perf_counter()
        scored = []
        for pid, authors, title, abstract in corpus:
            s = 0.0
            for w in words:
                s += 10.0 * (w in authors) + 20.0 * (w in title) + min(3, abstract.count(w))
            if s > 0:
                scored.append((s, pid))
        scored.sort(reverse=True)
        times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(percentile(times, 50), 1), "p99_ms": round(percentile(times, 99), 1),
            "queries": len(queries)}


def one_size(n: int, nq: int, workdir: Path, baseline: bool, reuse: bool = False,
             db_url: str | None = None) -> dict:
    settings = load_settings()
    docs, V, queries, emb = real_material(settings)
    out: dict = {"papers": n, "model_id": emb.model_id,
                 "backend": "postgres" if db_url else "sqlite"}
    saved = workdir / f"build-{'pg-' if db_url else ''}{n}.json"
    if reuse and saved.exists() and json.loads(saved.read_text()).get("model_id") == emb.model_id:
        out["build"] = json.loads(saved.read_text())["build"]
        out["build"]["reused"] = True
        if db_url:
            out["build"]["db"] = db_url
    elif db_url:
        out["build"] = build_pg(n, db_url, settings, docs, V, emb)
        saved.write_text(json.dumps({"model_id": emb.model_id, "build": out["build"]}))
    else:
        out["build"] = build(n, workdir, settings, docs, V, emb)
        saved.write_text(json.dumps({"model_id": emb.model_id, "build": out["build"]}))
    out["rss_after_build_mb"] = round(_rss_mb())
    db = out["build"]["db"]
    s = settings.with_overrides(db=db, index_dir="")
    rng = random.Random(5)
    qs = rng.sample(queries, min(nq, len(queries)))
    store = open_store(db)
    out["latency"] = {m: time_queries(store, s, qs, m) for m in ("keyword", "semantic", "hybrid")}
    out["latency"]["hybrid+category"] = time_queries(store, s, qs, "hybrid", category="cs.CL")
    out["latency"]["hybrid+dates"] = time_queries(store, s, qs, "hybrid",
                                                  since="2015-01-01", until="2016-12-31")
    t0 = time.perf_counter()
    e = emb.encode_query(qs[0])
    for q in qs:
        e = emb.encode_query(q)
    out["query_embed_ms_mean"] = round((time.perf_counter() - t0) * 1000 / (len(qs) + 1), 2)
    del e
    store.close()
    out["peak_rss_mb"] = round(_rss_mb())
    if baseline:
        out["scan_baseline"] = scan_baseline(db, qs[: min(30, len(qs))])
        out["scan_baseline"]["ratio_to_hybrid_p50"] = round(
            out["scan_baseline"]["p50_ms"] / out["latency"]["hybrid"]["p50_ms"], 1)
    return out


def quality(split: str = "train", db_url: str | None = None) -> dict:
    """nDCG@10 on SciFact: our three modes, bm25s and plain RRF, in one run.

    Our modes go through ``paperfeed eval beir``'s code (the cached eval database). bm25s
    (k1 1.2, b 0.75, English stemmer and stop words) is the BM25 library reference the
    keyword mode must match; RRF (k 60) of our own keyword and semantic runs is the
    fusion floor the hybrid mode must beat. With ``db_url`` our modes run on PostgreSQL,
    with the vectors of the SQLite eval database (made first when missing) copied over."""
    try:
        import bm25s
        import Stemmer
    except ImportError:
        raise SystemExit("--quality compares with bm25s: pip install -e '.[bench]'") from None

    from paperfeed.search.hybrid import rrf
    from paperfeed.search.metrics import evaluate_run

    settings = load_settings()
    corpus, queries, qrels = load_beir(SCIFACT, split)
    db = eval_db_path(corpus, settings)
    s = eval_settings(settings, db)
    store, _ = prepare_eval_store(corpus, db, s, progress=True)
    if db_url:
        store.close()
        _empty_pg(db_url)
        s = eval_settings(settings, db_url)
        store, info = prepare_eval_store(corpus, db_url, s, progress=True, vectors_from=db)
        assert info["embedded"] == 0, info
    prefix = namespace_for(corpus) + ":"
    out: dict = {"split": split, "queries": len(queries),
                 "backend": "postgres" if db_url else "sqlite"}
    runs: dict[str, dict] = {}
    for mode in ("keyword", "semantic", "hybrid"):
        run, times = {}, []
        for qid, text in queries.items():
            t0 = time.perf_counter()
            # SciFact documents have no dates or authors: not listable, still searchable.
            res = search(store, text, mode=mode, limit=100, settings=s, listable_only=False)
            times.append((time.perf_counter() - t0) * 1000)
            run[qid] = {h.id.removeprefix(prefix): h.score for h in res.hits}
        runs[mode] = run
        m = evaluate_run(run, qrels)
        out[mode] = {"ndcg@10": round(m["ndcg@10"], 4), "recall@100": round(m["recall@100"], 4),
                     "p50_ms": round(percentile(times, 50), 2)}
    fused = {}
    for qid in queries:
        ranked = [sorted(runs[m][qid], key=lambda d: -runs[m][qid][d]) for m in
                  ("keyword", "semantic")]
        fused[qid] = {d: sc for d, sc in rrf(ranked)[:100]}
    out["rrf_k60"] = {"ndcg@10": round(evaluate_run(fused, qrels)["ndcg@10"], 4)}
    docs = []
    for batch in store.iter_changed(0, 20000):
        docs += [(sp.paper.id.removeprefix(prefix), f"{sp.paper.title} {sp.paper.abstract}")
                 for sp in batch]
    store.close()
    stemmer = Stemmer.Stemmer("english")
    tok = bm25s.tokenize([t for _, t in docs], stopwords="en", stemmer=stemmer,
                         show_progress=False)
    bm = bm25s.BM25(k1=1.2, b=0.75)
    bm.index(tok, show_progress=False)
    qids = list(queries)
    qtok = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer,
                          show_progress=False)
    idx, scores = bm.retrieve(qtok, k=100, show_progress=False)
    run = {q: {docs[i][0]: float(sc) for i, sc in zip(idx[j], scores[j])}
           for j, q in enumerate(qids)}
    m = evaluate_run(run, qrels)
    out["bm25s"] = {"ndcg@10": round(m["ndcg@10"], 4), "recall@100": round(m["recall@100"], 4)}
    return out


def recall_check(n: int, workdir: Path, nq: int = 50) -> dict:
    """recall@10 of the vector index against an exact scan of every vector (the queries are
    SciFact claims embedded by the real model)."""
    settings = load_settings()
    emb = load_embedder(settings)
    paths = IndexPaths(workdir / f"papers-{n}.db.index")
    vi = VectorIndex(paths.vectors(emb.model_id), emb.model_id, emb.dim,
                     settings.exact_search_max)
    snap = vi.snapshot()
    _, queries, _ = load_beir(SCIFACT, "train")
    qs = random.Random(9).sample(list(queries.values()), nq)
    hits, times = 0, []
    for q in qs:
        qv = emb.encode_query(q)
        t0 = time.perf_counter()
        got = {pk for pk, _ in vi.search(qv, 10)}
        times.append((time.perf_counter() - t0) * 1000)
        scores = np.asarray(snap.vectors) @ qv
        top = np.argpartition(-scores, 10)[:10]
        hits += len(got & {int(snap.pks[i]) for i in top})
    return {"papers": n, "hnsw": snap.hnsw is not None, "recall@10": round(hits / (10 * nq), 3),
            "search_p50_ms": round(percentile(times, 50), 2), "queries": nq}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=300, help="Queries timed per mode.")
    ap.add_argument("--workdir", type=Path, default=OUT)
    ap.add_argument("--quality", action="store_true",
                    help="Only the SciFact quality comparison (nDCG@10 of every mode, bm25s, RRF).")
    ap.add_argument("--split", default="train", help="SciFact split for --quality.")
    ap.add_argument("--recall", action="store_true",
                    help="Only recall@10 of the built vector indexes against exact search.")
    ap.add_argument("--reuse", action="store_true",
                    help="Reuse databases and indexes built by an earlier run (same model); "
                         "build figures are then the earlier run's.")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite",
                    help="postgres: a throwaway server (tests/pg_support.py) unless --db-url.")
    ap.add_argument("--db-url", help="A PostgreSQL database the bench may empty and fill "
                                     "(one size per run); implies --backend postgres.")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.db_url and not is_postgres_url(args.db_url):
        ap.error("--db-url takes a postgresql:// URL")
    if args.db_url or args.backend == "postgres":
        if args.reuse and not args.db_url:
            ap.error("--reuse on PostgreSQL needs --db-url (a throwaway server starts empty)")
        if args.recall:
            ap.error("--recall is about the vector index files (SQLite)")
        one = bool(args.one or args.quality)
        with _pg_urls(args.db_url, 1 if one else len(args.sizes)) as urls:
            _main(args, urls)
    else:
        _main(args, [None] * len(args.sizes))


class _pg_urls:
    """The databases a PostgreSQL run fills: the one given, or one per size on a throwaway
    server that is stopped at the end."""

    def __init__(self, url: str | None, n: int):
        self.url, self.n, self.server = url, n, None

    def __enter__(self) -> list[str]:
        if self.url:
            if self.n > 1:
                raise SystemExit("--db-url holds one size: pass one --sizes value")
            return [self.url]
        from tests.pg_support import start_server

        server = start_server()
        if isinstance(server, str):
            raise SystemExit(f"no PostgreSQL server: {server}")
        self.server = server
        return [server.new_database() for _ in range(self.n)]

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.stop()


def _main(args, urls: list[str | None]) -> None:
    if args.recall:
        for n in args.sizes:
            print(json.dumps(recall_check(n, args.workdir)))
        return
    from paperfeed.search.cpu import cpu_info

    if not args.one:  # figures differ between CPUs of one kind: say which one made these
        print(f"CPU: {cpu_info().summary()}, {os.cpu_count()} cores")
    if args.quality:
        q = quality(args.split, urls[0])
        print(f"SciFact {q['split']} ({q['queries']} queries, {q['backend']}), nDCG@10:")
        for name in ("keyword", "semantic", "hybrid", "rrf_k60", "bm25s"):
            extra = (f"  recall@100 {q[name]['recall@100']:.4f}" if "recall@100" in q[name]
                     else "")
            lat = f"  p50 {q[name]['p50_ms']} ms" if "p50_ms" in q[name] else ""
            print(f"  {name:<9} {q[name]['ndcg@10']:.4f}{extra}{lat}")
        print(json.dumps(q))
        return
    if args.one:
        print(json.dumps(one_size(args.one, args.queries, args.workdir, args.baseline,
                                  args.reuse, urls[0])))
        return
    results = []
    for n, url in zip(args.sizes, urls):
        cmd = [sys.executable, __file__, "--one", str(n), "--queries", str(args.queries),
               "--workdir", str(args.workdir)]
        if url:
            cmd += ["--db-url", url]
        if n == min(args.sizes) or n <= 100_000:
            cmd.append("--baseline")
        if args.reuse:
            cmd.append("--reuse")
        print(f"== {n:,} papers ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"size {n} failed")
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
        report(res)
    print(json.dumps(results))


def report(r: dict) -> None:
    b = r["build"]
    backend = r.get("backend", "sqlite")
    where = f", PostgreSQL {redact_url(b['db'])}" if backend == "postgres" else ""
    print(f"\n{r['papers']:,} papers  (model {r['model_id']}{where})")
    if b.get("reused"):
        print("  (indexes reused from an earlier run: build figures are that run's)")
    if backend == "postgres":
        print(f"  build: database fill {b['fill_s']} s with tsvector + GIN ({b['keyword_mb']} MB "
              f"GIN, {b['db_mb']} MB database), vectors {b['vectors_mb']} MB stored, loaded by "
              f"one process in {b['vector_build_s']} s (exact search in memory)")
    else:
        print(f"  build: keyword index {b['keyword_build_s']} s ({b['keyword_mb']} MB), "
              f"vector index {b['vector_build_s']} s ({b['vectors_mb']} MB, "
              f"{'HNSW int8 + exact re-score' if b['hnsw'] else 'exact'}), database fill "
              f"{b['fill_s']} s ({b['db_mb']} MB)")
    print(f"  memory: peak RSS {r['peak_rss_mb']} MB (after build {r['rss_after_build_mb']} MB)")
    print(f"  query embedding: {r['query_embed_ms_mean']} ms mean")
    for m, v in r["latency"].items():
        print(f"  {m:<16} p50 {v['p50_ms']:7.2f} ms   p99 {v['p99_ms']:7.2f} ms   ({v['mode_used']})")
    if "scan_baseline" in r:
        s = r["scan_baseline"]
        print(f"  arxiv-sanity-style scan of every paper: p50 {s['p50_ms']} ms, p99 {s['p99_ms']}"
              f" ms ({s['queries']} queries) = {s['ratio_to_hybrid_p50']}x our hybrid p50")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
