"""Evaluating search on a BEIR benchmark folder (``paperfeed eval beir``).

The folder is the standard BEIR layout: ``corpus.jsonl`` (or ``.jsonl.gz``),
``queries.jsonl`` and ``qrels/<split>.tsv``. The corpus is imported into a database of its
own and indexed (keyword and vectors) once; that database is cached, so a second run does
not re-embed. Every query of the split then goes through the same ``search`` the CLI and
the web app use, timed end to end (query embedding included), and nDCG@10 / recall@100 are
computed as trec_eval does (metrics.py).

The database may be PostgreSQL (``--db postgresql://...``, an existing empty database): the
same queries then run on its own keyword search and in-memory vectors. Vectors already made
for the same corpus in another database (``--vectors-from``, e.g. the cached SQLite one) are
copied rather than embedded again, so both backends rank with the very same vectors.
"""

from __future__ import annotations

import gzip
import hashlib
import time
from pathlib import Path

import orjson

from ..config import Settings
from ..errors import SearchError
from ..importer import import_records
from ..models import ImportReport
from ..sources import iter_file
from ..sources.beir import namespace_for
from ..store import Store, is_postgres_url, open_store
from .index import load_embedder, update_index
from .metrics import evaluate_run
from .text import doc_text, text_hash

__all__ = ["load_beir", "eval_db_path", "prepare_eval_store", "run_eval", "percentile",
           "copy_vectors"]


def _corpus_file(folder: Path) -> Path:
    for name in ("corpus.jsonl", "corpus.jsonl.gz"):
        if (folder / name).is_file():
            return folder / name
    raise SearchError(f"{folder}: no corpus.jsonl or corpus.jsonl.gz (not a BEIR folder)")


def _lines(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        yield from f


def load_beir(folder: str | Path, split: str) -> tuple[Path, dict[str, str], dict[str, dict]]:
    """(corpus file, {query id: text} for the split's queries, qrels {qid: {doc id: rel}})."""
    folder = Path(folder)
    corpus = _corpus_file(folder)
    qrels_file = folder / "qrels" / f"{split}.tsv"
    if not qrels_file.is_file():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise SearchError(f"{folder}: no qrels/{split}.tsv (splits here: {', '.join(have) or 'none'})")
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate(qrels_file.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (i == 0 and not parts[2].strip().lstrip("-").isdigit()):
            continue  # header or blank
        qrels.setdefault(parts[0].strip(), {})[parts[1].strip()] = int(parts[2])
    qfile = folder / "queries.jsonl"
    if not qfile.is_file():
        qfile = folder / "queries.jsonl.gz"
    if not qfile.is_file():
        raise SearchError(f"{folder}: no queries.jsonl")
    queries = {}
    for line in _lines(qfile):
        if line.strip():
            d = orjson.loads(line)
            qid = str(d["_id"])
            if qid in qrels:
                queries[qid] = d.get("text", "")
    return corpus, queries, qrels


def _fingerprint(corpus: Path) -> str:
    st = corpus.stat()
    h = hashlib.blake2b(digest_size=6)
    h.update(f"{corpus.resolve()}|{st.st_size}".encode())
    with corpus.open("rb") as f:
        h.update(f.read(1 << 16))
    return h.hexdigest()


def eval_db_path(corpus: Path, settings: Settings) -> Path:
    """Default cached database for a corpus: under the cache dir, keyed by the corpus."""
    root = Path(settings.cache_dir).expanduser() / "beir"
    return root / f"{namespace_for(corpus)}-{_fingerprint(corpus)}.db"


def eval_settings(settings: Settings, db: Path | str) -> Settings:
    """The eval database keeps its indexes beside itself, whatever index_dir says."""
    return settings.with_overrides(db=str(db), index_dir="")


def prepare_eval_store(
    corpus: Path,
    db: Path | str,
    settings: Settings,
    progress: bool = False,
    vectors_from: Path | str | None = None,
) -> tuple[Store, dict]:
    """Open (creating and importing when empty) the eval database and index it; with
    ``vectors_from``, first copy the vectors that database has for the same papers."""
    if not is_postgres_url(str(db)):
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    store = open_store(str(db), busy_timeout=settings.busy_timeout)
    if store.stats()["papers"] == 0:
        report = ImportReport()
        import_records(store, iter_file(corpus, "beir"), report, batch_size=5000)
        if report.read == 0:
            store.close()
            raise SearchError(f"{corpus}: no document could be read")
    copied = 0
    if vectors_from is not None:
        if not is_postgres_url(str(vectors_from)) and not Path(vectors_from).is_file():
            store.close()
            raise SearchError(f"--vectors-from {vectors_from}: no such database")
        emb = load_embedder(settings)
        src = open_store(str(vectors_from), busy_timeout=settings.busy_timeout, migrate=False)
        try:
            copied = copy_vectors(src, store, emb.model_id, emb.dim)
        finally:
            src.close()
    info = update_index(store, settings, progress=progress)
    info["vectors_copied"] = copied
    return store, info


def copy_vectors(src: Store, dst: Store, model_id: str, dim: int) -> int:
    """Copy ``model_id``'s vectors of papers ``dst`` also has, by paper id, when the
    embedded text is the same (its hash): what ``paperfeed index`` would have made. Vectors
    ``dst`` already has for that text are left alone. Returns how many were copied."""
    dst_pk: dict[str, tuple[int, int, bytes]] = {}
    for batch in dst.iter_changed(0, 5000):
        for sp in batch:
            dst_pk[sp.paper.id] = (sp.pk, sp.rev, text_hash(doc_text(sp.paper)))
    copied = 0
    for batch in src.iter_embeddings(model_id):
        pks = [pk for _, pk, _ in batch]
        hashes = src.embedded_hashes(model_id, pks)
        papers = src.get_papers_by_pk(pks)
        rows = []
        for _, pk, blob in batch:
            sp = papers.get(pk)
            target = dst_pk.get(sp.paper.id) if sp is not None else None
            if target is not None and hashes.get(pk) == target[2]:
                rows.append((target[0], target[1], target[2], bytes(blob)))
        have = dst.embedded_hashes(model_id, [r[0] for r in rows])
        rows = [r for r in rows if have.get(r[0]) != r[2]]
        for i in range(0, len(rows), 512):
            dst.put_embeddings(model_id, dim, rows[i : i + 512])
        copied += len(rows)
    return copied


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return 0.0
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


def run_eval(
    store: Store,
    settings: Settings,
    corpus: Path,
    queries: dict[str, str],
    qrels: dict[str, dict],
    mode: str,
    k: int = 100,
) -> dict:
    """Run every query through ``search``; returns metrics, latency and the mode used."""
    from . import search

    prefix = namespace_for(corpus) + ":"
    run: dict[str, dict[str, float]] = {}
    times: list[float] = []
    modes: set[str] = set()
    notes: list[str] = []
    for qid, text in queries.items():
        t0 = time.perf_counter()
        res = search(store, text, mode=mode, limit=k, settings=settings, listable_only=False)
        times.append((time.perf_counter() - t0) * 1000)
        modes.add(res.mode)
        for n in res.notes:
            if n not in notes:
                notes.append(n)
        run[qid] = {
            h.id[len(prefix):] if h.id.startswith(prefix) else h.id: h.score for h in res.hits
        }
    m = evaluate_run(run, qrels, 10, 100)
    return {
        "mode": "/".join(sorted(modes)) if modes else mode,
        "queries": m["queries"],
        "ndcg@10": round(m["ndcg@10"], 4),
        "recall@100": round(m["recall@100"], 4),
        "p50_ms": round(percentile(times, 50), 2),
        "p99_ms": round(percentile(times, 99), 2),
        "notes": notes,
    }
