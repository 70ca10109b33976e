"""The search engine behind ``search`` and ``similar``: opened indexes and the model, kept
per process (the web app calls it per request; nothing heavy happens per query).

Two keyword sides answer the same interface (keyword.py's KeywordIndex): a tantivy folder
beside a SQLite file, followed by ``rev``; or the database itself when the store indexes
words as it stores them (``store.keyword_index()``: PostgreSQL). Then nothing lags, nothing
is written here, and the vectors are this process's own copy of the ``embeddings`` table
(vectors.py's StoreVectors), so any number of stateless processes share one database."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..config import Settings
from ..ids import parse_arxiv_id
from ..store import Store
from .hybrid import convex_fusion
from .index import (
    IndexPaths,
    current_model,
    embed_checkpoint,
    index_lock,
    index_paths,
    load_embedder,
    sync_keyword,
)
from .keyword import Filters, KeywordIndex
from .qcache import QueryVectors
from .query import ParsedQuery, parse_query
from .text import title_key
from .vectors import StoreVectors, VectorIndex

# Query vectors per process (bounded): half a search's time was embedding the query, and
# paging, feed readers and popular queries repeat it.
QUERY_VECTORS = QueryVectors(4096)

__all__ = ["Engine", "get_engine", "Ranked", "CANDIDATES", "behind_note"]

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
# In-memory vectors (PostgreSQL) look for new rows at most this often when the web app's
# follower is off (``web_index_every`` 0); with it on, they follow at its pace.
_VECTOR_FOLLOW_EVERY = 2.0
# Which model's vectors are current is read again after this many seconds (PostgreSQL).
_CURRENT_MODEL_TTL = 60.0


@dataclass(slots=True)
class Ranked:
    pks: list[tuple[int, float | None]]  # scores in [0, 1], None when unranked (newest first)
    mode: str
    total: int = 0
    total_exact: bool = True
    notes: list[str] = field(default_factory=list)


def _scaled(hits: list[tuple[int, float]], kind: str) -> list[tuple[int, float | None]]:
    """Scores people can compare, in [0, 1]: BM25 relative to the best hit of the list (it
    has no upper bound of its own), cosine clipped at 0, fused scores as they are."""
    if kind == "none":
        return [(pk, None) for pk, _ in hits]
    if kind == "bm25":
        top = max((s for _, s in hits), default=0.0)
        return [(pk, s / top if top > 0 else 0.0) for pk, s in hits]
    return [(pk, min(1.0, max(0.0, s))) for pk, s in hits]


_UNRANKED = (
    "This query names only authors, categories, ids or excluded words, so the papers that "
    "match are listed newest first."
)


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def behind_note(lag: int, catch_up: int | None) -> str:
    """What a search says when papers are not in the keyword index yet."""
    papers = _count(lag, "paper")
    verb = "is" if lag == 1 else "are"
    if catch_up is None:
        return f"{papers} added recently {verb} not searchable yet: the search index is being updated."
    return f"{papers} {verb} not in the search index yet, so they cannot be found: run `paperfeed index`."


class Engine:
    def __init__(self, paths: IndexPaths | None, settings: Settings):
        """``paths`` None: the store indexes words itself and vectors live in memory."""
        self.paths = paths
        self.settings = settings
        self.in_store = paths is None
        self.keyword = KeywordIndex(paths.keyword) if paths is not None else None
        self._vectors: dict[str, VectorIndex] = {}
        self._lock = threading.Lock()
        self._current: tuple[float, tuple[str, int] | None] = (float("-inf"), None)
        self._seen_rev = -1
        # How far behind the store the indexes are, cached per (index rev, store rev): a
        # count over the papers table per request would cost more than the search.
        self._lag: tuple[tuple, int] = ((), 0)
        self._vector_lag: tuple[tuple, int] = ((), 0)

    # --- freshness -----------------------------------------------------------------------
    def keyword_for(self, store: Store):
        """The keyword side to query: the store's own, or the tantivy index as last committed."""
        return store.keyword_index() if self.in_store else self.refresh()

    def refresh(self) -> KeywordIndex:
        """The keyword index as the last writer (any process) committed it; reopened when
        its folder was deleted and rebuilt. Never writes."""
        if self.keyword.stale():
            self.keyword = KeywordIndex(self.paths.keyword)
        ki = self.keyword
        rev = ki.rev
        if rev != self._seen_rev:
            ki.reload()
            self._seen_rev = rev
        return ki

    def version(self, store: Store) -> tuple:
        """Changes whenever an answer could: the keyword index committed, papers changed in
        the store, or the current vectors were rewritten. Cheap: an index lookup and a stat."""
        vi = self.current_vectors(store)
        rev = 0 if self.in_store else self.refresh().rev
        return (rev, store.max_rev(), vi.stamp() if vi is not None else None)

    def lag(self, store: Store) -> int:
        """Papers in the store that the keyword index does not have yet (never any when
        the store indexes words with the row)."""
        if self.in_store:
            return 0
        rev = self.refresh().rev
        top = store.max_rev()
        if top <= rev:
            return 0
        key, n = self._lag
        if key != (rev, top):
            n = store.count_changed(rev)
            self._lag = ((rev, top), n)
        return n

    def vector_lag(self, store: Store, model_id: str) -> int:
        """Papers added or changed since ``paperfeed index`` last embedded (they have no
        vector, or an outdated one)."""
        done = store.get_checkpoint(embed_checkpoint(model_id))
        top = store.max_rev()
        if top <= done:
            return 0
        key, n = self._vector_lag
        if key != (model_id, done, top):
            n = store.count_changed(done)
            self._vector_lag = ((model_id, done, top), n)
        return n

    def index_step(
        self, store: Store, limit: int | None = None, wait: bool = False, threads: int = 2
    ) -> int | None:
        """Index up to about ``limit`` new papers (all when None) under the index folder's
        writer lock; None when another process holds it (and ``wait`` is false). Nothing to
        do when the store indexes words itself."""
        if self.in_store:
            return 0
        ki = self.refresh()
        with index_lock(self.paths, wait=wait) as got:
            if not got:
                return None
            n = sync_keyword(store, ki, limit=limit, threads=threads)
        self.refresh()
        return n

    def _freshness(self, store: Store, catch_up: int | None, notes: list[str]) -> None:
        """Say how many papers the keyword index lacks; with ``catch_up``, index them first
        when there are at most that many (the CLI does; web requests never write)."""
        lag = self.lag(store)
        if not lag:
            return
        if catch_up and lag <= catch_up:
            try:
                n = self.index_step(store)
            except OSError as e:  # a read-only folder: search what is there
                notes.append(f"the search index cannot be updated here ({e}); searching it as it is.")
                n = None
            if n:
                notes.append(f"indexed {_count(n, 'new paper')} first.")
            lag = self.lag(store)
            if not lag:
                return
        notes.append(behind_note(lag, catch_up))

    def vectors_for_model(self, model_id: str, dim: int, store: Store | None = None) -> VectorIndex:
        """The vector index of a model: its files, or (in_store) this process's copy of the
        stored vectors, brought up to date first when it was last looked at more than the
        follow interval ago (the first call loads them all)."""
        with self._lock:
            vi = self._vectors.get(model_id)
            if vi is None:
                if self.in_store:
                    vi = StoreVectors(model_id, dim)
                else:
                    vi = VectorIndex(
                        self.paths.vectors(model_id), model_id, dim, self.settings.exact_search_max
                    )
                self._vectors[model_id] = vi
        if isinstance(vi, StoreVectors) and store is not None:
            every = self.settings.web_index_every or _VECTOR_FOLLOW_EVERY
            if time.monotonic() - vi.checked_at >= every:
                vi.follow(store)
        return vi

    def follow_vectors(self, store: Store) -> int:
        """(in_store) Load the vectors written since the last look, for the current model and
        every model this process has searched with; returns how many rows came."""
        if not self.in_store:
            return 0
        self.current_vectors(store, follow=False)
        with self._lock:
            loaded = [vi for vi in self._vectors.values() if isinstance(vi, StoreVectors)]
        return sum(vi.follow(store) for vi in loaded)

    def current_vectors(self, store: Store | None = None, follow: bool = True) -> VectorIndex | None:
        """The vectors last built by ``paperfeed index`` (no model load needed)."""
        if self.in_store:
            if store is None:
                return None
            at, cur = self._current
            if time.monotonic() - at >= _CURRENT_MODEL_TTL or cur is None:
                cur = current_model(store, None)
                self._current = (time.monotonic(), cur)
            if cur is None:
                return None
            return self.vectors_for_model(cur[0], cur[1], store if follow else None)
        cur = current_model(store, self.paths)
        if cur is None:
            return None
        return self.vectors_for_model(*cur)

    # --- semantic ------------------------------------------------------------------------
    def _semantic(
        self,
        ki,
        vi: VectorIndex,
        qv: np.ndarray,
        constraint,
        k: int,
        fetch_cap: int | None = None,
    ) -> list[tuple[int, float]]:
        """Nearest papers that satisfy ``constraint``. Without ``fetch_cap`` it returns k
        of them whenever k exist; with it, the over-fetch stops at that many candidates."""
        if constraint is None:
            return vi.search(qv, k)
        n = ki.count(constraint)
        if n == 0:
            return []
        # (A count that stopped at its cap, PostgreSQL's, only says "at least n".)
        if n <= (_SUBSET_EXACT_HNSW if vi.uses_hnsw else _SUBSET_EXACT) and not getattr(
            n, "at_least", False
        ):
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
        self,
        store: Store,
        query: str,
        mode: str,
        want: int,
        filters: Filters,
        catch_up: int | None = None,
    ) -> Ranked:
        notes: list[str] = []
        self._freshness(store, catch_up, notes)
        pq = parse_query(query)
        ki = self.keyword_for(store)
        k = max(CANDIDATES, want)
        kq = ki.ranked_query(pq, filters)
        constraint = ki.constraint_query(pq, filters)
        if kq is None and constraint is None:
            # Nothing the index knows (an emoji, punctuation, only excluded words): no paper
            # can match, and ranking every paper by the "meaning" of a symbol helps no one.
            notes.append("The query has no words to search for.")
            return Ranked([], mode, 0, True, notes)

        emb = vi = None
        if mode in ("semantic", "hybrid"):
            emb, vi, why = self._semantic_parts(pq, store)
            if why:
                notes.append(why)
                mode = "keyword"

        if mode == "keyword":
            if kq is None:
                # Only filters or field restrictions: newest matching papers first.
                if pq.clauses and _UNRANKED not in notes:
                    notes.append(_UNRANKED)
                hits, total = ki.newest(constraint, want)
                return self._finish(ki, pq, hits, "none", constraint, "keyword", total, notes)
            hits, total = ki.search(kq, want, count=True)
            return self._finish(ki, pq, hits, "bm25", constraint, "keyword", total, notes)

        lagging = self.vector_lag(store, emb.model_id)
        if lagging:
            one = lagging == 1
            notes.append(
                f"{_count(lagging, 'paper')} {'has no vector' if one else 'have no vectors'} yet, "
                + (f"so ranking by meaning cannot find {'it' if one else 'them'}"
                   if mode == "semantic" else f"so only {'its' if one else 'their'} words count")
                + ": run `paperfeed index`."
            )
        qv = QUERY_VECTORS.get(emb, pq.free_text)
        if mode == "semantic":
            sem = self._semantic(ki, vi, qv, constraint, k)
            n = vi.size if constraint is None else ki.count(constraint)
            return self._finish(ki, pq, sem[:want], "cosine", constraint, "semantic",
                                max(n, len(sem)), notes, exact=False)  # fmt: skip

        # The hybrid total is an estimate anyway (see below), and an exact count of words
        # under a filter is PostgreSQL's dearest statement.
        kw, kw_total = ki.search(kq, k, count="estimate") if kq is not None else ([], 0)
        if kq is not None and not kw_total and not ki.count(ki.text_query(pq)):
            # Not one paper has any of the words: the nearest vectors of a word no paper
            # uses (a typo, a made-up name) would only look like an answer. (With filters
            # that leave none of the papers with the words, nearby meanings still help.)
            # An exact id or title still finds its paper (``_pin``).
            out = self._finish(ki, pq, [], "fused", constraint, "hybrid", 0, notes)
            if not out.pks:
                notes.append("No paper contains any of these words.")
            return out
        sem = self._semantic(ki, vi, qv, constraint, k, _HYBRID_FETCH_CAP)
        fused = self._fuse(ki, vi, qv, kq, kw, sem)
        # The list goes on as deep as one pages (the semantic side ranks every paper that
        # matches the filters), so the total is an estimate.
        return self._finish(ki, pq, fused[:want], "fused", constraint, "hybrid",
                            max(kw_total, len(fused)), notes, exact=False)  # fmt: skip

    def _finish(
        self, ki, pq, hits, kind, constraint, mode, total, notes, exact: bool = True
    ) -> Ranked:
        ranked = self._pin(ki, pq, _scaled(hits, kind), constraint, kind != "none")
        extra = len(ranked) - len(hits)  # pinned papers the ranking itself did not have
        # A count that stopped at its cap (PostgreSQL, very common words) is a lower bound.
        exact = exact and not getattr(total, "at_least", False)
        return Ranked(ranked, mode, int(total) + max(0, extra), exact and extra <= 0, notes)

    def _fuse(self, ki, vi, qv, kq, kw, sem) -> list[tuple[int, float]]:
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
            extra, _ = ki.search(ki.restrict(kq, missing_kw), len(missing_kw))
            kw_scores.update(extra)
        return convex_fusion(kw_scores, sem_scores, self.settings.hybrid_weight, no_vector)

    def _semantic_parts(self, pq: ParsedQuery, store: Store):
        """(embedder, vector index, None) or (None, None, why semantic cannot answer)."""
        from .embed import ModelUnavailable

        if not pq.free_text:
            return None, None, _UNRANKED
        try:
            emb = load_embedder(self.settings)
        except ModelUnavailable as e:
            return None, None, (
                f"Ranking by meaning is not available here ({e}), so results are ranked by "
                "their words."
            )
        vi = self.vectors_for_model(emb.model_id, emb.dim, store)
        if vi.size == 0:
            return None, None, (
                "Ranking by meaning needs `paperfeed index` to run first; until then results "
                "are ranked by their words."
            )
        return emb, vi, None

    def _pin(
        self, ki, pq: ParsedQuery, hits: list[tuple[int, float | None]], constraint, scored: bool
    ) -> list[tuple[int, float | None]]:
        """An exact arXiv id or exact title in the query puts that paper first (score 1)."""
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
        pinned = [(pk, 1.0 if scored else None) for pk in pins]
        return pinned + [h for h in hits if h[0] not in set(pins)]

    # --- similar -------------------------------------------------------------------------
    def similar(
        self, store: Store, pk: int, limit: int, notes: list[str] | None = None
    ) -> list[tuple[int, float]]:
        """Nearest papers by stored vector, without the paper itself or its duplicates.
        A paper without a vector yet is matched by its own words, and ``notes`` says so."""
        ki = self.keyword_for(store)
        sp = store.get_papers_by_pk([pk]).get(pk)
        if sp is None:
            return []
        own_key = title_key(sp.paper.title)
        vi = self.current_vectors(store)
        v = vi.vectors_for([pk]).get(pk) if vi is not None else None
        if v is not None:
            cands = _scaled(vi.search(v, limit + 10), "cosine")
        else:
            # No vector for it yet: fall back to its own words (title and abstract).
            if notes is not None:
                notes.append(
                    "This paper has no vector yet (run `paperfeed index`), so similar papers "
                    "are the ones that share its words."
                )
            text = f"{sp.paper.title} {sp.paper.abstract}"
            q = ki.text_query(parse_query(" ".join(text.split()[:60])))
            hits = ki.search(q, limit + 11)[0] if q is not None else []
            # Scaled to the best other paper (the paper itself matches its words best).
            cands = _scaled([(p, s) for p, s in hits if p != pk], "bm25")
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
    if store.keyword_index() is not None:
        # The database is the index: one engine per database, whatever index_dir says.
        paths = None
        key = ("store", getattr(store, "url", None) or repr(store), settings.exact_search_max,
               settings.hybrid_weight)
    else:
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
