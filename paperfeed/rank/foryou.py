""""For you": a linear model per reader and per interest over the stored paper embeddings.

In the manner of Scholar Inbox (a logistic regression per reader over embeddings) and
arxiv-sanity (a linear classifier per tag), not their code:

* **Interests.** Each tag of the reader's library is one interest (its positives: the papers
  saved with that tag); papers saved without a tag and papers marked "more like this" make
  the untagged interest ``""``. A paper's score is its best score over the interests, so a
  reader with two unrelated tags gets both kinds of paper, not a blurred average.
* **Negatives.** "Not for me" papers plus ``foryou_negatives`` papers sampled from the
  window (seeded by the reader, so a model is reproducible).
* **Cached.** Weights are stored per reader (``reader_models``) with the library revision
  they were trained on; a save, tag or rating bumps the revision and the next call retrains
  (a few milliseconds: a few hundred vectors of 384 dimensions).
* **Window.** Only papers of the ``foryou_days`` newest days with papers (or since ``since``)
  are ranked; saved, rated and already-shown papers never are.
* **Cold start.** Without positives, the papers of followed categories and authors (and
  saved-search matches) are ranked by trending score instead; without any of those, nothing.

Every recommendation carries reasons in plain words ("close to <saved title>", "by
<author>", "new in <category>", "matches your saved search <q>").

``recommend`` serves one reader; ``recommend_many`` ranks for many readers at once (one
matrix product per block of readers over the window's vectors), which is what a digest
run for thousands of readers needs. Candidate vectors are cached per process.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import numpy as np

from ..config import Settings
from ..errors import PaperfeedError
from ..store import Store
from .trending import age_hours, trending_score, window

__all__ = ["Recommendation", "recommend", "recommend_many", "train_models", "window_bounds"]

# Boosts added to the classifier's probability (0..1) for the other signals: a followed
# author counts most (the reader named them), a saved search next, a followed category least
# (categories are broad).
_AUTHOR_BOOST = 0.3
_SEARCH_BOOST = 0.2
_CATEGORY_BOOST = 0.1
_SEARCH_HITS = 100  # keyword hits taken per saved search
_REASON_TITLE = 80  # characters of a saved paper's title quoted in a reason
_C = 1.0  # inverse regularisation of the logistic regression


@dataclass(slots=True)
class Recommendation:
    pk: int
    paper_id: str
    score: float
    reasons: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Model:
    interest: str
    w: np.ndarray  # (dim,) float32
    b: float
    positives: list[int]


@dataclass(slots=True)
class _Window:
    pks: np.ndarray  # candidates that have a vector, sorted
    X: np.ndarray  # (n, dim) float32, row i is pks[i]
    all_pks: list[int]  # every paper of the window (with or without a vector)


# --- vectors ---------------------------------------------------------------------------------
def _model_id(store: Store, settings: Settings) -> tuple[str, int] | None:
    """The embedding model whose vectors to use: the one the search index was last built
    with, else the one with the most stored vectors."""
    try:
        from ..search.index import index_paths

        cur = json.loads(index_paths(store, settings).current.read_text())
        return str(cur["model_id"]), int(cur["dim"])
    except (OSError, ValueError, KeyError, PaperfeedError):
        pass
    stats = [s for s in store.embedding_stats() if s["vectors"]]
    if not stats:
        return None
    best = max(stats, key=lambda s: s["vectors"])
    return best["model_id"], int(best["dim"])


def _vectors(store: Store, model_id: str, pks: list[int]) -> dict[int, np.ndarray]:
    rows = store.get_embeddings(model_id, list(pks))
    return {pk: np.frombuffer(blob, dtype="<f4") for pk, blob in rows.items()}


_CACHE: dict[tuple, _Window] = {}
_CACHE_LOCK = threading.Lock()


def _window(store: Store, model_id: str, since: str, until: str | None) -> _Window:
    """The window's papers and their vectors, kept per process until papers or vectors change."""
    from ..search.index import embed_checkpoint

    # Cheap to check on every call (the digest calls once per reader): the papers' revision
    # and the embedding checkpoint, which moves whenever vectors are written.
    stamp = (getattr(store, "path", id(store)), model_id, since, until, store.max_rev(),
             store.get_checkpoint(embed_checkpoint(model_id)))  # fmt: skip
    with _CACHE_LOCK:
        hit = _CACHE.get(stamp)
    if hit is not None:
        return hit
    all_pks = store.window_pks(since, until)
    vecs = _vectors(store, model_id, all_pks)
    pks = np.array(sorted(vecs), dtype=np.int64)
    dim = len(next(iter(vecs.values()))) if vecs else 0
    X = np.stack([vecs[int(p)] for p in pks]).astype(np.float32) if len(pks) else np.zeros((0, dim), np.float32)
    w = _Window(pks, X, all_pks)
    with _CACHE_LOCK:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[stamp] = w
    return w


def window_bounds(store: Store, settings: Settings, since: str | None) -> tuple[str, str | None]:
    """[since, until) of the papers to rank: the digest's window when given, else the last
    ``foryou_days`` days, widened as trending's window is (to a page of papers, at most
    ``trending_max_days``; a site that stopped harvesting ends it at its newest papers)."""
    if since:
        return since, None
    w = window(store, settings.foryou_days, max_days=max(settings.trending_max_days, settings.foryou_days),
               fill=settings.page_size)  # fmt: skip
    return w.start_day, w.end_day


# --- training ----------------------------------------------------------------------------------
def _interests(store: Store, user_id: int) -> tuple[dict[str, list[int]], list[int]]:
    """interest -> positive pks, and the negative pks ("not for me")."""
    saved = store.library_pks(user_id)
    ratings = store.ratings(user_id)
    interests: dict[str, list[int]] = {}
    for pk, tags in saved.items():
        if ratings.get(pk) == -1:
            continue  # saved, then marked "not for me": the later word wins
        for t in tags or [""]:
            interests.setdefault(t, []).append(pk)
    for pk, v in ratings.items():
        if v == 1 and pk not in saved:
            interests.setdefault("", []).append(pk)
    negatives = [pk for pk, v in ratings.items() if v == -1]
    return {k: sorted(v) for k, v in interests.items()}, sorted(negatives)


def _sample(win: _Window, n: int, seed: int, avoid: set[int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(win.pks))[: n + len(avoid)]
    keep = [i for i in idx if int(win.pks[i]) not in avoid][:n]
    return win.X[np.array(keep, dtype=np.int64)] if keep else np.zeros((0, win.X.shape[1]), np.float32)


def _fit(P: np.ndarray, N: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    X = np.vstack([P, N])
    y = np.concatenate([np.ones(len(P)), np.zeros(len(N))])
    clf = LogisticRegression(C=_C, class_weight="balanced", max_iter=300)
    clf.fit(X, y)
    return clf.coef_[0].astype(np.float32), float(clf.intercept_[0])


def train_models(store: Store, settings: Settings, user_id: int, model_id: str,
                 win: _Window) -> list[_Model]:  # fmt: skip
    """The reader's models, from the cache when their library has not changed since."""
    rev = store.library_rev(user_id)
    cached = store.get_reader_models(user_id)
    if cached and all(m == model_id and r == rev for _, m, r, _, _ in cached):
        return [
            _Model(i, np.frombuffer(w, dtype="<f4")[:-1], float(np.frombuffer(w, dtype="<f4")[-1]), p)
            for i, _, _, w, p in cached
        ]
    interests, negatives = _interests(store, user_id)
    everything = {pk for v in interests.values() for pk in v} | set(negatives)
    vecs = _vectors(store, model_id, sorted(everything))
    neg_own = [vecs[pk] for pk in negatives if pk in vecs]
    sample = _sample(win, settings.foryou_negatives, int(user_id), everything)
    N = np.vstack([np.array(neg_own, np.float32).reshape(-1, win.X.shape[1] or 1), sample]) \
        if neg_own else sample  # fmt: skip
    models = []
    for interest, pks in sorted(interests.items()):
        pos = [pk for pk in pks if pk in vecs]
        if not pos:
            continue
        P = np.stack([vecs[pk] for pk in pos]).astype(np.float32)
        if len(N) == 0:  # nothing to contrast with: score by closeness to the positives
            w, b = P.mean(axis=0), 0.0
        else:
            w, b = _fit(P, N)
        models.append(_Model(interest, w, b, pos))
    store.put_reader_models(
        user_id,
        [
            (m.interest, model_id, rev, np.append(m.w, np.float32(m.b)).astype("<f4").tobytes(), m.positives)
            for m in models
        ],
    )
    return models


# --- signals besides the classifier ----------------------------------------------------------------
def _search_matches(store: Store, settings: Settings, queries: list[str], since: str,
                    allowed: set[int]) -> dict[int, list[str]]:  # fmt: skip
    """pk -> saved searches (keyword matches) it matches, among ``allowed``."""
    if not queries:
        return {}
    from ..search import search

    out: dict[int, list[str]] = {}
    for q in queries:
        try:
            res = search(store, q, mode="keyword", limit=_SEARCH_HITS, since=since[:10],
                         settings=settings)  # fmt: skip
        except PaperfeedError:
            continue
        for h in res.hits:
            if h.pk in allowed:
                out.setdefault(h.pk, []).append(q)
    return out


def _trending_scores(store: Store, settings: Settings, pks: list[int]) -> dict[int, float]:
    """Trending score of each paper, scaled so the best is 1 (0 for papers without votes)."""
    if not pks:
        return {}
    votes = store.vote_counts(pks)
    papers = store.get_papers_by_pk(pks)
    as_of = window(store, settings.trending_window_days, max_days=settings.trending_max_days).as_of
    raw = {}
    for pk in pks:
        sp = papers.get(pk)
        at = (sp.listings[-1]["day"] if sp and sp.listings else (sp.paper.published if sp else None)) or ""
        raw[pk] = trending_score(votes.get(pk, 0), age_hours(at, as_of), settings.trending_gravity)
    top = max(raw.values()) or 1.0
    return {pk: v / top for pk, v in raw.items()}


# --- ranking -------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Reader:
    user_id: int
    models: list[_Model]
    exclude: set[int]
    authors: dict[str, str]  # key -> label
    categories: list[str]
    searches: list[str]


def _reader(store: Store, settings: Settings, user_id: int, model_id: str | None,
            win: _Window | None, exclude: set[int] | None) -> _Reader:  # fmt: skip
    follows = store.list_follows(user_id)
    models = train_models(store, settings, user_id, model_id, win) if model_id and win is not None else []
    ex = set(exclude or ()) | set(store.library_pks(user_id)) | set(store.ratings(user_id))
    ex |= store.shown_pks(user_id)
    return _Reader(
        user_id,
        models,
        ex,
        {f.key: f.label for f in follows if f.kind == "author"},
        [f.key for f in follows if f.kind == "category"],
        [s.query for s in store.list_saved_searches(user_id)],
    )


def _top_of(win: _Window, best: np.ndarray, arg: np.ndarray, k: int,
            exclude: set[int]) -> dict[int, tuple[float, int]]:  # fmt: skip
    take = min(len(best), k + len(exclude))
    idx = np.argpartition(-best, take - 1)[:take] if take < len(best) else np.arange(len(best))
    out = {}
    for i in idx[np.argsort(-best[idx])]:
        pk = int(win.pks[i])
        if pk in exclude:
            continue
        out[pk] = (float(1.0 / (1.0 + np.exp(-best[i]))), int(arg[i]))
        if len(out) >= k:
            break
    return out


def _finish(store: Store, settings: Settings, r: _Reader, win: _Window | None,
            cls: dict[int, tuple[float, int]], since: str, limit: int,
            model_id: str | None) -> list[Recommendation]:  # fmt: skip
    """Add the follow and saved-search signals, the reasons, and cut to ``limit``."""
    pool = [pk for pk in (win.all_pks if win is not None else []) if pk not in r.exclude]
    allowed = set(pool)
    by_author = store.papers_by_authors(list(r.authors), pool) if r.authors else {}
    by_cat = store.papers_in_categories(r.categories, pool) if r.categories else {}
    by_search = _search_matches(store, settings, r.searches, since, allowed)
    scores: dict[int, float] = {pk: p for pk, (p, _) in cls.items()}
    signalled = set(by_author) | set(by_cat) | set(by_search)
    if not r.models:
        scores = _trending_scores(store, settings, sorted(signalled))
    for pk in signalled:
        scores[pk] = scores.get(pk, 0.0) + _AUTHOR_BOOST * bool(by_author.get(pk)) \
            + _CATEGORY_BOOST * bool(by_cat.get(pk)) + _SEARCH_BOOST * bool(by_search.get(pk))  # fmt: skip
    ranked = sorted(scores.items(), key=lambda x: (-x[1], -x[0]))[:limit]
    papers = store.get_papers_by_pk([pk for pk, _ in ranked])
    close = _closest(store, model_id, r.models, [pk for pk, _ in ranked if pk in cls], cls)
    out = []
    for pk, score in ranked:
        sp = papers.get(pk)
        if sp is None:
            continue
        reasons = []
        if pk in close:
            reasons.append(f"close to {close[pk]}")
        reasons += [f"by {r.authors[k]}" for k in by_author.get(pk, [])]
        reasons += [f"matches your saved search {q}" for q in by_search.get(pk, [])]
        reasons += [f"new in {c}" for c in by_cat.get(pk, [])]
        out.append(Recommendation(pk, sp.paper.id, round(float(score), 6), reasons))
    return out


def _closest(store: Store, model_id: str | None, models: list[_Model], pks: list[int],
             cls: dict[int, tuple[float, int]]) -> dict[int, str]:  # fmt: skip
    """pk -> title of the saved paper (of the winning interest) nearest to it."""
    if not pks or not models or not model_id:
        return {}
    positives = sorted({p for m in models for p in m.positives})
    vecs = _vectors(store, model_id, positives + pks)
    titles = {pk: sp.paper.title for pk, sp in store.get_papers_by_pk(positives).items()}
    out = {}
    for pk in pks:
        m = models[cls[pk][1]]
        v = vecs.get(pk)
        cands = [p for p in m.positives if p in vecs and p in titles]
        if v is None or not cands:
            continue
        best = max(cands, key=lambda p: float(vecs[p] @ v))
        t = " ".join(titles[best].split())
        out[pk] = t if len(t) <= _REASON_TITLE else t[: _REASON_TITLE - 1].rstrip() + "…"
    return out


def recommend(
    store: Store,
    settings: Settings,
    user_id: int,
    limit: int = 20,
    since: str | None = None,
    exclude: set[int] | None = None,
) -> list[Recommendation]:
    """The reader's "For you" list, best first; each with plain-word reasons. ``since``: only
    papers that appeared on or after this ISO date (default: the ``foryou_days`` window).
    Never a paper the reader saved, rated or was shown, nor one in ``exclude``."""
    return recommend_many(store, settings, [user_id], limit, since, {user_id: exclude or set()})[user_id]


def recommend_many(
    store: Store,
    settings: Settings,
    user_ids: list[int],
    limit: int = 20,
    since: str | None = None,
    exclude: dict[int, set[int]] | None = None,
    block: int = 256,
) -> dict[int, list[Recommendation]]:
    """``recommend`` for many readers: the window's vectors are loaded once and scored for a
    block of readers in one matrix product."""
    limit = max(0, min(int(limit), 500))
    start, until = window_bounds(store, settings, since)
    mid = _model_id(store, settings)
    model_id = mid[0] if mid else None
    win = _window(store, model_id, start, until) if model_id else None
    if win is None:
        win = _Window(np.zeros(0, np.int64), np.zeros((0, 1), np.float32), store.window_pks(start, until))
    out: dict[int, list[Recommendation]] = {}
    ids = list(dict.fromkeys(int(u) for u in user_ids))
    for i in range(0, len(ids), block):
        readers = [_reader(store, settings, u, model_id, win, (exclude or {}).get(u)) for u in ids[i : i + block]]
        tops = _block_top(win, readers, limit)
        for r in readers:
            out[r.user_id] = _finish(store, settings, r, win, tops.get(r.user_id, {}), start, limit, model_id)
    return out


def _block_top(win: _Window, readers: list[_Reader], limit: int) -> dict[int, dict[int, tuple[float, int]]]:
    """Classifier top-``limit`` of each reader of a block: one product for all their models."""
    cols = [(r, j, m) for r in readers for j, m in enumerate(r.models)]
    if not cols or not len(win.pks):
        return {}
    W = np.stack([m.w for _, _, m in cols]).astype(np.float32)
    b = np.array([m.b for _, _, m in cols], dtype=np.float32)
    S = win.X @ W.T + b  # (papers, models of the block)
    out = {}
    c = 0
    for r in readers:
        n = len(r.models)
        if n:
            part = S[:, c : c + n]
            out[r.user_id] = _top_of(win, part.max(axis=1), part.argmax(axis=1), limit, r.exclude)
        c += n
    return out

