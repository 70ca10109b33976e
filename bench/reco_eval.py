""""For you" quality on SciFact train, and what ranking costs at digest scale.

Quality. Each SciFact train claim that cites two or more corpus papers is one reader's
interest: the first cited paper (in qrels order) goes in the reader's library, and the whole
corpus minus that paper is ranked; the other cited papers are the relevant ones. Three
rankers, in one run, on the same readers:

* ``classifier``: what paperfeed.rank.foryou trains (logistic regression, class-balanced,
  the saved paper against ``foryou_negatives`` papers sampled from the corpus, seeded per
  reader), scoring every paper's stored all-MiniLM-L6-v2 vector;
* ``nearest``: cosine of each paper with the saved paper's vector;
* ``bm25-title``: paperfeed's keyword search (tantivy BM25) with the saved paper's title as
  the query.

Reported: recall@10 and nDCG@10 (paperfeed.search.metrics), and the median time to train one
reader's model.

Scale. Ranking 100,000 papers (SciFact's real vectors, mixed and jittered as in
bench/search_bench.py, then renormalised) for one reader, and for 10,000 readers at once the
way ``recommend_many`` does it: blocks of 256 readers' weights in one matrix product, then
each reader's top 20.

The SciFact database (imported and embedded once, about two minutes on 2 cores) is the
cache that ``paperfeed eval beir`` and bench/search_bench.py share.

    python bench/reco_eval.py
    python bench/reco_eval.py --readers 1000 --papers 20000 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from paperfeed.config import load_settings  # noqa: E402
from paperfeed.rank.foryou import _fit, _sample, _Window  # noqa: E402
from paperfeed.search import search  # noqa: E402
from paperfeed.search.evaluate import eval_db_path, eval_settings, load_beir, prepare_eval_store  # noqa: E402
from paperfeed.search.index import load_embedder  # noqa: E402
from paperfeed.search.metrics import ndcg_at_k, recall_at_k  # noqa: E402
from paperfeed.sources.beir import namespace_for  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "data" / "scifact-beir"
K = 10
BLOCK = 256
TOP = 20


def load(folder: Path, settings):
    corpus, _queries, qrels = load_beir(folder, "train")
    db = eval_db_path(corpus, settings)
    s = eval_settings(settings, db)
    store, _ = prepare_eval_store(corpus, db, s, progress=True)
    emb = load_embedder(s)
    vecs = {}
    for batch in store.iter_embeddings(emb.model_id):
        for _, pk, blob in batch:
            vecs[pk] = np.frombuffer(blob, dtype="<f4")
    pks = np.array(sorted(vecs), dtype=np.int64)
    X = np.stack([vecs[int(p)] for p in pks]).astype(np.float32)
    papers = store.get_papers_by_pk([int(p) for p in pks])
    ns = namespace_for(corpus)
    by_doc = {sp.paper.id[len(ns) + 1 :]: pk for pk, sp in papers.items()}
    titles = {pk: sp.paper.title for pk, sp in papers.items()}
    return store, s, pks, X, by_doc, titles, qrels


def readers_of(qrels, by_doc) -> list[tuple[int, dict[int, int]]]:
    """(saved pk, {relevant pk: grade}) per claim citing two or more corpus papers."""
    out = []
    for qid in sorted(qrels, key=lambda q: int(q) if q.isdigit() else q):
        cited = [d for d, r in qrels[qid].items() if r > 0 and d in by_doc]
        if len(cited) >= 2:
            out.append((by_doc[cited[0]], {by_doc[d]: 1 for d in cited[1:]}))
    return out


def top_pks(pks: np.ndarray, scores: np.ndarray, saved: int, k: int = K) -> list[int]:
    idx = np.argpartition(-scores, k)[: k + 1]
    ranked = [int(pks[i]) for i in idx[np.argsort(-scores[idx])]]
    return [p for p in ranked if p != saved][:k]


def quality(store, s, pks, X, titles, readers, negatives: int) -> dict:
    row = {int(p): i for i, p in enumerate(pks)}
    win = _Window(pks, X, [int(p) for p in pks])
    res = {"classifier": [], "nearest": [], "bm25-title": []}
    train_ms = []
    for saved, rel in readers:
        v = X[row[saved]]
        t = time.perf_counter()
        N = _sample(win, negatives, saved, {saved})
        w, b = _fit(v[None, :], N)
        train_ms.append((time.perf_counter() - t) * 1000)
        res["classifier"].append(top_pks(pks, X @ w + b, saved))
        res["nearest"].append(top_pks(pks, X @ v, saved))
        hits = search(store, titles[saved], mode="keyword", limit=K + 1, settings=s).hits
        res["bm25-title"].append([h.pk for h in hits if h.pk != saved][:K])
    out = {}
    for name, runs in res.items():
        rel_s = [{str(p): g for p, g in rel.items()} for _, rel in readers]
        ranked = [[str(p) for p in run] for run in runs]
        out[name] = {
            "recall@10": round(statistics.fmean(recall_at_k(r, q, K) for r, q in zip(ranked, rel_s)), 4),
            "ndcg@10": round(statistics.fmean(ndcg_at_k(r, q, K) for r, q in zip(ranked, rel_s)), 4),
        }
    out["train_ms_median"] = round(statistics.median(train_ms), 2)
    out["train_ms_p95"] = round(float(np.percentile(train_ms, 95)), 2)
    return out


def synth(X: np.ndarray, n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = X[rng.integers(0, len(X), n)]
    b = X[rng.integers(0, len(X), n)]
    w = rng.uniform(0.6, 1.0, (n, 1)).astype(np.float32)
    V = w * a + (1 - w) * b + rng.normal(0, 0.01, a.shape).astype(np.float32)
    return (V / np.linalg.norm(V, axis=1, keepdims=True)).astype(np.float32)


def scale(X: np.ndarray, n_papers: int, n_readers: int, negatives: int) -> dict:
    V = synth(X, n_papers)
    pks = np.arange(1, n_papers + 1, dtype=np.int64)
    win = _Window(pks, V, list(range(1, n_papers + 1)))
    rng = np.random.default_rng(3)
    # Readers' models: trained like the classifier, on 1-3 saved papers each (a sample of
    # real fits, reused round-robin: 10,000 fits would time training, not ranking).
    fits = []
    for i in range(64):
        P = V[rng.integers(0, n_papers, rng.integers(1, 4))]
        fits.append(_fit(P, _sample(win, negatives, i, set())))
    W = np.stack([fits[i % len(fits)][0] for i in range(n_readers)]).astype(np.float32)
    b = np.array([fits[i % len(fits)][1] for i in range(n_readers)], dtype=np.float32)
    t = time.perf_counter()
    reps = 20
    for _ in range(reps):
        s1 = V @ W[0] + b[0]
        np.argpartition(-s1, TOP)[:TOP]
    one = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for i in range(0, n_readers, BLOCK):
        S = V @ W[i : i + BLOCK].T + b[i : i + BLOCK]
        np.argpartition(-S, TOP, axis=0)[:TOP]
    many = time.perf_counter() - t
    return {
        "papers": n_papers,
        "readers": n_readers,
        "rank_one_reader_ms": round(one * 1000, 2),
        "rank_all_readers_s": round(many, 2),
        "per_reader_ms_in_batch": round(many / n_readers * 1000, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--beir", type=Path, default=SCIFACT, help="BEIR folder (SciFact).")
    ap.add_argument("--papers", type=int, default=100_000, help="Papers ranked in the scale test.")
    ap.add_argument("--readers", type=int, default=10_000, help="Readers ranked at once.")
    ap.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = ap.parse_args()
    settings = load_settings()
    store, s, pks, X, by_doc, titles, qrels = load(args.beir, settings)
    readers = readers_of(qrels, by_doc)
    if not readers:
        sys.exit(f"{args.beir}: no train claim cites two or more corpus papers")
    q = quality(store, s, pks, X, titles, readers, settings.foryou_negatives)
    store.close()
    sc = scale(X, args.papers, args.readers, settings.foryou_negatives)
    out = {"corpus": str(args.beir), "readers_evaluated": len(readers), "quality": q, "scale": sc}
    if args.json:
        print(json.dumps(out))
        return
    print(f"SciFact train: {len(readers)} readers (claims citing 2+ papers), corpus {len(pks)} papers")
    for name in ("classifier", "nearest", "bm25-title"):
        print(f"  {name:<11} recall@10 {q[name]['recall@10']:.4f}  nDCG@10 {q[name]['ndcg@10']:.4f}")
    print(f"  train one reader: median {q['train_ms_median']} ms, p95 {q['train_ms_p95']} ms")
    print(f"ranking {sc['papers']:,} papers: one reader {sc['rank_one_reader_ms']} ms; "
          f"{sc['readers']:,} readers at once {sc['rank_all_readers_s']} s "
          f"({sc['per_reader_ms_in_batch']} ms per reader)")  # fmt: skip


if __name__ == "__main__":
    main()
