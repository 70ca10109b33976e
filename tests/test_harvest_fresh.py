"""Harvests that never lose freshness silently, against a small OAI-PMH repository on loopback
serving real recorded records (harvest_support.OaiRepository): corrections by datestamp,
deleted records, unknown sets, host names that do not resolve, per-source health, and the
scheduler's arXiv announcement days."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from paperfeed.errors import HarvestError, HarvestOffline
from paperfeed.harvest.hf import harvest_hf_days
from paperfeed.harvest.oai import harvest_arxiv
from paperfeed.harvest.scheduler import (
    ARXIV_TZ,
    Scheduler,
    announces_between,
    last_arxiv_slot,
    next_arxiv_slot,
)
from paperfeed.store import open_store
from tests import harvest_support
from tests.harvest_support import (
    HF_DAY,
    OaiRepository,
    Reply,
    oai_pages,
    oai_router,
    settings_for,
)

server = harvest_support.server  # the loopback replay server, a fixture

SET = "physics:hep-ex"
DAY = "2017-12-14"  # the recorded records' datestamp


@pytest.fixture
def store(db):
    s = open_store(db)
    yield s
    s.close()


@pytest.fixture
def repo(server):
    r = OaiRepository()
    server.respond = r.respond
    return r


def _harvest(store, settings, since, until, set_spec=SET):
    return harvest_arxiv(store, settings, set_spec, since, until, fmt="arXiv")


def _listed_ids(store) -> set[str]:
    rows, _ = store.feed_entries("2000-01-01", "2100-01-01", 100, order="recent")
    papers = store.get_papers_by_pk([r.pk for r in rows])
    return {papers[r.pk].paper.id for r in rows}


# --- corrections ---------------------------------------------------------------------------
def test_a_correction_with_a_newer_datestamp_is_applied_and_an_older_copy_never_rolls_back(
    server, repo, store
):
    _, settings = settings_for(server)
    first = _harvest(store, settings, DAY, DAY)
    assert first.counts.added == 3
    pid = repo.ids()[0]
    before = store.get_paper(pid)
    old_copy = repo.snapshot()

    # arXiv fixes the title: same version, same <updated>, only the datestamp moves.
    repo.correct_title(pid, "Evaluation of SiPMs as Photosensors in Liquid Xenon", "2017-12-20")
    fix = _harvest(store, settings, "2017-12-15", "2017-12-20")
    assert fix.counts.updated == 1 and fix.counts.added == 0
    after = store.get_paper(pid)
    assert after.paper.title == "Evaluation of SiPMs as Photosensors in Liquid Xenon"
    assert after.paper.updated == before.paper.updated and after.rev > before.rev

    # A backfill that replays the older copy (older datestamp) leaves the correction alone.
    repo.restore(old_copy)
    stale = _harvest(store, settings, "2017-12-01", DAY)
    assert stale.counts.updated == 0 and stale.counts.unchanged == 3
    assert store.get_paper(pid).paper.title == after.paper.title


def test_the_same_record_again_is_unchanged(server, repo, store):
    _, settings = settings_for(server)
    _harvest(store, settings, DAY, DAY)
    again = harvest_arxiv(store, settings, SET, DAY, "2017-12-15", fmt="arXiv")
    assert again.counts.unchanged == 3 and again.changed == 0


# --- deletions -------------------------------------------------------------------------------
def test_a_deleted_record_withdraws_the_paper_hides_it_and_is_counted(server, repo, store):
    _, settings = settings_for(server)
    _harvest(store, settings, DAY, DAY)
    gone, kept = repo.ids()[0], repo.ids()[1:]
    cat = store.get_paper(gone).paper.categories[0]
    assert _listed_ids(store) == set(repo.ids())
    in_cat_before = store.category_entries(cat, 50)[1]
    version_before = store.feed_version()

    repo.delete(gone, "2017-12-21")
    report = _harvest(store, settings, "2017-12-15", "2017-12-21")
    assert report.deleted == 1 and report.withdrawn == 1 and report.complete
    assert "1 deleted record (1 stored paper withdrawn)" in report.summary()
    assert report.as_dict()["deleted"] == 1

    sp = store.get_paper(gone)
    assert sp is not None and sp.withdrawn  # kept, and its page can say so
    assert not store.get_paper(kept[0]).withdrawn
    assert _listed_ids(store) == set(kept)
    rows, total = store.category_entries(cat, 50)
    assert total == in_cat_before - 1 and sp.pk not in [r.pk for r in rows]
    assert sp.pk not in store.list_paper_pks(50)
    assert store.feed_version() != version_before  # cached listings are rebuilt

    # The deletion seen again (an overlapping window) withdraws nothing more.
    again = _harvest(store, settings, "2017-12-21", "2017-12-21")
    assert again.deleted == 1 and again.withdrawn == 0


def test_a_record_newer_than_its_deletion_brings_the_paper_back(server, repo, store):
    _, settings = settings_for(server)
    _harvest(store, settings, DAY, DAY)
    pid = repo.ids()[0]
    live = repo.snapshot()
    repo.delete(pid, "2017-12-21")
    _harvest(store, settings, "2017-12-15", "2017-12-21")
    assert store.get_paper(pid).withdrawn

    repo.restore(live)  # the record is live again, with a datestamp after the deletion
    repo.correct_title(pid, "Silicon photomultipliers in liquid xenon", "2017-12-28")
    back = _harvest(store, settings, "2017-12-22", "2017-12-28")
    assert back.counts.updated == 1
    sp = store.get_paper(pid)
    assert not sp.withdrawn and sp.paper.title == "Silicon photomultipliers in liquid xenon"
    assert pid in _listed_ids(store)


def test_a_deletion_of_a_paper_never_stored_is_counted_but_withdraws_nothing(
    server, repo, store
):
    _, settings = settings_for(server)
    repo.delete(repo.ids()[0], DAY)
    report = _harvest(store, settings, DAY, DAY)
    assert report.deleted == 1 and report.withdrawn == 0 and report.counts.added == 2


# --- lists without the final token, unknown sets -----------------------------------------------
def test_repository_that_omits_the_final_token_pages_through_and_completes(server, store):
    repo = OaiRepository(page_size=2, final_token=False)
    server.respond = repo.respond
    _, settings = settings_for(server)
    report = _harvest(store, settings, DAY, DAY)
    assert report.complete and report.pages == 2 and report.counts.added == 3
    assert len(server.requests()) == 2
    assert len(report.warnings) == 1 and "resumptionToken" in report.warnings[0]


def test_unknown_set_answered_no_records_match_is_complete_with_a_warning(server, repo, store):
    _, settings = settings_for(server)
    report = _harvest(store, settings, DAY, DAY, set_spec="physics:hep-exx")
    assert report.complete and report.counts.added == 0
    (warning,) = report.warnings
    assert "'physics:hep-exx'" in warning and "noRecordsMatch" in warning
    assert "check the set name" in warning
    # A set that brought records before: a quiet window is just that, no warning.
    _harvest(store, settings, DAY, DAY)
    quiet = _harvest(store, settings, "2018-01-01", "2018-01-02")
    assert quiet.complete and quiet.warnings == []


# --- offline, and what the store remembers of each source ------------------------------------
def test_a_host_that_does_not_resolve_fails_at_once_and_is_recorded(server, store):
    _, settings = settings_for(
        server,
        arxiv_oai_url="http://paperfeed-test.invalid/oai",
        harvest_max_retries=5,
        harvest_backoff_cap=60,
    )
    t0 = time.monotonic()
    with pytest.raises(HarvestOffline, match="cannot resolve the host name"):
        harvest_arxiv(store, settings, "cs", "2024-01-25", "2024-01-26", fmt="oai_dc")
    assert time.monotonic() - t0 < 5  # no backoffs waited out
    (health,) = store.harvest_summary()
    assert health.source == "arxiv-oai:cs" and health.failing
    assert health.last_success_at is None and "cannot resolve" in health.last_error


def test_harvest_summary_keeps_the_last_success_beside_a_later_failure(server, store):
    pages, tokens = oai_pages([5])
    server.respond = oai_router(pages, tokens)
    _, settings = settings_for(server)
    harvest_arxiv(store, settings, "cs", "2024-01-25", "2024-01-26", fmt="oai_dc")
    server.respond = lambda req: Reply(403, b"go away")
    with pytest.raises(HarvestError):
        harvest_arxiv(store, settings, "cs", "2024-01-27", "2024-01-28", fmt="oai_dc")
    server.respond = lambda req: Reply(
        body=HF_DAY.read_bytes(), content_type="application/json"
    )
    harvest_hf_days(store, settings, [datetime(2026, 6, 12).date()])
    by = {h.source: h for h in store.harvest_summary()}
    assert set(by) == {"arxiv-oai:cs", "hf-daily"}
    cs = by["arxiv-oai:cs"]
    assert cs.last_success_at and cs.last_failure_at >= cs.last_success_at and cs.failing
    assert "403" in cs.last_error
    assert by["hf-daily"].last_success_at and not by["hf-daily"].failing


# --- the scheduler and arXiv's announcement days --------------------------------------------
def _et(y, m, d, hh, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ARXIV_TZ)


def test_arxiv_announces_sunday_to_thursday_evenings_only():
    # 2026-06-12 is a Friday.
    assert announces_between(_et(2026, 6, 11, 21), _et(2026, 6, 12, 21)) is False  # Friday
    assert announces_between(_et(2026, 6, 12, 21), _et(2026, 6, 13, 21)) is False  # Saturday
    assert announces_between(_et(2026, 6, 13, 21), _et(2026, 6, 14, 21)) is True  # Sunday
    assert announces_between(_et(2026, 6, 10, 21), _et(2026, 6, 11, 21)) is True  # Thursday


def test_daily_slots_skip_friday_and_saturday_evenings():
    thursday_night = _et(2026, 6, 11, 21, 30)
    nxt = next_arxiv_slot(thursday_night, "21:00", ARXIV_TZ)
    assert nxt == _et(2026, 6, 14, 21)  # Sunday, not Friday or Saturday
    # Saturday morning: the last slot worth harvesting was Thursday's, not Friday's.
    assert last_arxiv_slot(_et(2026, 6, 13, 9), "21:00", ARXIV_TZ) == _et(2026, 6, 11, 21)
    # A week of slots: five harvests, none on a Friday or Saturday (US Eastern).
    t, seen = _et(2026, 6, 7, 12), []
    for _ in range(5):
        t = next_arxiv_slot(t, "21:00", ARXIV_TZ)
        seen.append(t.astimezone(ARXIV_TZ).strftime("%a"))
    assert seen == ["Sun", "Mon", "Tue", "Wed", "Thu"]
    # A morning slot harvests Thursday evening's announcement on Friday morning.
    assert next_arxiv_slot(_et(2026, 6, 11, 21), "09:00", ARXIV_TZ) == _et(2026, 6, 12, 9)


def test_a_harvest_on_thursday_night_is_not_repeated_until_sunday(server, store, monkeypatch):
    pages, tokens = oai_pages([5])
    server.respond = oai_router(pages, tokens)
    _, settings = settings_for(server, harvest_sets="cs", harvest_format="oai_dc")
    harvest_arxiv(store, settings, "cs", fmt="oai_dc")
    # Pretend the checkpoint was written on Thursday night; it is Saturday noon now.
    state = store.get_harvest("arxiv-oai:cs:oai_dc")
    state.updated_at = _et(2026, 6, 11, 21, 5).astimezone(timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    with store._write() as conn:
        conn.execute("UPDATE harvest_state SET updated_at = ?", (state.updated_at,))
    saturday = _et(2026, 6, 13, 12).astimezone(timezone.utc)
    sched = Scheduler(store, settings)
    assert sched._arxiv_first_due("cs", saturday) == _et(2026, 6, 14, 21)
    assert sched._arxiv_first_due("cs", saturday + timedelta(days=2)) == saturday + timedelta(
        days=2
    )  # Monday: Sunday's slot was missed, run now


# --- what the site shows ---------------------------------------------------------------------
def test_site_footer_shows_last_harvests_and_a_withdrawn_paper_says_so(server, repo, store, db,
                                                                       tmp_path):  # fmt: skip
    from fastapi.testclient import TestClient

    from paperfeed.web.app import create_app
    from paperfeed.web.render import paper_url
    from tests.web_support import settings_for as web_settings

    _, settings = settings_for(server)
    _harvest(store, settings, DAY, DAY)
    gone = repo.ids()[0]
    repo.delete(gone, "2017-12-21")
    _harvest(store, settings, "2017-12-15", "2017-12-21")
    server.respond = lambda req: Reply(403, b"no")
    with pytest.raises(HarvestError):
        harvest_hf_days(store, settings, [datetime(2026, 6, 12).date()])
    with TestClient(create_app(web_settings(db, tmp_path / "cache"))) as c:
        page = c.get(paper_url(gone))
        assert page.status_code == 200 and "Withdrawn." in page.text
        assert "Withdrawn." not in c.get(paper_url(repo.ids()[1])).text
        home = c.get("/").text
        footer = home[home.index('<footer class="site">') :]
        assert "Last harvested: arXiv physics:hep-ex 20" in footer and " UTC" in footer
        assert "Hugging Face never (the last try failed 20" in footer


def test_the_parser_hands_over_deletions_and_datestamps(repo):
    from paperfeed.sources.oai import read_oai_page

    first, second = repo.ids()[:2]
    repo.delete(first, "2017-12-21")
    repo.correct_title(second, "A corrected title", "2017-12-22")
    body = repo.respond(
        harvest_support.Request(0.0, "/oai", {"verb": "ListRecords", "set": SET,
                                              "from": DAY, "until": "2017-12-31"}, {})
    ).body  # fmt: skip
    records, page = read_oai_page(body)
    assert [r.id for r in records] == repo.ids()[1:]  # no Paper for the deleted record
    (d,) = page.deleted
    assert (d.id, d.datestamp) == (first, "2017-12-21") and ":" in d.where
    assert page.datestamps == {second: "2017-12-22", repo.ids()[2]: DAY}
