"""The polite HTTP client against a real loopback server: spacing, User-Agent, Retry-After
on 503 and 429, backoff, dropped connections, 403 and unexpected replies, stopping."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from paperfeed.errors import HarvestError, HarvestRefused, HarvestStopped
from paperfeed.harvest.http import PoliteClient, RetryableReply, parse_retry_after
from tests import harvest_support
from tests.harvest_support import (
    CONTACT,
    OAI_DC_PAGE,
    Drop,
    Reply,
    gaps,
    settings_for,
)

server = harvest_support.server  # the loopback replay server, a fixture

BODY = OAI_DC_PAGE.read_bytes()


def _script(*replies):
    """Serve the given replies in order, then the real page for every later request."""
    queue = list(replies)
    lock = threading.Lock()

    def respond(req):
        with lock:
            return queue.pop(0) if queue else Reply(body=BODY)

    return respond


def test_spacing_between_every_request_measured_by_the_server(server):
    # A shortened interval; the gate must hold it between all requests: plain ones, a retry
    # after a 503 without Retry-After (backoff shorter than the interval), and a redirect.
    _, settings = settings_for(server, harvest_interval=0.3, harvest_backoff_cap=0.01)
    server.respond = _script(
        Reply(),
        Reply(503),
        Reply(302, headers={"Location": server.url + "/moved?x=1"}),
        Reply(),
    )
    with PoliteClient(settings) as client:
        for _ in range(4):
            assert client.get(server.url + "/oai").status_code == 200
    log = server.requests()
    assert len(log) == 6  # 4 asked + 1 retry + 1 redirect hop
    assert [r.path for r in log].count("/moved") == 1
    assert all(g >= 0.3 for g in gaps(log)), gaps(log)


def test_user_agent_names_paperfeed_and_the_contact_address(server):
    _, settings = settings_for(server)
    server.respond = _script()
    with PoliteClient(settings) as client:
        client.get(server.url + "/oai")
    ua = server.requests()[0].headers["user-agent"]
    assert ua.startswith("paperfeed/") and f"(mailto:{CONTACT})" in ua


def test_503_with_retry_after_waits_as_asked(server):
    _, settings = settings_for(server)
    server.respond = _script(Reply(503, b"busy", {"Retry-After": "1"}))
    with PoliteClient(settings) as client:
        assert client.get(server.url + "/oai").content == BODY
    log = server.requests()
    assert len(log) == 2
    assert gaps(log)[0] >= 1.0


def test_429_with_retry_after_then_success(server):
    _, settings = settings_for(server)
    server.respond = _script(
        Reply(429, b"slow down", {"Retry-After": "1"}),
        Reply(429, b"slow down", {"Retry-After": "1"}),
    )
    with PoliteClient(settings) as client:
        assert client.get(server.url + "/api/query").status_code == 200
    log = server.requests()
    assert len(log) == 3 and all(g >= 1.0 for g in gaps(log))


def test_retry_after_longer_than_the_cap_stops_without_waiting(server):
    _, settings = settings_for(server, harvest_backoff_cap=5)
    server.respond = _script(Reply(503, b"maintenance", {"Retry-After": "3600"}))
    with PoliteClient(settings) as client, pytest.raises(HarvestError, match="Retry-After"):
        client.get(server.url + "/oai")
    assert len(server.requests()) == 1


def test_403_stops_at_once(server):
    _, settings = settings_for(server)
    server.respond = _script(Reply(403, b"Forbidden"))
    with PoliteClient(settings) as client, pytest.raises(HarvestRefused, match="403"):
        client.get(server.url + "/oai")
    assert len(server.requests()) == 1


def test_unexpected_reply_stops_with_what_came_back(server):
    _, settings = settings_for(server)
    server.respond = _script(Reply(404, b"<h1>no such page</h1>"))
    with PoliteClient(settings) as client, pytest.raises(HarvestError) as exc:
        client.get(server.url + "/oai")
    assert "HTTP 404" in str(exc.value) and "no such page" in str(exc.value)
    assert not isinstance(exc.value, HarvestRefused)
    assert len(server.requests()) == 1


def test_persistent_server_errors_give_up_after_the_retry_budget(server):
    _, settings = settings_for(server, harvest_max_retries=3)
    server.respond = lambda req: Reply(500, b"oops")
    with PoliteClient(settings) as client, pytest.raises(HarvestError, match="gave up after 4"):
        client.get(server.url + "/oai")
    assert len(server.requests()) == 4


def test_connection_dropped_mid_body_is_retried(server):
    _, settings = settings_for(server)
    server.respond = _script(Drop(BODY, keep=300), Drop(BODY, keep=0))
    with PoliteClient(settings) as client:
        assert client.get(server.url + "/oai").content == BODY
    assert len(server.requests()) == 3


def test_a_check_can_ask_for_a_retry(server):
    _, settings = settings_for(server)
    server.respond = _script(Reply(body=b"<truncated"))

    def check(resp):
        if resp.content != BODY:
            raise RetryableReply("page cut short")
        return "ok"

    with PoliteClient(settings) as client:
        assert client.get(server.url + "/oai", check=check) == "ok"
    assert len(server.requests()) == 2


def test_stop_ends_a_wait_with_harvest_stopped(server):
    _, settings = settings_for(server)
    server.respond = _script(Reply(503, b"busy", {"Retry-After": "4"}))
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with PoliteClient(settings, stop=stop) as client, pytest.raises(HarvestStopped):
        client.get(server.url + "/oai")
    assert len(server.requests()) == 1


def test_backoff_is_exponential_with_jitter_and_capped(server):
    _, settings = settings_for(server, harvest_interval=1, harvest_backoff_cap=10)
    low = PoliteClient(settings, rng=lambda: 0.0)
    high = PoliteClient(settings, rng=lambda: 1.0)
    # steps 1, 2, 4, 8, 10 (capped): jitter keeps each wait within [step / 2, step]
    assert [low.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert [high.backoff(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_parse_retry_after_seconds_and_http_date():
    now = datetime(2026, 6, 12, 12, 0, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after("Fri, 12 Jun 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Fri, 12 Jun 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None
