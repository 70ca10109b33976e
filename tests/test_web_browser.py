"""End to end: `paperfeed serve` as a real process on loopback, driven by headless Chromium
(Debian's /usr/bin/chromium through Playwright). Screenshots of the home page, a day, a paper
page and search, on a desktop (1280 px) and a phone (390 px), land in $PAPERFEED_SCREENSHOTS
(default tests/screenshots/, git-ignored) for a person to look at.

Also here, without a browser: `serve` prints its URL and serves, with one worker and with
several (whose settings travel through the environment)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.db_support import BACKENDS, private_copy
from tests.web_support import (
    HF_DAY,
    HF_TOP,
    XSS_ID,
    XSS_TITLE,
    Served,
    copy_like,
    sample_template,
    shared_cache,
)

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("PAPERFEED_SCREENSHOTS") or Path(__file__).parent / "screenshots")
VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory):
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def web_db(request, tmp_path_factory):
    """The module's sample database, on each backend in turn."""
    return private_copy(request, sample_template(tmp_path_factory), tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="module")
def served(tmp_path_factory, web_db, web_cache):
    root = tmp_path_factory.mktemp("served")
    server = Served(web_db, web_cache, root)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.dialogs = []  # every alert/confirm/prompt the page opens
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.console_errors = []
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    yield pg
    context.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def titles(pg) -> list[str]:
    return [t.strip() for t in pg.locator("article.paper h2.title a").all_inner_texts()]


def test_home_lists_the_sample_papers(served, page, tmp_path):
    resp = page.goto(served.url + "/")
    assert resp.status == 200
    shown = titles(page)
    assert len(shown) == 25  # a full first page
    assert shown[0].startswith(HF_TOP[1])
    assert "MiniMax Sparse Attention" in shown
    assert page.get_by_text("Get trending papers in your email inbox!").is_visible()
    page.screenshot(path=tmp_path / "home.png", full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.reload()
    # Nothing sticks out sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=tmp_path / "home-phone.png")
    assert (tmp_path / "home.png").stat().st_size > 10_000
    assert (tmp_path / "home-phone.png").stat().st_size > 10_000
    assert page.console_errors == []


def test_search_returns_the_expected_paper(served, page, tmp_path):
    page.goto(served.url + "/")
    page.fill("header form.search input[name=q]", "EvoArena memory evolution")
    page.press("header form.search input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"/search\?q=EvoArena"))
    assert titles(page)[0].startswith("EvoArena: Tracking Memory Evolution")
    page.screenshot(path=tmp_path / "search.png", full_page=True)
    assert (tmp_path / "search.png").exists()


def test_daily_navigation(served, page, tmp_path):
    page.goto(served.url + "/daily")
    assert page.url.endswith(f"/daily/{HF_DAY}")
    assert page.locator("h1").inner_text() == "Friday, 12 June 2026"
    assert titles(page)[0].startswith(HF_TOP[1])
    page.screenshot(path=tmp_path / "day.png", full_page=True)
    page.click("nav.days a[rel=prev]")
    page.wait_for_url(re.compile(r"/daily/2026-06-11$"))
    assert "MaskWAM: Unifying Mask Prompting and Prediction for World-Action Models" in titles(page)
    page.screenshot(path=tmp_path / "prev-day.png", full_page=True)
    page.click("nav.days a[rel=next]")
    page.wait_for_url(re.compile(f"/daily/{HF_DAY}$"))
    page.click("nav.days .up a >> text=Week 2026-W24")
    page.wait_for_url(re.compile(r"/week/2026-W24$"))
    assert titles(page)[0].startswith(HF_TOP[1])
    # A folded abstract opens on a click, without any script.
    page.goto(served.url + f"/daily/{HF_DAY}")
    first = page.locator("details.abstract").first
    assert first.get_attribute("open") is None
    first.locator("summary").click()
    assert first.get_attribute("open") is not None
    for name in ("day.png", "prev-day.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_planted_xss_title_triggers_no_dialog(served, page, tmp_path):
    for path in ("/", f"/daily/{HF_DAY}", f"/papers/{XSS_ID}", "/search?q=hostile+abstract"):
        page.goto(served.url + path)
        page.wait_for_load_state("load")
        assert page.get_by_text(XSS_TITLE, exact=True).count() >= 1, path  # shown as text
        assert page.locator("img, script").count() == 0, path
    page.screenshot(path=tmp_path / "xss-paper.png", full_page=True)
    page.wait_for_timeout(300)  # let any (blocked) handler have its chance
    assert page.dialogs == []
    assert (tmp_path / "xss-paper.png").exists()


def test_paper_page_with_math(served, page, tmp_path):
    page.goto(served.url + "/papers/2606.99002")
    assert page.locator("h1 math").count() == 1
    page.screenshot(path=tmp_path / "paper-math.png")
    assert (tmp_path / "paper-math.png").exists()


SCREENS = {
    "home": "/",
    "day": f"/daily/{HF_DAY}",
    "paper": "/papers/2606.13392",  # an HF paper: AI summary, GitHub stars, topics
    "search": "/search?q=agents+memory",
}


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_screenshots_of_the_main_pages(served, browser, shots, device):
    """The pages a new user sees first, as a desktop and a phone show them: saved for a person
    to look at, and checked for what a look would catch (content, nothing wider than the
    screen, no script errors)."""
    w, h = VIEWPORTS[device]
    context = browser.new_context(viewport={"width": w, "height": h}, is_mobile=device == "phone")
    try:
        pg = context.new_page()
        errors: list[str] = []
        pg.on("console", lambda m: m.type == "error" and errors.append(m.text))
        for name, path in SCREENS.items():
            resp = pg.goto(served.url + path)
            assert resp.status == 200, path
            assert pg.evaluate("document.documentElement.scrollWidth") <= w, (name, device)
            out = shots / f"{name}-{device}.png"
            pg.screenshot(path=out, full_page=True)
            assert out.stat().st_size > 10_000
            if name in ("home", "day", "search"):
                assert len(titles(pg)) >= 5, name
        assert errors == []
    finally:
        context.close()


# --- serve without a browser ---------------------------------------------------------------
def test_serve_prints_url_and_serves_the_db_given(served):
    r = httpx.get(served.url + "/api/papers/" + HF_TOP[0])
    assert r.status_code == 200 and r.json()["votes"] == 118


def _workers(server) -> list[psutil.Process]:
    return [c for c in psutil.Process(server.proc.pid).children() if c.is_running()]


def test_serve_with_two_workers_replaces_a_dead_one(request, tmp_path_factory, tmp_path, web_db,
                                                    served):
    db = copy_like(request, web_db, sample_template(tmp_path_factory), tmp_path)
    server = Served(db, tmp_path / "cache", tmp_path, "--workers", "2")
    try:
        workers = _workers(server)
        assert len(workers) == 2
        # The workers serve the database given with --db (not the default paperfeed.db).
        for _ in range(4):
            r = httpx.get(server.url + "/api/papers/" + HF_TOP[0], timeout=30)
            assert r.status_code == 200 and r.json()["id"] == HF_TOP[0]
        workers[0].kill()
        workers[0].wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alive = _workers(server)
            if len(alive) == 2 and workers[0].pid not in {w.pid for w in alive}:
                break
            time.sleep(0.2)
        assert len(_workers(server)) == 2, "the dead worker was replaced"
        for _ in range(4):
            assert httpx.get(server.url + "/api/trending", timeout=30).status_code == 200
    finally:
        server.stop()
    assert server.proc.returncode == 0
