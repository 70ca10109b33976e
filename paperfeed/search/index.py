"""Bringing the search indexes up to date with the store: ``update_index``.

Three steps, each resumable and incremental (re-running after an interruption, or after
new papers arrive, does only what is missing):

1. keyword: papers changed since the index's recorded ``rev`` are (re)indexed in tantivy;
2. embeddings: papers whose embedded text has no vector for the current model are embedded
   in batches and stored in the database with a checkpoint, in one transaction per batch;
3. vectors: the vector index files follow the stored vectors by ``seq``.

One writer at a time: a lock file in the index folder makes a second ``paperfeed index``
(or ``paperfeed run``) fail fast instead of corrupting the files.

On a store that indexes words itself (PostgreSQL: ``store.keyword_index()``), step 1 does
not exist (each paper's tsvector is written with it), step 2 is the same, and step 3 is
each searching process's own: it loads the stored vectors into memory and follows ``seq``
(engine.py). There is no folder: which model is current is a checkpoint in the database,
and the writer lock an advisory lock (``store.search_writer_lock``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import Settings
from ..errors import SearchError
from ..store import Store
from .keyword import KeywordIndex
from .text import doc_text, text_hash
from .vectors import VectorIndex

__all__ = [
    "update_index",
    "index_paths",
    "IndexPaths",
    "load_embedder",
    "index_lock",
    "embed_checkpoint",
    "sync_keyword",
    "current_model",
]

_KEYWORD_COMMIT_EVERY = 50_000
_LOCK_PATIENCE = 20.0  # seconds `paperfeed index` waits for the index folder's lock
_EMBED_STORE_BATCH = 512  # papers per transaction of stored vectors (and per checkpoint)


@dataclass(frozen=True, slots=True)
class IndexPaths:
    root: Path

    @property
    def keyword(self) -> Path:
        return self.root / "keyword"

    def vectors(self, model_id: str) -> Path:
        slug = hashlib.blake2b(model_id.encode(), digest_size=6).hexdigest()
        return self.root / "vectors" / slug

    @property
    def current(self) -> Path:
        """Which model's vectors ``similar`` uses without loading the model."""
        return self.root / "vectors" / "current.json"


def index_paths(store: Store, settings: Settings) -> IndexPaths:
    if settings.index_dir:
        return IndexPaths(Path(settings.index_dir).expanduser())
    db = getattr(store, "path", None)
    if not db or "://" in str(db):
        raise SearchError("set index_dir: the search indexes need a folder (none beside the db)")
    return IndexPaths(Path(str(db) + ".index"))


@contextmanager
def index_lock(paths: IndexPaths, wait: bool = False, patience: float = 0.0):
    """Exclusive lock of the index folder for writers; yields False when busy and not
    waiting (callers that can skip, like the web app's background steps, check it).
    ``patience``: seconds to keep trying first (a web app's step holds it about a second)."""
    paths.root.mkdir(parents=True, exist_ok=True)
    fh = open(paths.root / ".writer.lock", "a+")
    try:
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


_EMBEDDERS: dict[tuple, object] = {}
_EMBEDDERS_LOCK = threading.Lock()


def load_embedder(settings: Settings):
    """The embedder named by the settings, loaded once per process. Raises the embed
    module's ``ModelUnavailable`` when the model or its backend is missing."""
    from .embed import Embedder, ModelUnavailable

    key = (settings.embed_model, settings.embed_backend, settings.cache_dir, settings.threads)
    with _EMBEDDERS_LOCK:
        emb = _EMBEDDERS.get(key)
        if emb is None:
            try:
                emb = Embedder.load(
                    settings.embed_model or None,
                    backend=settings.embed_backend,
                    cache_dir=Path(settings.cache_dir).expanduser(),
                    threads=settings.threads or None,
                )
            except ValueError as e:  # an unknown backend name in the settings
                raise ModelUnavailable(str(e)) from None
            _EMBEDDERS[key] = emb
    return emb


def sync_keyword(
    store: Store,
    ki: KeywordIndex,
    progress: bool = False,
    limit: int | None = None,
    threads: int = 2,
) -> int:
    """Index papers changed since the keyword index's rev; returns how many.

    With ``limit`` it stops at the first revision boundary after that many papers (one
    import transaction's papers share a revision, so a step can go past ``limit`` by at
    most one transaction's worth); the rest is left for the next call. ``threads``: the
    index writer's (1 beside a web app's searches)."""
    start = ki.rev
    total = store.count_changed(start)
    if not total:
        return 0
    done = pending = 0
    last_rev = start
    with tqdm(total=total, desc="keyword index", unit=" papers", disable=not progress) as bar:
        try:
            for batch in store.iter_changed(start, min(2000, limit or 2000)):
                batch = [sp for sp in batch if sp.rev > start]
                if not batch:
                    continue
                ki.add(batch, threads=threads)
                done += len(batch)
                pending += len(batch)
                bar.update(len(batch))
                # Papers of the last rev may continue in the next batch: only the rev before
                # it is known to be complete.
                complete = max(start, batch[-1].rev - 1)
                if limit is not None and done >= limit and complete > start:
                    # The papers of the last rev are indexed again by the next step
                    # (adding replaces by pk), so nothing is lost or doubled.
                    ki.commit(complete)
                    return done
                if pending >= _KEYWORD_COMMIT_EVERY:
                    ki.commit(complete)
                    pending = 0
                last_rev = batch[-1].rev
        except BaseException:
            ki.rollback()
            raise
    ki.commit(last_rev)
    return done


def embed_checkpoint(model_id: str) -> str:
    """The store checkpoint below which every paper's text has a vector of this model."""
    return f"embed:{model_id}"


def embed_missing(store: Store, embedder, batch_size: int = 32, progress: bool = False) -> int:
    """Embed papers whose current text has no vector for this model; returns how many."""
    model_id, dim = embedder.model_id, int(embedder.dim)
    name = embed_checkpoint(model_id)
    start = store.get_checkpoint(name)
    total = store.count_changed(start)
    if not total:
        return 0
    embedded = 0
    last_rev = start
    with tqdm(total=total, desc="embedding", unit=" papers", disable=not progress,
              smoothing=0.05) as bar:
        for batch in store.iter_changed(start, _EMBED_STORE_BATCH):
            batch = [sp for sp in batch if sp.rev > start]
            if not batch:
                continue
            texts = {sp.pk: doc_text(sp.paper) for sp in batch}
            hashes = {pk: text_hash(t) for pk, t in texts.items()}
            have = store.embedded_hashes(model_id, list(texts))
            todo = [sp for sp in batch if have.get(sp.pk) != hashes[sp.pk]]
            rows = []
            if todo:
                vecs = embedder.encode([texts[sp.pk] for sp in todo], batch_size=batch_size)
                vecs = np.ascontiguousarray(vecs, dtype="<f4")
                rows = [
                    (sp.pk, sp.rev, hashes[sp.pk], vecs[i].tobytes()) for i, sp in enumerate(todo)
                ]
            last_rev = batch[-1].rev
            store.put_embeddings(model_id, dim, rows, checkpoint=(name, max(start, last_rev - 1)))
            embedded += len(rows)
            bar.update(len(batch))
    store.set_checkpoint(name, last_rev)
    return embedded


def _current_checkpoint(model_id: str) -> str:
    """(in-store vectors) When ``paperfeed index`` last made this model's vectors current."""
    return f"vectors-current:{model_id}"


def _write_current(store: Store, paths: IndexPaths | None, model_id: str, dim: int) -> None:
    if paths is None:
        store.set_checkpoint(_current_checkpoint(model_id), int(time.time() * 1000))
        return
    paths.current.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.current.with_suffix(".tmp")
    tmp.write_text(json.dumps({"model_id": model_id, "dim": dim}))
    os.replace(tmp, paths.current)


def current_model(store: Store | None, paths: IndexPaths | None) -> tuple[str, int] | None:
    """(model_id, dim) of the vectors ``paperfeed index`` last built: from the index folder,
    or (``paths`` None) from the database, the model it marked most recently."""
    if paths is not None:
        try:
            cur = json.loads(paths.current.read_text())
            return str(cur["model_id"]), int(cur["dim"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
    if store is None:
        return None
    best = None
    for m in store.embedding_stats():
        at = store.get_checkpoint(_current_checkpoint(m["model_id"]))
        if at and m["vectors"] and (best is None or at > best[0]):
            best = (at, m["model_id"], int(m["dim"]))
    return (best[1], best[2]) if best else None


def update_index(
    store: Store, settings: Settings, progress: bool = False, keyword_only: bool = False
) -> dict:
    """Bring the keyword index, the stored vectors and the vector index up to date
    (``keyword_only``: the keyword index alone, which needs no model).

    Returns {"keyword_indexed", "embedded", "vectors", "model_id", "notes", "keyword"}.
    ``keyword`` is "tantivy" (an index folder) or "database" (PostgreSQL indexes the words as
    papers are stored: nothing to do, ``keyword_indexed`` stays 0). When the embedding model
    cannot be loaded the keyword index is still updated and a note says why semantic search
    is unavailable.
    """
    from .embed import ModelUnavailable

    in_store = store.keyword_index() is not None
    paths = None if in_store else index_paths(store, settings)
    out: dict = {"keyword_indexed": 0, "embedded": 0, "vectors": 0, "model_id": None, "notes": [],
                 "keyword": "database" if in_store else "tantivy"}
    if in_store:
        lock = store.search_writer_lock() or nullcontext(True)
        where = "this database"
    else:
        # A web app's background step holds the lock for a second or so: wait that out, but
        # fail fast behind another `paperfeed index` (it may run for an hour).
        lock = index_lock(paths, patience=_LOCK_PATIENCE)
        where = str(paths.root)
    with lock as got:
        if not got:
            raise SearchError(f"another process is updating the search index in {where}")
        if not in_store:
            ki = KeywordIndex(paths.keyword)
            out["keyword_indexed"] = sync_keyword(store, ki, progress)
        if keyword_only:
            return out
        try:
            emb = load_embedder(settings)
        except ModelUnavailable as e:
            out["notes"].append(f"semantic index not updated: {e}")
            return out
        out["model_id"] = emb.model_id
        out["backend"] = {"name": emb.backend, "why": emb.reason, "threads": emb.threads}
        out["embedded"] = embed_missing(store, emb, settings.embed_batch, progress)
        if in_store:
            # Each searching process loads and follows these itself (engine.py).
            out["vectors"] = next((m["vectors"] for m in store.embedding_stats()
                                   if m["model_id"] == emb.model_id), 0)
            out["notes"].append(
                ("pgvector is available on this server but not used yet"
                 if store.pgvector_available() else "pgvector is not available on this server")
                + ": vectors are stored as float32 arrays and each searching process loads "
                "them into memory and follows new ones"
            )
        else:
            vi = VectorIndex(
                paths.vectors(emb.model_id), emb.model_id, emb.dim, settings.exact_search_max
            )
            with tqdm(desc="vector index", unit=" vectors", disable=not progress) as bar:
                res = vi.sync(store, on_rows=bar.update)
            out["vectors"] = res["rows"]
        _write_current(store, paths, emb.model_id, emb.dim)
    return out
