"""A reader's first visit in headless Chromium against a real `paperfeed serve`: sign in
through the link mailed to the Maildir outbox, upvote a paper and see its trending rank move,
save a paper, find it in the library, see a recommendation with its reason, sign out.
Screenshots land in the test's tmp_path."""

from __future__ import annotations

import mailbox
import os
import re

import pytest

from tests.db_support import BACKENDS, is_pg, private_copy
from tests.readers_support import indexed_db, link_in
from tests.web_support import Served, shared_cache
from tests.test_web_browser import ARGS, CHROMIUM

VOTE_FOR = "Getting Better at Working With You"  # 2 HF upvotes: a vote lifts it past others
SAVE = "EvoArena"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    cache = shared_cache(tmp_path_factory)
    return indexed_db(tmp_path_factory.mktemp("readers-template") / "papers.db", cache)


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, template_db, tmp_path_factory):
    cache = shared_cache(tmp_path_factory)
    root = tmp_path_factory.mktemp("readers-served")
    db = private_copy(request, template_db, root)
    server = Served(db, cache, root)
    # The outbox: beside a SQLite file; for PostgreSQL, in serve's working folder (root).
    server.maildir = root / ("paperfeed.maildir" if is_pg(db) else "papers.maildir")
    yield server
    server.stop()


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = b.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.console_errors = []
        pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
        yield pg
        context.close()
        b.close()


def card(pg, title: str):
    return pg.locator("article.paper", has=pg.locator("h2.title a", has_text=title))


def rank_of(pg, title: str) -> int:
    return int(card(pg, title).locator("span.rank").inner_text().rstrip("."))


def test_reader_signs_in_votes_saves_and_gets_picks(served, page, tmp_path):
    url = served.url
    page.goto(url + "/login")
    page.fill("input[name=email]", "reader@example.org")
    page.click("text=Mail me a link")
    assert "a sign-in link is on its way" in page.locator("main").inner_text()
    (msg,) = list(mailbox.Maildir(str(served.maildir), create=False))
    link = re.sub(r"^https?://[^/]+", url, link_in(msg))
    page.goto(link)  # opening the link shows a button; it does not sign in by itself
    assert page.locator("h1").inner_text() == "Sign in as reader@example.org"
    page.screenshot(path=tmp_path / "confirm.png")
    page.click("#confirm-sign-in")
    page.wait_for_url(re.compile(r"/for-you$"))
    assert page.locator("nav.reader >> text=Sign out").count() == 1

    page.goto(url + "/")
    before = rank_of(page, VOTE_FOR)
    votes = int(card(page, VOTE_FOR).locator(".votes .n").inner_text())
    card(page, VOTE_FOR).locator("button.vote").click()
    page.wait_for_url(url + "/")
    after = rank_of(page, VOTE_FOR)
    assert after < before, (before, after)
    assert int(card(page, VOTE_FOR).locator(".votes .n").inner_text()) == votes + 1
    assert card(page, VOTE_FOR).locator("button.vote").get_attribute("aria-pressed") == "true"
    page.screenshot(path=tmp_path / "voted.png", full_page=True)

    card(page, SAVE).locator("text=Save").first.click()
    page.wait_for_url(url + "/")
    assert card(page, SAVE).locator("button[aria-pressed=true]", has_text="Saved").count() == 1
    page.click("nav.reader >> text=Library")
    page.wait_for_url(re.compile(r"/library$"))
    assert page.locator("article.paper h2.title", has_text=SAVE).count() == 1

    page.click("nav.reader >> text=For you")
    page.wait_for_url(re.compile(r"/for-you$"))
    why = page.locator("p.why").first.inner_text()
    assert why.startswith("Why: close to EvoArena"), why
    assert page.locator("article.paper h2.title", has_text=SAVE).count() == 0  # saved: not picked
    page.screenshot(path=tmp_path / "for-you.png", full_page=True)

    page.click("nav.reader >> text=Sign out")
    page.wait_for_url(url + "/")
    assert page.locator("nav.reader >> text=Sign in").count() == 1
    page.goto(url + "/library")
    assert "/login" in page.url
    assert page.console_errors == []
    for name in ("confirm.png", "voted.png", "for-you.png"):
        assert (tmp_path / name).stat().st_size > 10_000
