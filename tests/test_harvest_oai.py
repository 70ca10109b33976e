"""OAI-PMH harvesting against a loopback server replaying pages cut from real recorded
responses (see harvest_support.oai_pages): resumption tokens, malformed pages, dropped
connections, empty first pages, expired tokens, incremental windows."""

from __future__ import annotations

import threading

import pytest

from paperfeed.errors import HarvestError
from paperfeed.harvest.oai import harvest_arxiv
from paperfeed.store import open_store
from tests import harvest_support
from tests.db_support import rows
from tests.harvest_support import (
    OAI_HEP_EX,
    OAI_HEP_TH,
    Drop,
    Reply,
    empty_oai_page,
    oai_error,
    oai_ids,
    oai_router,
    oai_pages,
    settings_for,
    without_final_token,
)

server = harvest_support.server  # the loopback replay server, a fixture

WINDOW = dict(date_from="2024-01-25", date_until="2024-01-26")


@pytest.fixture
def store(db):
    s = open_store(db)
    yield s
    s.close()


def _ids(store) -> list[str]:
    return [r[0] for r in rows(store, "SELECT id FROM papers ORDER BY id")]


def test_multi_page_harvest_follows_tokens_to_the_end(server, store):
    pages, tokens = oai_pages([2, 2, 1])
    server.respond = oai_router(pages, tokens)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    expected = sorted(i for p in pages for i in oai_ids(p))
    assert len(expected) == 5 and _ids(store) == expected
    assert report.complete and report.pages == 3 and report.counts.added == 5
    log = server.requests()
    assert log[0].params == {
        "verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "cs",
        "from": "2024-01-25", "until": "2024-01-26",
    }  # fmt: skip
    assert [r.params.get("resumptionToken") for r in log[1:]] == tokens
    state = store.get_harvest(report.name)
    assert state.complete and state.token is None and state.pages == 3 and state.records == 5


def test_arxiv_format_pages(server, store):
    # 3 + 3 real records from two recorded arXiv-format pages, served as three pages.
    pages, tokens = oai_pages([2, 2, 2], sources=(OAI_HEP_EX, OAI_HEP_TH))
    server.respond = oai_router(pages, tokens)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "physics", fmt="arXiv", **WINDOW)
    assert report.complete and report.counts.added == 6
    assert server.requests()[0].params["metadataPrefix"] == "arXiv"
    p = store.get_paper("1706.05371").paper
    assert p.authors[0] == "Tyler Anderson" and p.categories and p.published


def test_malformed_page_mid_harvest_keeps_earlier_pages_and_resumes(server, store):
    pages, tokens = oai_pages([2, 2, 1])
    broken = {"on": True}

    def override(req, i):
        if i == 1 and broken["on"]:
            return Reply(body=pages[1][: len(pages[1]) // 2])  # cut off mid-record
        return None

    server.respond = oai_router(pages, tokens, override)
    _, settings = settings_for(server, harvest_max_retries=2)
    with pytest.raises(HarvestError) as exc:
        harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    msg = str(exc.value)
    assert "page 2" in msg and "XML syntax error" in msg and "resume" in msg
    assert _ids(store) == sorted(oai_ids(pages[0]))  # page 1 kept
    assert len(server.requests()) == 1 + 3  # page 1, then page 2 tried 1 + 2 retries
    name = "arxiv-oai:cs:oai_dc:2024-01-25..2024-01-26"
    state = store.get_harvest(name)
    assert not state.complete and state.token == tokens[0] and state.pages == 1

    broken["on"] = False
    before = len(server.requests())
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert report.resumed and report.complete and report.pages == 2
    assert server.requests()[before].params == {"verb": "ListRecords", "resumptionToken": tokens[0]}
    assert _ids(store) == sorted(i for p in pages for i in oai_ids(p))


def test_a_page_cut_short_once_is_fetched_again(server, store):
    pages, tokens = oai_pages([3, 2])
    seen = []

    def override(req, i):
        seen.append(i)
        if seen.count(1) == 1 and i == 1:
            return Reply(body=pages[1][:-40])  # lost its closing tags
        return None

    server.respond = oai_router(pages, tokens, override)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert report.complete and report.counts.added == 5 and seen == [0, 1, 1]


def test_connection_dropped_mid_page_is_retried(server, store):
    pages, tokens = oai_pages([2, 3])
    drops = {"left": 2}
    lock = threading.Lock()

    def override(req, i):
        with lock:
            if i == 1 and drops["left"]:
                drops["left"] -= 1
                return Drop(pages[1], keep=len(pages[1]) // 3)
        return None

    server.respond = oai_router(pages, tokens, override)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert report.complete and len(_ids(store)) == 5
    assert [r.params.get("resumptionToken") for r in server.requests()] == [None] + [tokens[0]] * 3


def test_empty_first_page_is_retried_not_taken_as_no_papers(server, store):
    pages, tokens = oai_pages([5])
    calls = []

    def override(req, i):
        calls.append(i)
        return Reply(body=empty_oai_page()) if len(calls) <= 2 else None

    server.respond = oai_router(pages, tokens, override)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert report.complete and report.counts.added == 5 and len(calls) == 3


def test_always_empty_first_page_fails_and_is_not_marked_complete(server, store):
    server.respond = lambda req: Reply(body=empty_oai_page())
    _, settings = settings_for(server, harvest_max_retries=2)
    with pytest.raises(HarvestError, match="empty first page"):
        harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert store.list_harvests() == [] and _ids(store) == []
    assert len(server.requests()) == 3


def test_no_records_match_is_an_explicit_empty_window(server, store):
    server.respond = lambda req: Reply(body=oai_error("noRecordsMatch", "No records"))
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert report.complete and report.counts.added == 0 and len(server.requests()) == 1


def test_list_ending_without_the_final_empty_token_is_stored_complete_with_a_warning(
    server, store
):
    pages, tokens = oai_pages([2, 3])
    pages[-1] = without_final_token(pages[-1])
    server.respond = oai_router(pages, tokens)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    # The last page is stored once, not re-fetched until the harvest gives up.
    assert report.complete and report.pages == 2 and report.counts.added == 5
    assert len(server.requests()) == 2
    assert _ids(store) == sorted(i for p in pages for i in oai_ids(p))
    (warning,) = report.warnings
    assert "without the empty resumptionToken" in warning and "page 2" in warning
    state = store.get_harvest(report.name)
    assert state.complete and state.token is None and state.records == 5


def test_a_page_cut_short_without_its_token_is_still_fetched_again(server, store):
    pages, tokens = oai_pages([2, 3])
    cut = {"once": True}

    def override(req, i):
        if i == 1 and cut["once"]:  # the tail (token and closing tags) lost on the way
            cut["once"] = False
            return Reply(body=pages[1][: pages[1].rindex(b"<resumptionToken")])
        return None

    server.respond = oai_router(pages, tokens, override)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert report.complete and not report.warnings and len(server.requests()) == 3


def test_expired_token_restarts_the_window_without_duplicates(server, store):
    pages, tokens = oai_pages([2, 2, 1])
    expired = {"once": True}

    def override(req, i):
        if i == 2 and expired["once"]:
            expired["once"] = False
            return Reply(body=oai_error("badResumptionToken", "expired"))
        return None

    server.respond = oai_router(pages, tokens, override)
    _, settings = settings_for(server)
    report = harvest_arxiv(store, settings, "cs", fmt="oai_dc", **WINDOW)
    assert report.restarted and report.complete
    assert any("badResumptionToken" in w and "harvested again" in w for w in report.warnings)
    assert report.counts.added == 5 and report.counts.unchanged == 4
    assert len(_ids(store)) == 5
    params = [r.params for r in server.requests()]
    assert "metadataPrefix" in params[0] and "metadataPrefix" in params[3]


def test_oai_error_stops_with_its_code(server, store):
    server.respond = lambda req: Reply(body=oai_error("noSetHierarchy", "no such set"))
    _, settings = settings_for(server)
    with pytest.raises(HarvestError, match="noSetHierarchy"):
        harvest_arxiv(store, settings, "nope", fmt="oai_dc", **WINDOW)
    assert len(server.requests()) == 1


def test_incremental_windows_continue_where_the_last_complete_one_ended(server, store):
    pages, tokens = oai_pages([5])
    server.respond = oai_router(pages, tokens)
    _, settings = settings_for(server)
    r1 = harvest_arxiv(store, settings, "cs", fmt="oai_dc", today="2024-01-27")
    assert (r1.window_from, r1.window_until) == ("2024-01-26", "2024-01-27")
    # A backfill of an old window leaves the incremental position alone.
    harvest_arxiv(store, settings, "cs", fmt="oai_dc", date_from="2023-01-01",
                  date_until="2023-01-02", today="2024-01-28")  # fmt: skip
    r2 = harvest_arxiv(store, settings, "cs", fmt="oai_dc", today="2024-01-30")
    assert (r2.window_from, r2.window_until) == ("2024-01-27", "2024-01-30")
    windows = [(r.params.get("from"), r.params.get("until")) for r in server.requests()]
    assert windows == [
        ("2024-01-26", "2024-01-27"), ("2023-01-01", "2023-01-02"), ("2024-01-27", "2024-01-30")
    ]  # fmt: skip
    assert r2.counts.unchanged == 5 and len(_ids(store)) == 5


def test_bad_windows_are_user_errors(server, store):
    _, settings = settings_for(server)
    with pytest.raises(Exception, match="--until needs --from"):
        harvest_arxiv(store, settings, "cs", date_until="2024-01-02")
    with pytest.raises(Exception, match="before --from"):
        harvest_arxiv(store, settings, "cs", date_from="2024-01-05", date_until="2024-01-02")
    assert server.requests() == []


def test_open_ended_window_resumes_on_a_later_day(server, store):
    pages, tokens = oai_pages([2, 3])
    server.respond = oai_router(
        pages, tokens, lambda req, i: Reply(500, b"down") if i == 1 else None
    )
    _, settings = settings_for(server, harvest_max_retries=1)
    with pytest.raises(HarvestError):
        harvest_arxiv(store, settings, "cs", "2024-01-25", fmt="oai_dc", today="2024-01-27")
    server.respond = oai_router(pages, tokens)
    # The next day, the same command (no --until) goes on with the same window.
    report = harvest_arxiv(store, settings, "cs", "2024-01-25", fmt="oai_dc", today="2024-01-28")
    assert report.resumed and report.complete
    assert (report.window_from, report.window_until) == ("2024-01-25", "2024-01-27")
    assert report.name == "arxiv-oai:cs:oai_dc:2024-01-25.."
