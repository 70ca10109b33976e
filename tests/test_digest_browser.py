"""A rendered digest mail in headless Chromium (Debian's, through Playwright): desktop and
phone width, light and dark; screenshots land in the test's tmp_path (digest-*.png)."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pytest

from paperfeed.config import load_settings
from paperfeed.digest.compose import compose
from paperfeed.digest.select import Pool
from paperfeed.store import open_store
from tests.db_support import BACKENDS, private_copy
from tests.web_support import XSS_TITLE, build_db, env_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def template_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("digest-browser-template") / "papers.db"
    build_db(path)
    return path


@pytest.fixture(scope="module", params=BACKENDS)
def digest_html(request, template_db, tmp_path_factory):
    root = tmp_path_factory.mktemp("digest-browser")
    db = private_copy(request, template_db, root)
    settings = load_settings(env=env_for(db, root / "cache"))
    s = open_store(str(db))
    try:
        u, _ = s.subscribe("reader@example.org")
        s.confirm_subscription(u.id)
        s.set_digest_prefs(u.id, max_papers=40)
        sub = s.get_subscription(u.id)
        now = datetime.now(timezone.utc)
        d = compose(s, settings, sub, Pool.build(s, settings, sub.seen_pk, now), now)
    finally:
        s.close()
    path = root / "digest.html"
    path.write_text(d.html, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.mark.parametrize(
    "name,width,scheme",
    [("desktop", 1280, "light"), ("phone", 375, "light"), ("phone-dark", 375, "dark")],
)
def test_digest_renders_at_desktop_and_phone_width(browser, digest_html, tmp_path, name, width, scheme):
    ctx = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme,
                              java_script_enabled=True)  # fmt: skip
    page = ctx.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(digest_html.as_uri())
    page.wait_for_load_state("load")
    shot = tmp_path / f"digest-{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    page.screenshot(path=str(tmp_path / f"digest-{name}-top.png"))  # the first screen
    assert shot.stat().st_size > 10_000
    cards = page.locator(".pf-card")
    assert cards.count() >= 10
    # The hostile planted title is shown as text and ran nothing.
    assert page.get_by_text(XSS_TITLE).count() == 1 and dialogs == []
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    first = cards.first.bounding_box()
    assert first["width"] <= width and (width > 600 or first["width"] >= width - 40)
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    dark = bg == "rgb(21, 23, 26)"
    assert dark == (scheme == "dark"), bg
    ctx.close()
