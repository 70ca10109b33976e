"""Embedding speed and retrieval quality: the sentence-transformers baseline vs the fast backends.

One run, one process, same machine, side by side:

* docs/s: a sample of SciFact abstracts (title + ". " + abstract, the 256-token cut) is cut
  into chunks; every chunk is embedded by every backend in turn (order rotated per chunk), so
  load from other processes hits all backends alike. Reported: median docs/s over chunks and
  the median over chunks of (backend docs/s / baseline docs/s).
* load: seconds for ``Embedder.load`` once the derived artefacts exist and the libraries are
  imported (a second load); ``first_load_s`` (JSON) is the first one, which includes imports
  and, on a cold cache, building the ONNX artefact.
* quality: the full corpus (5,183 docs) and the 809 train queries embedded by each backend;
  exact brute-force cosine top-100; nDCG@10 and recall@100 as trec_eval computes them
  (``paperfeed.search.metrics``); mean/min cosine of each backend's vectors with the
  baseline's. Embeddings are cached as .npy under ``<cache>/bench/`` keyed on model_id and
  the corpus hash; ``--recompute`` re-embeds.

    .venv/bin/python bench/embed_bench.py                 # speed (512 docs) + quality
    .venv/bin/python bench/embed_bench.py --limit 128 --no-quality   # quick speed check
    .venv/bin/python bench/embed_bench.py --json
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paperfeed.models import Paper  # noqa: E402
from paperfeed.search.cpu import choose_backend, cpu_info  # noqa: E402
from paperfeed.search.embed import Embedder, ModelUnavailable, default_cache_dir  # noqa: E402
from paperfeed.search.metrics import evaluate_run  # noqa: E402
from paperfeed.search.text import doc_text  # noqa: E402

DEFAULT_DATA = Path("/work/shared/data/scifact-beir")


def load_scifact(data: Path):
    with gzip.open(data / "corpus.jsonl.gz", "rt", encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    doc_ids = [d["_id"] for d in docs]
    texts = [
        doc_text(Paper(id=d["_id"], title=d.get("title", ""), abstract=d.get("text", "")))
        for d in docs
    ]
    queries = {}
    with open(data / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(data / "qrels" / "train.tsv", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)  # header
        for qid, did, rel in rows:
            qrels.setdefault(qid, {})[did] = int(rel)
    qids = [q for q in qrels if q in queries]
    return doc_ids, texts, qids, [queries[q] for q in qids], qrels


def timed_speed(
    embedders: dict[str, Embedder], texts: list[str], chunk: int, batch_size: int
) -> dict:
    names = list(embedders)
    for e in embedders.values():  # warm-up (first-shape compilation, allocator)
        e.encode(texts[:batch_size], batch_size=batch_size)
    rates: dict[str, list[float]] = {n: [] for n in names}
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    for c, part in enumerate(chunks):
        order = names[c % len(names) :] + names[: c % len(names)]
        for n in order:
            t = time.perf_counter()
            embedders[n].encode(part, batch_size=batch_size)
            rates[n].append(len(part) / (time.perf_counter() - t))
    return rates


def embed_cached(
    e: Embedder,
    texts: list[str],
    kind: str,
    cache: Path,
    corpus_key: str,
    recompute: bool,
    batch_size: int,
):
    key = hashlib.sha256(f"{e.model_id}|{corpus_key}|{kind}".encode()).hexdigest()[:16]
    path = cache / f"{kind}-{key}.npy"
    if path.is_file() and not recompute:
        return np.load(path), None
    t = time.perf_counter()
    v = e.encode(texts, batch_size=batch_size, progress=sys.stderr.isatty())
    dt = time.perf_counter() - t
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, v)
    return v, len(texts) / dt


def retrieval(Q: np.ndarray, D: np.ndarray, qids, doc_ids, qrels, k: int = 100) -> dict:
    scores = Q @ D.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    run = {qid: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, qid in enumerate(qids)}
    res = evaluate_run(run, {q: qrels[q] for q in qids}, k=10, recall_k=100)
    return {"ndcg@10": res["ndcg@10"], "recall@100": res["recall@100"], "queries": res["queries"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=512, help="docs in the speed sample (default 512)")
    ap.add_argument("--chunk", type=int, default=64, help="docs per timed chunk (default 64)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--baseline", default="torch")
    ap.add_argument(
        "--backends",
        default="auto-all",
        help="comma-separated fast backends (default: every CPU backend, plus what auto picks)",
    )
    ap.add_argument(
        "--model", default=None, help="model folder or package (default: bundled MiniLM)"
    )
    ap.add_argument("--no-quality", action="store_true", help="skip the full-corpus nDCG part")
    ap.add_argument("--recompute", action="store_true", help="re-embed even if cached .npy exist")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args(argv)

    cache = args.cache_dir or default_cache_dir()
    cpu = cpu_info()
    chosen = choose_backend(cpu)[0]
    wanted = (
        ["openvino-bf16", "openvino-f32", "onnx-int8", "onnx"]
        if args.backends == "auto-all"
        else [b for b in args.backends.split(",") if b]
    )
    names = [args.baseline] + [b for b in wanted if b != args.baseline]
    doc_ids, texts, qids, qtexts, qrels = load_scifact(args.data)
    corpus_key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]

    embedders: dict[str, Embedder] = {}
    info: dict[str, dict] = {}
    for n in list(names):
        try:
            first = Embedder.load(args.model, backend=n, cache_dir=cache, threads=args.threads)
        except ModelUnavailable as e:
            print(f"skipping {n}: {e}", file=sys.stderr)
            names.remove(n)
            continue
        again = Embedder.load(args.model, backend=n, cache_dir=cache, threads=args.threads)
        embedders[n] = again
        info[n] = {
            "model_id": again.model_id,
            "load_s": again.load_seconds,
            "first_load_s": first.load_seconds,
        }
        print(f"loaded {again.model_id} in {again.load_seconds:.2f}s", file=sys.stderr)

    # speed: a spread-out sample (every k-th doc) so it matches the corpus' length mix
    step = max(1, len(texts) // max(1, args.limit))
    sample = texts[::step][: args.limit]
    rates = timed_speed(embedders, sample, args.chunk, args.batch_size)
    base_rates = np.array(rates[args.baseline])
    for n in names:
        r = np.array(rates[n])
        info[n].update(
            docs_per_s=float(np.median(r)),
            speedup=float(np.median(r / base_rates)),
            speed_chunks=len(r),
        )

    quality_note = None
    if not args.no_quality:
        bench_cache = cache / "bench"
        vecs = {}
        for n in names:
            e = embedders[n]
            D, drate = embed_cached(
                e, texts, "docs", bench_cache, corpus_key, args.recompute, args.batch_size
            )
            Q, _ = embed_cached(
                e, qtexts, "queries", bench_cache, corpus_key, args.recompute, args.batch_size
            )
            vecs[n] = (D, Q)
            info[n].update(retrieval(Q, D, qids, doc_ids, qrels))
            info[n]["full_corpus_docs_per_s"] = drate  # None when read from cache
        BD, BQ = vecs[args.baseline]
        for n in names:
            D, Q = vecs[n]
            cd, cq = (D * BD).sum(1), (Q * BQ).sum(1)
            info[n].update(
                cos_docs_mean=float(cd.mean()),
                cos_docs_min=float(cd.min()),
                cos_queries_mean=float(cq.mean()),
                cos_queries_min=float(cq.min()),
                ndcg_delta=info[n]["ndcg@10"] - info[args.baseline]["ndcg@10"],
            )
    else:
        quality_note = "quality skipped (--no-quality)"

    meta = {
        "cpu": cpu.summary(),
        "default_backend": {"name": chosen[0], "why": chosen[1]},
        "machine": {
            "cpus": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count(),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "speed_sample_docs": len(sample),
        "chunk": args.chunk,
        "batch_size": args.batch_size,
        "corpus_docs": len(texts),
        "queries": len(qids),
        "baseline": args.baseline,
    }
    if args.json:
        print(json.dumps({"meta": meta, "backends": info}, indent=2))
        return 0

    print(f"CPU: {meta['cpu']}; {meta['machine']['cpus']} usable CPUs")
    print(f"default (auto) here: {chosen[0]}, because {chosen[1]}")
    print(
        f"SciFact: {len(texts)} docs, {len(qids)} train queries; speed sample {len(sample)} docs in "
        f"chunks of {args.chunk}, batch {args.batch_size}; load avg {meta['machine']['loadavg']}"
    )
    hdr = f"{'backend':14s} {'docs/s':>7s} {'x base':>6s} {'1st load':>8s} {'reload':>6s}"
    if quality_note is None:
        hdr += f" {'nDCG@10':>8s} {'delta':>7s} {'R@100':>6s} {'cos docs mean/min':>18s} {'cos q mean':>10s}"
    print(hdr)
    for n in names:
        i = info[n]
        line = (
            f"{n + (' *' if n == chosen[0] else ''):14s} {i['docs_per_s']:7.1f} {i['speedup']:6.2f}"
            f" {i['first_load_s']:8.2f} {i['load_s']:6.2f}"
        )
        if quality_note is None:
            line += (
                f" {i['ndcg@10']:8.4f} {i['ndcg_delta']:+7.4f} {i['recall@100']:6.4f}"
                f" {i['cos_docs_mean']:9.5f}/{i['cos_docs_min']:.5f} {i['cos_queries_mean']:10.5f}"
            )
        print(line)
    for n in names:
        print(f"  {n}: {info[n]['model_id']}")
    print("  * = the default (embed_backend = auto) on this CPU")
    if quality_note:
        print(quality_note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
