"""The "For you" classifier on the sample papers with their real embeddings: the contract
the digest relies on (fields, exclusions, ``since``), interests per tag merged by best score,
reasons in plain words, the model cache, cold start, and readers kept apart."""

from __future__ import annotations


import pytest

from paperfeed.rank import foryou
from paperfeed.rank.foryou import Recommendation, recommend, recommend_many
from paperfeed.store import author_key, open_store
from tests.db_support import BACKENDS, private_copy
from tests.readers_support import indexed_db
from tests.web_support import HF_TOP, settings_for, shared_cache

AGENTS = "2606.13681"  # EvoArena: LLM agents' memory
ROBOTS = "2606.13515"  # MaskWAM: world-action models for robots


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory):
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory, web_cache):
    return indexed_db(tmp_path_factory.mktemp("foryou") / "papers.db", web_cache)


@pytest.fixture(params=BACKENDS)
def env(request, base_db, tmp_path, web_cache):
    path = private_copy(request, base_db, tmp_path)
    store = open_store(str(path))
    yield store, settings_for(path, web_cache)
    store.close()


def reader(store, email="ada@example.org") -> int:
    return store.get_or_create_user(email)[0].id


def title(store, pid) -> str:
    return store.get_paper(pid).paper.title


def test_contract_reasons_and_exclusions(env):
    store, s = env
    uid = reader(store)
    store.save_paper(uid, AGENTS)
    recs = recommend(store, s, uid, limit=10)
    assert 1 <= len(recs) <= 10 and all(isinstance(r, Recommendation) for r in recs)
    assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
    assert all(r.reasons == [f"close to {title(store, AGENTS)[:79].rstrip()}…"] or
               r.reasons == [f"close to {title(store, AGENTS)}"] for r in recs)  # fmt: skip
    ids = [r.paper_id for r in recs]
    assert AGENTS not in ids  # saved: never recommended
    agentish = sum("agent" in title(store, i).lower() for i in ids[:5])
    assert agentish >= 3, [title(store, i) for i in ids[:5]]
    # Rated, shown and excluded papers drop out; the rest stay in order.
    store.rate_paper(uid, ids[0], -1)
    store.mark_shown(uid, [recs[1].pk])
    again = recommend(store, s, uid, limit=10, exclude={recs[2].pk})
    assert not {ids[0], ids[1], ids[2]} & {r.paper_id for r in again}
    # ``since``: only papers that appeared on or after it.
    late = recommend(store, s, uid, limit=50, since="2026-06-12")
    papers = store.get_papers_by_pk([r.pk for r in late])
    for r in late:
        sp = papers[r.pk]
        assert (sp.paper.published or "") >= "2026-06-12" or any(li["day"] >= "2026-06-12" for li in sp.listings)


def test_each_tag_is_an_interest_merged_by_best_score(env):
    store, s = env
    uid = reader(store)
    store.save_paper(uid, AGENTS, tags=["agents"])
    store.save_paper(uid, ROBOTS, tags=["robots"])
    recs = recommend(store, s, uid, limit=12)
    reasons = {r.reasons[0] for r in recs}
    # Both interests are served, each paper explained by the saved paper it is close to.
    assert any(title(store, AGENTS)[:40] in x for x in reasons)
    assert any(title(store, ROBOTS)[:40] in x for x in reasons)
    models = {m[0] for m in store.get_reader_models(uid)}
    assert models == {"agents", "robots"}


def test_model_is_cached_until_the_library_changes(env, monkeypatch):
    store, s = env
    uid = reader(store)
    store.save_paper(uid, AGENTS)
    fits = []
    real = foryou._fit
    monkeypatch.setattr(foryou, "_fit", lambda P, N: fits.append(len(P)) or real(P, N))
    first = recommend(store, s, uid, limit=5)
    second = recommend(store, s, uid, limit=5)
    assert fits == [1] and first == second  # the second call used the stored model
    store.rate_paper(uid, first[0].paper_id, 1)  # "more like this": the library changed
    third = recommend(store, s, uid, limit=5)
    assert fits == [1, 2] and first[0].paper_id not in [r.paper_id for r in third]


def test_cold_start_follows_and_saved_searches(env):
    store, s = env
    uid = reader(store)
    assert recommend(store, s, uid) == []  # nothing to go on: nothing
    store.follow(uid, "category", "cs.CV", "cs.CV")
    recs = recommend(store, s, uid, limit=50)
    assert recs and all(r.reasons == ["new in cs.CV"] for r in recs)
    papers = store.get_papers_by_pk([r.pk for r in recs])
    assert all(any(c.startswith("cs.CV") for c in papers[r.pk].paper.categories) for r in recs)
    votes = store.vote_counts([r.pk for r in recs])
    assert [votes[r.pk] for r in recs][:3] == sorted(votes.values(), reverse=True)[:3]  # trending first
    name = store.get_paper(AGENTS).paper.authors[0]
    store.follow(uid, "author", author_key(name), name)
    store.add_saved_search(uid, "sparse attention")
    recs = recommend(store, s, uid, limit=100)
    by = {r.paper_id: r.reasons for r in recs}
    assert f"by {name}" in by[AGENTS]
    assert any("matches your saved search sparse attention" in r for rs in by.values() for r in rs)
    assert recs[0].paper_id == AGENTS or f"by {name}" in recs[0].reasons[0]


def test_readers_are_kept_apart_and_many_at_once_matches_one_by_one(env):
    store, s = env
    a, b, c = reader(store, "a@example.org"), reader(store, "b@example.org"), reader(store, "c@example.org")
    store.save_paper(a, AGENTS)
    store.save_paper(b, ROBOTS)
    store.follow(c, "category", "cs.CL", "cs.CL")
    one = {u: recommend(store, s, u, limit=8) for u in (a, b, c)}
    many = recommend_many(store, s, [a, b, c], limit=8)
    assert many == one
    assert {r.reasons[0] for r in one[a]} == {f"close to {title(store, AGENTS)}"} or \
        all(title(store, AGENTS)[:40] in r.reasons[0] for r in one[a])  # fmt: skip
    assert all(title(store, ROBOTS)[:40] in r.reasons[0] for r in one[b])
    assert AGENTS not in [r.paper_id for r in one[a]] and ROBOTS not in [r.paper_id for r in one[b]]


def test_cli_recommend_json(env, cli_for):
    store, s = env
    uid = reader(store)
    store.save_paper(uid, HF_TOP[0])
    proc, out = cli_for(s.db).json("recommend", "ada@example.org", "--limit", "3")
    assert proc.returncode == 0 and len(out) == 3
    assert set(out[0]) == {"id", "title", "score", "reasons"} and out[0]["reasons"][0].startswith("close to ")
    proc = cli_for(s.db)("recommend", "nobody@example.org")
    assert proc.returncode == 2 and "no reader" in proc.stderr
