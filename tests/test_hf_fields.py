"""Hugging Face's own fields of a daily-papers listing (AI summary, keywords, GitHub repository
and stars, project page, organisation): parsed from the real daily JSON, checked, stored with
the listing (migration 0302), exported and read back in paperfeed's JSON lines."""

from __future__ import annotations

import json
import sqlite3

import orjson

from paperfeed.models import Rejected
from paperfeed.sources import iter_file
from paperfeed.sources.hf import hf_fields, parse_hf
from paperfeed.sources.paperfeed_jsonl import parse_paperfeed
from paperfeed.store import open_store
from paperfeed.store.migrations import MIGRATIONS, apply_migrations
from tests.conftest import DATA

HF_FILE = DATA / "hf-daily-papers" / "sotawhat_daily_papers_2026-06-12.json"


def _items() -> list[dict]:
    return json.loads(HF_FILE.read_bytes())


def _by_id() -> dict:
    return {p.id: p for p in iter_file(HF_FILE)}


def test_real_daily_json_fields_are_kept():
    papers = _by_id()
    msa = papers["2606.13392"]  # MiniMax Sparse Attention
    assert msa.hf["github_repo"] == "https://github.com/MiniMax-AI/MSA"
    assert msa.hf["github_stars"] == 251 and msa.hf["organization"] == "MiniMax"
    assert "attention" in msa.hf["ai_summary"].lower()
    assert isinstance(msa.hf["ai_keywords"], list) and msa.hf["ai_keywords"]
    assert "project_page" not in msa.hf  # HF gives none for it
    evo = papers["2606.13681"]
    assert evo.hf["project_page"] == "https://aiden0526.github.io/EvoArena/"
    assert evo.num_comments == 3 and evo.upvotes == 118
    # Every item carries an AI summary and keywords in this capture.
    assert all(p.hf.get("ai_summary") and p.hf.get("ai_keywords") for p in papers.values())
    assert sum("github_repo" in p.hf for p in papers.values()) == 16


def test_hostile_or_wrong_fields_are_dropped_not_fatal():
    item = _items()[0]
    item["paper"].update(
        githubRepo="javascript:alert(1)", githubStars=True, projectPage="data:text/html,x",
        ai_keywords=[1, "  ok  ", None, "<b>x</b>"], ai_summary=42,
    )  # fmt: skip
    (p,) = parse_hf(orjson.dumps([item]), "x.json")
    assert p.hf.get("ai_keywords") == ["ok", "<b>x</b>"]  # text is escaped where it is shown
    assert not {"github_repo", "github_stars", "project_page", "ai_summary"} & set(p.hf)
    assert hf_fields("not a dict") == {}
    assert hf_fields({"github_stars": 5}) == {}  # stars without a repository mean nothing


def test_fields_are_stored_with_the_listing_and_follow_changes(db):
    p = _by_id()["2606.13392"]
    with open_store(db) as store:
        assert store.upsert_papers([p]).added == 1
        (li,) = store.get_paper(p.id).listings
        assert li["fields"] == p.hf and li["num_comments"] == 4
        assert store.upsert_papers([p]).unchanged == 1
        p.hf = {**p.hf, "github_stars": 300}  # a later capture of the same day
        assert store.upsert_papers([p]).updated == 1
        assert store.get_paper(p.id).listings[0]["fields"]["github_stars"] == 300


def test_export_round_trip_and_bad_hf_object(tmp_path):
    p = _by_id()["2606.13681"]
    line = orjson.dumps({"id": p.id, "title": p.title, "hf": p.hf, "listed_on": p.listed_on})
    (back,) = parse_paperfeed([line], "s.jsonl")
    assert back.hf == p.hf
    bad = orjson.dumps({"id": p.id, "title": p.title, "hf": ["no"]})
    (rej,) = parse_paperfeed([bad], "s.jsonl")
    assert isinstance(rej, Rejected) and rej.where == "s.jsonl:1" and "'hf'" in rej.why


# SQLite-only: migration 0302 of SQLite files; PostgreSQL's schema starts past it (0501).
def test_migration_adds_the_column_to_an_older_database(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    older = [m for m in MIGRATIONS if m[0] != "0302_hf_listing_fields"]
    apply_migrations(conn, older)
    conn.execute("INSERT INTO papers (id, title, content_hash, added_at, rev) VALUES "
                 "('2606.00001', 't', x'00', 'now', 1)")  # fmt: skip
    conn.execute("INSERT INTO hf_listings (paper_pk, day, upvotes) VALUES (1, '2026-06-12', 3)")
    conn.close()
    with open_store(str(path)) as store:
        (li,) = store.get_paper("2606.00001").listings
    assert li == {"day": "2026-06-12", "upvotes": 3, "num_comments": 0, "fields": {}}
