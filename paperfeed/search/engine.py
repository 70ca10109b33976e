"""The search engine behind ``search`` and ``similar``: opened indexes and the model, kept
per process (the web app calls it per request; nothing heavy happens per query)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import numpy as np
import tantivy

from ..config import Settings
from ..ids import parse_arxiv_id
from ..store import Store
from .hybrid import convex_fusion
from .index import IndexPaths, index_lock, index_paths, load_embedder, sync_keyword
from .keyword import Filters, KeywordIndex
from .query import ParsedQuery, parse_query
from .text import title_key
from .vectors import VectorIndex

__all__ = ["Engine", "get_engine", "Ranked", "CANDIDATES"]

# Candidates taken from each side before fusion (at least; more when paging deeper).
CANDIDATES = 100
# Semantic search with a filter: up to this many matching papers are scored exactly
# (vectors in memory: exact regime; memory-mapped: HNSW regime, where gathering rows costs
# more); beyond, the nearest neighbours are over-fetched and checked against the filter.
_SUBSET_EXACT = 20_000
_SUBSET_EXACT_HNSW = 5_000
# In hybrid search the keyword side already brings filtered candidates (and each gets its
# exact cosine), so the semantic side's over-fetch is capped rather than grown until full.
_HYBRID_FETCH_CAP = 1_000
# The keyword index catches up by itself (during a search) when this few papers are new.
_AUTO_CATCH_UP = 20_000


@dataclass(slots=True)
class Ranked:
    pks: list[tuple[int, float]]
    mode: str
    total: int | None = None
    notes: list[str] = field(default_factory=list)


class Engine:
    def __init__(self, paths: IndexPaths, settings: Settings):
        self.paths = paths
        self.settings = settings
        self.keyword = KeywordIndex(paths.keyword)
        self._vectors: dict[str, VectorIndex] = {}
        self._lock = threading.Lock()

    # --- parts ---------------------------------------------------------------------------
    def catch_up(self, store: Store, notes: list[str]) -> None:
        """Index papers added since the last ``paperfeed index`` when they are few, so a
        search right after an import finds them; otherwise say the index is behind."""
        if self.keyword.stale():
            self.keyword = KeywordIndex(self.paths.keyword)
        ki = self.keyword
        rev = ki.rev
        if store.max_rev() <= rev:
            return
        lag = store.count_changed(rev)
        if lag > _AUTO_CATCH_UP:
            notes.append(f"{lag} papers are not in the search index yet: run `paperfeed index`")
            return
        try:
            with index_lock(self.paths) as got:
                if got:
                    sync_keyword(store, ki)
        except OSError as e:  # a read-only folder: search what is there
            notes.append(f"search index cannot be updated here: {e}")
        ki.reload()

    def vectors_for_model(self, model_id: str, dim: int) -> VectorIndex:
        with self._lock:
            vi = self._vectors.get(model_id)
            if vi is None:
                vi = VectorIndex(
                    self.paths.vectors(model_id), model_id, dim, self.settings.exact_search_max
                )
                self._vectors[model_id] = vi
            return vi

    def current_vectors(self) -> VectorIndex | None:
        """The vectors last built by ``paperfeed index`` (no model load needed)."""
        try:
            cur = json.loads(self.paths.current.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return self.vectors_for_model(cur["model_id"], int(cur["dim"]))

    # --- keyword -------------------------------------------------------------------------
    def _keyword_query(self, pq: ParsedQuery, filters: Filters) -> tantivy.Query | None:
        tq = self.keyword.text_query(pq)
        if tq is None:
            return None
        fq = self.keyword.filter_query(filters)
        if fq is None:
            return tq
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, tq), (tantivy.Occur.Must, fq)])

    # --- semantic ------------------------------------------------------------------------
    def _semantic(
        self,
        vi: VectorIndex,
        qv: np.ndarray,
        constraint: tantivy.Query | None,
        k: int,
        fetch_cap: int | None = None,
    ) -> list[tuple[int, float]]:
        """Nearest papers that satisfy ``constraint``. Without ``fetch_cap`` it returns k
        of them whenever k exist; with it, the over-fetch stops at that many candidates."""
        if constraint is None:
            return vi.search(qv, k)
        ki = self.keyword
        n = ki.count(constraint)
        if n == 0:
            return []
        if n <= (_SUBSET_EXACT_HNSW if vi.uses_hnsw else _SUBSET_EXACT):
            rows = vi.rows_for(ki.matching_pks(constraint, n))
            return vi.search(qv, k, rows=rows)
        size = max(vi.size, 1)
        fetch = min(size, int(k * size / n * 2) + CANDIDATES)
        if fetch_cap:
            fetch = min(fetch, fetch_cap)
        while True:
            # Filter the approximate neighbours first, then score only the survivors exactly.
            cands = vi.candidates(qv, fetch)
            allowed = ki.matching_pks(ki.restrict(constraint, cands), len(cands))
            scored = vi.score_pks(qv, allowed)
            hits = sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))
            if len(hits) >= k or fetch >= size or fetch_cap:
                return hits[:k]
            fetch = min(size, fetch * 4)

    # --- search --------------------------------------------------------------------------
    def search(
        self, store: Store, query: str, mode: str, want: int, filters: Filters
    ) -> Ranked:
        notes: list[str] = []
        self.catch_up(store, notes)
        pq = parse_query(query)
        ki = self.keyword
        k = max(CANDIDATES, want)

        emb = vi = None
        if mode in ("semantic", "hybrid"):
            emb, vi, why = self._semantic_parts(pq)
            if why:
                notes.append(why)
                mode = "keyword"

        kq = self._keyword_query(pq, filters)
        constraint = ki.constraint_query(pq, filters)
        if mode == "keyword":
            if kq is None:
                if constraint is None:
                    return Ranked([], "keyword", 0, notes)
                # Only filters or field restrictions: newest matching papers first.
                hits, total = ki.newest(constraint, want)
                return Ranked(self._pin(pq, hits, constraint), "keyword", total, notes)
            hits, total = ki.search(kq, want, count=True)
            return Ranked(self._pin(pq, hits, constraint), "keyword", total, notes)

        qv = np.asarray(emb.encode_query(pq.free_text), dtype=np.float32)
        sem = self._semantic(
            vi, qv, constraint, k, None if mode == "semantic" else _HYBRID_FETCH_CAP
        )
        if mode == "semantic":
            return Ranked(self._pin(pq, sem[:want], constraint), "semantic", None, notes)

        kw = ki.search(kq, k)[0] if kq is not None else []
        fused = self._fuse(vi, qv, kq, kw, sem)
        return Ranked(self._pin(pq, fused[:want], constraint), "hybrid", None, notes)

    def _fuse(self, vi, qv, kq, kw, sem) -> list[tuple[int, float]]:
        kw_scores = dict(kw)
        sem_scores = dict(sem)
        # Score each side on the other side's candidates too (see hybrid.py).
        missing_sem = [pk for pk in kw_scores if pk not in sem_scores]
        no_vector: set[int] = set()
        if missing_sem:
            got = vi.score_pks(qv, missing_sem)
            sem_scores.update(got)
            # Papers not embedded yet (just imported) rank by their keyword score alone
            # rather than sinking for lack of a vector.
            no_vector = {pk for pk in missing_sem if pk not in got}
        missing_kw = [pk for pk in sem_scores if pk not in kw_scores]
        if missing_kw and kq is not None:
            extra, _ = self.keyword.search(self.keyword.restrict(kq, missing_kw), len(missing_kw))
            kw_scores.update(extra)
        return convex_fusion(kw_scores, sem_scores, self.settings.hybrid_weight, no_vector)

    def _semantic_parts(self, pq: ParsedQuery):
        """(embedder, vector index, None) or (None, None, why semantic cannot answer)."""
        from .embed import ModelUnavailable

        if not pq.free_text:
            return None, None, "the query has no free text for semantic search: keyword ranking used"
        try:
            emb = load_embedder(self.settings)
        except ModelUnavailable as e:
            return None, None, f"semantic search unavailable ({e}): keyword results shown"
        vi = self.vectors_for_model(emb.model_id, emb.dim)
        if vi.size == 0:
            return None, None, (
                "no paper has a vector for this model yet (run `paperfeed index`): "
                "keyword results shown"
            )
        return emb, vi, None

    def _pin(
        self, pq: ParsedQuery, hits: list[tuple[int, float]], constraint
    ) -> list[tuple[int, float]]:
        """An exact arXiv id or exact title in the query puts that paper first."""
        ki = self.keyword
        pins: list[int] = []
        for c in pq.positive:
            if c.field in ("all", "id"):
                parsed = parse_arxiv_id(c.text)
                if parsed:
                    pins.extend(ki.by_id(parsed[0]))
        if title_key(pq.raw):
            pins.extend(ki.exact_title(pq.raw))
        pins = list(dict.fromkeys(pins))
        if not pins:
            return hits
        if constraint is not None:
            ok = set(ki.matching_pks(ki.restrict(constraint, pins), len(pins)))
            pins = [p for p in pins if p in ok]
        top = (hits[0][1] if hits else 0.0) + 1.0
        pinned = [(pk, top) for pk in pins]
        return pinned + [h for h in hits if h[0] not in set(pins)]

    # --- similar -------------------------------------------------------------------------
    def similar(self, store: Store, pk: int, limit: int) -> list[tuple[int, float]]:
        """Nearest papers by stored vector, without the paper itself or its duplicates."""
        self.catch_up(store, [])
        sp = store.get_papers_by_pk([pk]).get(pk)
        if sp is None:
            return []
        own_key = title_key(sp.paper.title)
        vi = self.current_vectors()
        v = vi.vectors_for([pk]).get(pk) if vi is not None else None
        if v is not None:
            cands = vi.search(v, limit + 10)
        else:
            # No vector for it yet: fall back to its own words (title and abstract).
            text = f"{sp.paper.title} {sp.paper.abstract}"
            q = self.keyword.text_query(parse_query(" ".join(text.split()[:60])))
            cands = self.keyword.search(q, limit + 10)[0] if q is not None else []
        cands = [(p, s) for p, s in cands if p != pk]
        if not cands:
            return []
        # Other records of the same paper (another version's id, a listing without an arXiv
        # id) share its title: leave them out too.
        others = store.get_papers_by_pk([p for p, _ in cands])
        out = []
        for p, s in cands:
            o = others.get(p)
            if o is None or (own_key and title_key(o.paper.title) == own_key):
                continue
            out.append((p, s))
        return out[:limit]


_ENGINES: dict[tuple, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(store: Store, settings: Settings) -> Engine:
    paths = index_paths(store, settings)
    key = (str(paths.root.resolve()), settings.exact_search_max, settings.hybrid_weight)
    with _ENGINES_LOCK:
        eng = _ENGINES.get(key)
        if eng is None:
            eng = Engine(paths, settings)
            _ENGINES[key] = eng
        else:
            eng.settings = settings
        return eng
