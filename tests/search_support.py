"""Helpers shared by the search tests."""

from __future__ import annotations

from pathlib import Path

from tests.db_support import pg_clone

__all__ = ["model_cache_dir", "pg_clone", "pg_copy_of_sqlite", "indexed_sample",
           "indexed_sample_pg", "SNAPSHOT", "HF", "sample_settings"]

DATA = Path(__file__).resolve().parent / "data"
SNAPSHOT = DATA / "arxiv-kaggle-snapshot-sample" / "arxiv-metadata-oai-snapshot.head200.jsonl"
HF = DATA / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"
# What the session built already: the search test modules share one indexed sample per
# backend (pytest would build a session fixture once per module that defines it).
_BUILT: dict[tuple, object] = {}


def model_cache_dir(tmp_path_factory) -> Path:
    """One model cache per test session, shared by the search test modules, so the bundled
    model's ONNX export is built once."""
    d = tmp_path_factory.getbasetemp() / "model-cache"
    d.mkdir(exist_ok=True)
    return d


def pg_copy_of_sqlite(pg_server, sqlite_db: Path, files: list[Path], settings_for) -> str:
    """A PostgreSQL database holding the same imported ``files`` as ``sqlite_db``, with its
    vectors copied rather than embedded again, and indexed: the [postgres] twin of a
    session's indexed SQLite database. ``settings_for(url)``: the settings to index with."""
    from paperfeed.importer import import_files
    from paperfeed.search import update_index
    from paperfeed.search.evaluate import copy_vectors
    from paperfeed.search.index import load_embedder
    from paperfeed.store import open_store

    url = pg_server.new_database()
    settings = settings_for(url)
    store = open_store(url)
    try:
        import_files(store, files)
        emb = load_embedder(settings)
        src = open_store(str(sqlite_db), migrate=False)
        try:
            copy_vectors(src, store, emb.model_id, emb.dim)
        finally:
            src.close()
        info = update_index(store, settings)
        assert info["embedded"] == 0, info
    finally:
        store.close()
    return url


def sample_settings(db, cache, **env):
    from paperfeed.config import load_settings

    e = {"PAPERFEED_DB": str(db), "PAPERFEED_CACHE_DIR": str(cache)}
    e.update({f"PAPERFEED_{k.upper()}": str(v) for k, v in env.items()})
    return load_settings(env=e)


def indexed_sample(tmp_path_factory, cache: Path) -> Path:
    """A SQLite database of the real samples (arXiv snapshot head + HF daily papers) with
    keyword index and vectors, built once per session."""
    key = ("sqlite", str(tmp_path_factory.getbasetemp()))
    if key not in _BUILT:
        from paperfeed.importer import import_files
        from paperfeed.search import update_index
        from paperfeed.store import open_store

        db = tmp_path_factory.mktemp("indexed") / "papers.db"
        store = open_store(str(db))
        try:
            report = import_files(store, [SNAPSHOT, HF])
            assert report.added == 230
            info = update_index(store, sample_settings(db, cache))
            assert info["notes"] == [] and info["vectors"] == 230, info
        finally:
            store.close()
        _BUILT[key] = db
    return _BUILT[key]


def indexed_sample_pg(pg_server, tmp_path_factory, cache: Path) -> str:
    """The same sample on the session's PostgreSQL server (vectors copied), built once."""
    key = ("postgres", str(tmp_path_factory.getbasetemp()), pg_server.port)
    if key not in _BUILT:
        _BUILT[key] = pg_copy_of_sqlite(pg_server, indexed_sample(tmp_path_factory, cache),
                                        [SNAPSHOT, HF], lambda url: sample_settings(url, cache))
    return _BUILT[key]
