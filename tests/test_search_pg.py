"""Search on PostgreSQL: the database's own keyword search (tsvector + GIN) and each
process's in-memory copy of the stored vectors, on the real sample. What test_search.py
checks on both backends is not repeated here; this is what only PostgreSQL has: no lag, no
folder, hostile text against tsquery, the statement timeout, other connections and other
processes writing, the advisory lock of `paperfeed index`, and evaluation on a URL."""

from __future__ import annotations

import json
import threading
import time

import pytest

from paperfeed.errors import InputError, SearchError
from paperfeed.models import Paper
from paperfeed.search import MODES, search, similar_response, update_index
from paperfeed.search.engine import get_engine
from paperfeed.search.keyword import Filters
from paperfeed.search.query import parse_query
from paperfeed.store import open_store
from paperfeed.store import pg_search
from tests.conftest import DATA, Cli
from tests.db_support import rows
from tests.search_support import (
    SNAPSHOT,
    indexed_sample,
    indexed_sample_pg,
    model_cache_dir,
    pg_clone,
    sample_settings,
)

MINI = DATA / "scifact-mini"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return model_cache_dir(tmp_path_factory)


@pytest.fixture
def pg_env(pg_server, tmp_path_factory, model_cache, tmp_path, monkeypatch):
    """A private copy of the indexed sample on PostgreSQL; the working folder is a fresh
    temporary one, so a stray index folder would show."""
    monkeypatch.chdir(tmp_path)
    url = pg_clone(pg_server, indexed_sample_pg(pg_server, tmp_path_factory, model_cache))
    store = open_store(url)
    yield store, sample_settings(url, model_cache)
    store.close()
    pg_server.drop_database(url)


def _ids(res) -> list[str]:
    return [h.id for h in res.hits]


def _new_paper(pid: str, word: str) -> Paper:
    return Paper(id=pid, title=f"{word.capitalize()} spectroscopy of cold axions",
                 abstract=f"We measure {word} in a trap.", authors=["A. Tester"],
                 categories=["hep-ex"], published="2026-05-01T00:00:00Z", source="test")


# --- the keyword side is the database ----------------------------------------------------


def test_no_lag_no_folder_and_index_says_so(pg_env, tmp_path, model_cache):
    store, s = pg_env
    engine = get_engine(store, s)
    assert engine.in_store and engine.paths is None and engine.lag(store) == 0
    assert engine.index_step(store) == 0
    proc = Cli(s.db, tmp_path)("index", env={"PAPERFEED_CACHE_DIR": str(model_cache)})
    assert proc.returncode == 0, proc.stderr
    assert "keyword: kept by the database as papers are stored (no step needed)" in proc.stdout
    assert "embedded: 0; vectors: 230" in proc.stdout
    # Without pgvector the fallback is said, and used.
    has = bool(rows(store, "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"))
    assert store.pgvector_available() is has
    if not has:
        assert "note: pgvector is not available on this server" in proc.stderr
    assert not any(p.name.endswith(".index") for p in tmp_path.rglob("*"))


def test_backends_rank_the_sample_alike(pg_env, tmp_path_factory, model_cache):
    """Ranking may differ (BM25 in tantivy, ts_rank x IDF here); the answers a reader sees
    first must not."""
    store, s = pg_env
    db = indexed_sample(tmp_path_factory, model_cache)
    lite = open_store(str(db))
    try:
        ls = sample_settings(db, model_cache)
        for q, top in (("diphoton production", "0704.0001"),
                       ("two photons created in proton collisions at accelerators", None),
                       ("benchmark for web agents", None), ("dark matter halos", None),
                       ("quantum gravity", None)):
            for mode in MODES:
                a = _ids(search(lite, q, mode=mode, limit=10, settings=ls))
                b = _ids(search(store, q, mode=mode, limit=10, settings=s))
                assert len(b) == len(a), (q, mode)
                # Semantic uses the same vectors: the same list.
                if mode == "semantic":
                    assert a == b
                assert len(set(a[:10]) & set(b[:10])) >= 6, (q, mode, a, b)
                if top:
                    assert a[0] == b[0] == top
    finally:
        lite.close()


def test_words_are_analysed_like_the_papers(pg_env):
    store, s = pg_env
    store.upsert_papers([Paper(
        id="2605.00001", title="Input/output bounds for GPT-4 on hep-ph data, v1.2.3",
        abstract="Attention is all you need, said Ødegård and Müller (naïve). 3.5 percent.",
        authors=["José Ñúñez", "Łukasz Øster"], published="2026-05-01T00:00:00Z",
        source="test")])
    for q in ("input output", "gpt 4", "hep ph", '"attention is all you need"',
              "odegard", "muller naive", "au:jose au:nunez", "au:Lukasz", "au:oster",
              "ti:bounds", "abs:percent", '"input output bounds"'):
        assert "2605.00001" in _ids(search(store, q, mode="keyword", settings=s)), q
    assert "2605.00001" not in _ids(search(store, "ti:attention", mode="keyword", settings=s))
    # The exact title (any case and spacing) comes first.
    res = search(store, "input/OUTPUT bounds for gpt-4 on HEP-PH data v1.2.3", mode="keyword",
                 settings=s)
    assert res.hits[0].id == "2605.00001"


# --- hostile input -------------------------------------------------------------------------

HOSTILE = [
    "'", "''", "'\\'", "\\", "\\\\'", "a'b", "&", "|", "!", ":*", "a:*", "&|!:*()<->",
    "'a' & 'b'", "quantum & | ! gravity", "!quantum", "quantum:*", "quantum:A", "<2>",
    "a <-> b", "(a | b) & !c", '"', '"quantum', '"&|!"', "ti:'", "au:'", "au:&|", "cat:'",
    "cat:%", "cat:_", "cat:cs.%", "id:'", "id:\\x00", "\x00", "quantum\x00gravity",
    "\x00\x00\x00", "\ud800", "🙂 quantum", "量子 重力", "Ελληνικά", "ﬁeld", "x" * 5000,
    " ".join(["quantum gravity"] * 600), "'; DROP TABLE papers; --", "$$", "$1", "%s",
    "%(x)s", "?", ":name", "E'\\\\'", "U&'\\0041'", "<script>", "a" * 2047 + " b",
]


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_give_results_or_a_clear_error(pg_env, q):
    store, s = pg_env
    for mode in MODES:
        try:
            res = search(store, q, mode=mode, limit=5, settings=s)
        except InputError as e:  # too long for max_query_chars: said plainly
            assert "characters long" in str(e)
            continue
        assert isinstance(res.hits, list) and len(res.hits) <= 5
    assert store.stats()["papers"] == 230


@pytest.mark.parametrize("value", ["'", "\\", "&|!:*", "%", "_", "\x00", "\ud800", "O'Zzyzx",
                                   "a" * 3000, "🙂", ":*", "cs.%"])
def test_hostile_filters(pg_env, value):
    store, s = pg_env
    for mode in MODES:
        for kw in ({"author": value}, {"category": value}):
            res = search(store, "quantum", mode=mode, limit=5, settings=s, **kw)
            assert res.hits == [], (kw, _ids(res))


def test_tsquery_is_made_of_quoted_lexemes_only(pg_env):
    """Whatever the text, the tsquery the store sends is its own: parsing it gives back the
    lexemes PostgreSQL made from the words, and no operator the user typed."""
    store, _ = pg_env
    ki = store.keyword_index()
    q = ki.text_query(parse_query("quantum&gravity !field 'a':* <-> b"))
    sent = [t.tsq for t in q.words]
    lexemes = {lex for t in q.words for lex, _ in t.lexemes}
    assert lexemes == {"quantum", "graviti", "gravity", "field", "a", "b"}
    for tsq in sent:
        back = rows(store, "SELECT ?::tsquery::text", (tsq,))[0][0]
        assert "!" not in back and "<->" not in back and "*" not in back


def test_a_pathological_statement_is_stopped(pg_env, monkeypatch):
    store, s = pg_env
    ki = store.keyword_index()
    monkeypatch.setattr(pg_search, "STATEMENT_TIMEOUT_MS", 100)
    t0 = time.monotonic()
    with pytest.raises(InputError, match=r"took longer than 0\.1 s and was stopped"):
        with ki._timed() as raw:
            raw.execute("SELECT pg_sleep(5)")
    assert time.monotonic() - t0 < 3
    # The connection went back to the pool in order: the next search works.
    assert _ids(search(store, "diphoton production", mode="keyword", settings=s))[0] == "0704.0001"


def test_counts_stop_at_a_cap_and_say_so(pg_env, monkeypatch):
    store, s = pg_env
    full = search(store, "quantum", mode="keyword", limit=50, settings=s)
    assert full.total_exact and full.total > 5
    monkeypatch.setattr(pg_search, "COUNT_CAP", 5)
    capped = search(store, "quantum", mode="keyword", limit=50, settings=s)
    assert not capped.total_exact and capped.total == 5
    assert _ids(capped) == _ids(full)  # only the count stops, not the ranking


def test_the_statistics_spare_counting_a_word_in_more_papers_than_the_cap(pg_env, monkeypatch):
    store, s = pg_env
    with store._read() as conn:
        conn.raw.execute("ANALYZE papers")
    ki = store.keyword_index()
    ki._stats = None  # read the fresh statistics
    common = ki._stats_now()[2]
    word, freq = max(common.items(), key=lambda kv: kv[1])
    n = ki._stats_now()[1]
    assert freq * n >= 4, "the sample has no common word to test with"
    counted = []
    real_count = pg_search.PgKeywordIndex._count
    monkeypatch.setattr(pg_search.PgKeywordIndex, "_count",
                        lambda self, *a: counted.append(a) or real_count(self, *a))
    monkeypatch.setattr(pg_search, "COUNT_CAP", int(freq * n / 1.25) - 1)
    res = search(store, word, mode="keyword", limit=5, settings=s)
    assert not res.total_exact and res.total == pg_search.COUNT_CAP and not counted
    # A filter may drop every paper with the word: then only counting can tell.
    search(store, word, mode="keyword", limit=5, category="hep-th", settings=s)
    assert len(counted) == 1
    # Below the margin the count runs (and is exact when it is under the cap).
    monkeypatch.setattr(pg_search, "COUNT_CAP", int(freq * n) + 1)
    res = search(store, word, mode="keyword", limit=5, settings=s)
    assert len(counted) == 2 and res.total_exact


def test_a_hybrid_total_is_an_estimate_that_stops_counting_early(pg_env, monkeypatch):
    store, s = pg_env
    exact = search(store, "quantum field", mode="keyword", category="hep-th", settings=s)
    assert exact.total_exact and exact.total > 3
    monkeypatch.setattr(pg_search, "ESTIMATE_CAP", 2)
    again = search(store, "quantum field", mode="keyword", category="hep-th", settings=s)
    assert again.total == exact.total and again.total_exact  # keyword mode counts exactly
    caps = []
    real_count = pg_search.PgKeywordIndex._count
    monkeypatch.setattr(pg_search.PgKeywordIndex, "_count", lambda self, raw, where, params,
                        cap=None: caps.append(cap) or real_count(self, raw, where, params, cap))
    hybrid = search(store, "quantum field", mode="hybrid", category="hep-th", settings=s)
    # The words' count stopped at the estimate's cap (the filter's own count, which the
    # semantic side needs, did not), and the planner's estimate took over: near the count.
    assert 2 in caps and not hybrid.total_exact and hybrid.total >= len(hybrid.hits) > 2
    words = search(store, "quantum field", mode="keyword", category="hep-th", limit=1,
                   settings=s).total
    ki = store.keyword_index()
    pq = ki.ranked_query(parse_query("quantum field"), Filters(category="hep-th"))
    with ki._timed() as raw:
        est = ki._estimate(raw, *ki._where(pq))
    assert isinstance(est, pg_search.Estimate) and words / 3 <= est <= words * 3


def test_rarest_words_bound_the_candidates_without_losing_the_answer(pg_env, monkeypatch):
    store, s = pg_env
    wide = _ids(search(store, "calculation of diphoton production cross sections",
                       mode="keyword", settings=s))
    monkeypatch.setattr(pg_search, "CANDIDATE_BUDGET", 1)
    narrow = _ids(search(store, "calculation of diphoton production cross sections",
                         mode="keyword", settings=s))
    assert narrow[0] == wide[0] == "0704.0001"
    assert set(narrow) <= set(wide)


# --- stateless: other connections and other processes ------------------------------------


def test_a_paper_stored_by_another_connection_is_found_at_once(pg_env, tmp_path):
    store, s = pg_env
    assert search(store, "zyxwvut", mode="keyword", settings=s).hits == []
    other = open_store(s.db)  # another pool: as another web process would
    try:
        other.upsert_papers([_new_paper("2601.00001", "zyxwvut")])
    finally:
        other.close()
    for mode in ("keyword", "hybrid"):  # (it has no vector yet: hybrid ranks its words)
        res = search(store, "zyxwvut", mode=mode, settings=s)
        assert _ids(res)[0] == "2601.00001", mode
        assert not any("not searchable yet" in n for n in res.notes)
    # And from another process: `paperfeed import`, then at once a search here.
    rec = json.loads(SNAPSHOT.read_text().splitlines()[0])
    rec.update(id="2601.00002", title="Qwertyuiop resonances", abstract="Qwertyuiop.",
               doi=None, authors="B. Other")
    f = tmp_path / "one.jsonl"
    f.write_text(json.dumps(rec) + "\n")
    proc = Cli(s.db, tmp_path)("import", str(f), "--format", "arxiv-snapshot")
    assert proc.returncode == 0, proc.stderr
    assert _ids(search(store, "qwertyuiop", mode="keyword", settings=s)) == ["2601.00002"]


def test_vectors_written_by_another_process_appear_after_the_follow_interval(
    pg_env, tmp_path, model_cache
):
    store, s = pg_env
    s = s.with_overrides(web_index_every=0.5)
    engine = get_engine(store, s)
    res = search(store, "two photons created in proton collisions", mode="semantic", settings=s)
    assert res.mode == "semantic" and res.notes == []
    vi = engine.current_vectors(store)
    assert vi.size == 230
    other = open_store(s.db)
    try:
        other.upsert_papers([_new_paper("2601.00003", "zorblax")])
    finally:
        other.close()
    # A paper without a vector is matched by its words meanwhile, and says so.
    sim = similar_response(store, "2601.00003", limit=3, settings=s)
    assert sim.mode == "keyword" and "no vector yet" in sim.notes[0]
    # Another process embeds it (`paperfeed index` writes the embeddings table only).
    proc = Cli(s.db, tmp_path)("index", env={"PAPERFEED_CACHE_DIR": str(model_cache)})
    assert proc.returncode == 0 and "embedded: 1" in proc.stdout, proc.stderr
    time.sleep(0.6)
    sim = similar_response(store, "2601.00003", limit=3, settings=s)
    assert sim.mode == "semantic" and sim.notes == []
    assert vi.size == 231
    res = search(store, "zorblax measured in a trap", mode="semantic", limit=3, settings=s)
    assert "2601.00003" in _ids(res)


def test_the_web_follower_keeps_vectors_current_and_writes_no_folder(pg_env, tmp_path):
    from paperfeed.search.follow import IndexFollower

    store, s = pg_env
    engine = get_engine(store, s)
    follower = IndexFollower(store, s, every=0.1)
    follower.start()
    try:
        deadline = time.monotonic() + 20
        while (vi := engine.current_vectors(store, follow=False)) is None or vi.size < 230:
            assert time.monotonic() < deadline, "the follower did not load the vectors"
            time.sleep(0.05)
        # Another connection stores a paper and its vector (copied from 0704.0001's).
        other = open_store(s.db)
        try:
            other.upsert_papers([_new_paper("2601.00004", "wombat")])
            pk = other.get_paper("2601.00004").pk
            src = other.get_paper("0704.0001").pk
            blob = other.get_embeddings(vi.model_id, [src])[src]
            other.put_embeddings(vi.model_id, vi.dim, [(pk, other.max_rev(), b"h" * 8, blob)])
        finally:
            other.close()
        while vi.size < 231:
            assert time.monotonic() < deadline, "the follower did not load the new vector"
            time.sleep(0.05)
    finally:
        follower.stop()
    assert not follower._thread.is_alive()
    assert not any(p.name.endswith(".index") for p in tmp_path.rglob("*"))


def test_web_search_on_postgresql(pg_env, model_cache):
    from fastapi.testclient import TestClient

    from paperfeed.web.app import create_app

    store, s = pg_env
    s = s.with_overrides(secret="test-secret-0123456789abcdef")
    with TestClient(create_app(s, store)) as client:
        got = client.get("/api/search", params={"q": "diphoton production"}).json()
        assert got["papers"][0]["id"] == "0704.0001"
        assert client.app.state.index_follower is not None
        for q in ("&|!:*", "'\\'", "a\x00b"):
            assert client.get("/api/search", params={"q": q}).status_code == 200


def test_one_index_run_at_a_time(pg_env):
    store, s = pg_env
    other = open_store(s.db)
    held, release = threading.Event(), threading.Event()

    def hold():
        with other.search_writer_lock() as got:
            assert got
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        held.wait(10)
        with pytest.raises(SearchError, match="another process is updating the search index"):
            update_index(store, s)
    finally:
        release.set()
        t.join()
        other.close()
    assert update_index(store, s)["embedded"] == 0


# --- evaluation on a URL -------------------------------------------------------------------


def test_eval_beir_on_postgresql_reusing_vectors(pg_server, tmp_path, model_cache):
    cli = Cli(tmp_path / "unused.db", tmp_path)
    env = {"PAPERFEED_CACHE_DIR": str(model_cache)}
    first, second = pg_server.new_database(), pg_server.new_database()
    try:
        proc = cli("eval", "beir", str(MINI), "--split", "train", "--mode", "all", "--db", first,
                   "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        got = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [r["mode"] for r in got] == ["keyword", "semantic", "hybrid"]
        for r in got:
            assert r["queries"] == 20 and 0.5 < r["ndcg@10"] <= 1.0 and r["recall@100"] >= 0.9
        # A second database takes the first one's vectors: the same semantic run, nothing
        # embedded.
        proc = cli("eval", "beir", str(MINI), "--split", "train", "--mode", "semantic",
                   "--db", second, "--vectors-from", first, "--json", env=env)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["ndcg@10"] == got[1]["ndcg@10"]
        store = open_store(second)
        try:
            assert rows(store, "SELECT count(*) FROM embeddings")[0][0] == 200
        finally:
            store.close()
    finally:
        pg_server.drop_database(first)
        pg_server.drop_database(second)
