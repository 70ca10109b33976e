"""The web app in-process (FastAPI TestClient) over a real SQLite file filled from the bundled
sample: every page, API endpoint and feed; hostile requests; escaping; security headers;
subscribe and submit (through a loopback server replaying a recorded arXiv API response)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import quote

import feedparser
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from paperfeed.store import open_store
from paperfeed.web import api, feeds, pages
from paperfeed.web.app import create_app
from tests.conftest import DATA
from tests.db_support import BACKENDS, private_copy, query
from tests.readers_support import csrf_of, sign_in
from tests.web_support import (
    HF_DAY,
    HF_TOP,
    MATH_ID,
    OLD_ID,
    UNLISTED_ID,
    UNLISTED_TITLE,
    XSS_ID,
    XSS_TITLE,
    copy_like,
    sample_template,
    settings_for,
    shared_cache,
)

ATOM_ONE = DATA / "arxiv-api-fixtures" / "atom" / "zoia_id_list_1601.00001.xml"
ATOM_NS = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory):
    return shared_cache(tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def web_db(request, tmp_path_factory):
    """The module's shared sample database, on each backend in turn."""
    return private_copy(request, sample_template(tmp_path_factory), tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(web_db, web_cache):
    """A read-only view of the shared database: tests that write get ``fresh_client``."""
    with TestClient(create_app(settings_for(web_db, web_cache))) as c:
        yield c


@pytest.fixture
def fresh_db(request, web_db, tmp_path_factory, tmp_path):
    """This test's own copy of the sample, on the backend of the module's ``web_db``."""
    return copy_like(request, web_db, sample_template(tmp_path_factory), tmp_path)


def fresh_client(db, cache, **settings) -> TestClient:
    """A client with its own settings; use it in a ``with`` block (it closes the store)."""
    return TestClient(create_app(settings_for(db, cache, **settings)))


class Tags(HTMLParser):
    """Every start tag with its attributes: to prove that no planted markup became markup."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def named(self, name):
        return [a for t, a in self.tags if t == name]


def assert_inert(html: str) -> None:
    tags = Tags(html)
    assert tags.named("script") == [] and tags.named("img") == []
    for tag, attrs in tags.tags:
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        for k in ("href", "src", "action"):
            assert not (attrs.get(k) or "").strip().lower().startswith("javascript:"), (tag, attrs)


# --- pages ---------------------------------------------------------------------------------
def test_home_is_trending_sample_papers_ranked_by_votes(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "Get trending papers in your email inbox!" in html
    assert 'action="/subscribe"' in html
    # The most upvoted paper of the HF sample comes first, and the planted 7-vote paper is
    # below the 118-vote one.
    assert html.index(HF_TOP[1]) < html.index("MiniMax Sparse Attention")
    assert html.index(HF_TOP[1]) < html.index("&lt;img src=x onerror=alert(1)&gt;")
    assert 'href="/papers/2606.13681"' in html
    assert 'href="/feeds/trending.atom"' in html


def test_home_says_in_plain_words_which_window_it_shows(client):
    """The sample is months older than the clock: nothing in the widest window (60 days), so
    trending shows the days up to the newest one with papers, and says so."""
    html = client.get("/").text
    assert (
        "Nothing was listed in the last 60 days, so this shows the newest papers here: "
        "37 papers listed 10–12 June 2026, most voted first." in html
    )
    data = client.get("/api/trending").json()
    assert data["window"] == ["2026-06-10", "2026-06-13"] and data["total"] == 37
    assert data["window_text"].startswith("Nothing was listed in the last 60 days")
    feed = feedparser.parse(client.get("/feeds/trending.atom").content)
    assert feed.feed.subtitle == data["window_text"]
    # Nothing older than the window, voted or not, fills the later pages.
    every = client.get("/api/trending", params={"limit": 100}).json()["papers"]
    assert len(every) == 37 and min(p["day"] for p in every) == "2026-06-10"
    assert client.get("/", params={"page": 3}).status_code == 404  # 37 papers: two pages


def test_trending_follows_now_and_the_window_setting(fresh_db, web_cache):
    """Papers of today: the window is the last N days back from now, and only widens (up to
    trending_max_days) when that does not fill a page."""
    with open_store(str(fresh_db)) as store:
        store.add_submission("2606.13515", "local")  # listed today
    with fresh_client(fresh_db, web_cache, PAPERFEED_TRENDING_MAX_DAYS="3") as c:
        data = c.get("/api/trending").json()
        assert [p["id"] for p in data["papers"]] == ["2606.13515"]
        assert data["window_text"].startswith("Listed in the last 3 days (")
        assert data["window_text"].endswith(": 1 paper, most voted first.")
        assert "Listed in the last 3 days" in c.get("/").text
    with fresh_client(fresh_db, web_cache, PAPERFEED_TRENDING_WINDOW_DAYS="1") as c:
        # One paper does not fill a page: widened by doubling up to 60 days, no further.
        data = c.get("/api/trending").json()
        assert data["window_text"].startswith("Listed in the last 60 days (")  # the cap
        assert "; widened from 1 to fill a page): 1 paper" in data["window_text"]
        assert [p["id"] for p in data["papers"]] == ["2606.13515"]


def test_trending_api_orders_by_score_and_voted_before_unvoted(client):
    data = client.get("/api/trending", params={"limit": 100}).json()
    papers = data["papers"]
    assert papers[0]["id"] == HF_TOP[0] and papers[0]["votes"] == 118
    scores = [p["score"] for p in papers]
    assert scores == sorted(scores, reverse=True)
    voted = [p for p in papers if p["votes"] > 0]
    assert len(voted) >= 28 and all(p["score"] > 0 for p in voted)
    assert papers.index(voted[-1]) == len(voted) - 1  # unvoted ones only after
    assert data["total"] == len(papers)
    assert data["as_of"] == "2026-06-13T00:00:00Z"  # the sample's newest day ends then


def test_daily_redirects_to_newest_day_and_navigates(client):
    r = client.get("/daily", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == f"/daily/{HF_DAY}"
    html = client.get(f"/daily/{HF_DAY}").text
    # 30 papers from the HF file plus the planted one, most voted first.
    assert "31 papers" in html
    assert html.index(HF_TOP[1]) < html.index("MiniMax Sparse Attention")
    assert 'rel="prev" class="prev" href="/daily/2026-06-11"' in html
    assert "/week/2026-W24" in html and "/month/2026-06" in html
    prev = client.get("/daily/2026-06-11").text
    # Papers HF listed on the 12th are shown on that day only, not on their arXiv day.
    assert HF_TOP[1] not in prev
    assert "MaskWAM" in prev  # an arXiv API paper published on the 11th
    assert f'href="/daily/{HF_DAY}"' in prev  # next day


def test_empty_day_still_navigates(client):
    r = client.get("/daily/2020-02-29")
    assert r.status_code == 200
    assert "No papers were listed on this day." in r.text
    assert 'rel="next"' in r.text


def test_week_and_month_views(client):
    week = client.get("/week/2026-W24")
    assert week.status_code == 200
    assert HF_TOP[1] in week.text  # the most voted first ...
    assert "MaskWAM" in client.get("/week/2026-W24", params={"page": 2}).text  # unvoted later
    assert 'href="/week/2026-W23"' in week.text and 'href="/week/2026-W25"' in week.text
    month = client.get("/month/2026-06")
    assert month.status_code == 200 and HF_TOP[1] in month.text
    assert 'href="/month/2026-05"' in month.text and 'href="/month/2026-07"' in month.text
    assert client.get("/month/2026-12").text.count('href="/month/2027-01"') == 1


def test_listing_pages_through(client, web_db, web_cache):
    with fresh_client(web_db, web_cache, PAPERFEED_PAGE_SIZE="10") as c:
        first = c.get(f"/daily/{HF_DAY}").text
        second = c.get(f"/daily/{HF_DAY}", params={"page": 2}).text
        assert c.get(f"/daily/{HF_DAY}", params={"page": 5}).status_code == 404
    assert 'href="/daily/2026-06-12?page=2"' in first and "Page 1 of 4" in first
    assert HF_TOP[1] in first and HF_TOP[1] not in second


def test_paper_page_full_record_links_and_similar(client):
    r = client.get("/papers/2606.13681")
    assert r.status_code == 200
    html = r.text
    assert "EvoArena" in html
    assert 'href="https://arxiv.org/abs/2606.13681"' in html
    assert 'href="https://arxiv.org/pdf/2606.13681"' in html
    assert "118" in html and f'href="/daily/{HF_DAY}"' in html
    assert "Similar papers" in html
    assert client.get("/papers/2606.13681v3", follow_redirects=False).headers["location"] == (
        "/papers/2606.13681"
    )


def test_paper_with_old_style_id_and_namespaced_id(client):
    r = client.get(f"/papers/{OLD_ID}")
    assert r.status_code == 200 and "An old-style identifier" in r.text
    assert f'href="https://arxiv.org/abs/{OLD_ID}"' in r.text
    seed = client.get(f"/papers/{UNLISTED_ID}")
    assert seed.status_code == 200 and "Mixture of Shards" in seed.text
    assert "arxiv.org/abs/seed" not in seed.text  # no arXiv links for non-arXiv ids


def test_records_readers_cannot_open_do_not_crowd_anything(client):
    """The planted seed-listing record (no arXiv id, authors or date) matches "LLM agents
    memory evolution" better than any paper, yet no listing, search, feed or similar-papers
    list shows it."""
    q = "LLM agents memory evolution dynamic environments"
    search = client.get("/search", params={"q": q}).text
    assert "EvoArena" in search and UNLISTED_TITLE not in search
    api = client.get("/api/search", params={"q": q}).json()["papers"]
    assert api and UNLISTED_ID not in [p["id"] for p in api]
    feed = feedparser.parse(client.get("/feeds/search.atom", params={"q": q}).content)
    assert feed.entries and not any(e.id.endswith(UNLISTED_ID) for e in feed.entries)
    for f in ("/feeds/trending.atom", "/feeds/daily.atom"):
        assert UNLISTED_ID.encode() not in client.get(f).content
    paper = client.get(f"/papers/{HF_TOP[0]}").text
    related = paper[paper.index("Similar papers"):]
    assert "<li>" in related and UNLISTED_TITLE not in related
    assert "2026" not in client.get(f"/papers/{UNLISTED_ID}").text.split("<dl")[1][:200]


def test_the_bundled_sample_is_a_real_day_of_papers():
    """Every record of the bundled sample is a paper a reader can open and place."""
    from paperfeed.importer import sample_path
    from paperfeed.sources import iter_file
    from paperfeed.store.base import is_listable

    papers = list(iter_file(sample_path()))
    assert len(papers) == 61 and all(is_listable(p) for p in papers)
    assert not any(":" in p.id for p in papers)


def test_paper_page_shows_the_hugging_face_record(client):
    html = client.get("/papers/2606.13392").text  # MiniMax Sparse Attention, HF-only
    assert ">Hugging Face</a>" in html and ">Hf<" not in html
    assert "AI summary (Hugging Face)" in html
    assert 'href="https://github.com/MiniMax-AI/MSA"' in html and ">MiniMax-AI/MSA</a>" in html
    assert "251 GitHub stars" in html
    assert "103 upvotes, 4 comments" in html
    assert "Organisation</dt><dd>MiniMax</dd>" in html
    # HF gives no arXiv categories: its topics are shown, and the page says why.
    assert "Topics (Hugging Face):" in html and html.count('class="tag"') >= 5
    assert "Hugging Face listings carry no arXiv categories" in html
    project = client.get("/papers/2606.13681").text
    assert 'href="https://aiden0526.github.io/EvoArena/"' in project
    assert "Project page" in project and "9 GitHub stars" in project
    # A paper with arXiv categories shows them, and no "not known" line.
    arxiv = client.get("/papers/2606.13515").text
    assert 'href="/category/cs.CV"' in arxiv and "carry no arXiv categories" not in arxiv


def test_unknown_arxiv_id_offers_to_fetch_it(client):
    r = client.get("/papers/2607.00001")
    assert r.status_code == 404
    form = [a for t, a in Tags(r.text).tags if t == "form" and a.get("action") == "/submit"]
    assert form and form[0]["method"] == "post"
    hidden = [a for t, a in Tags(r.text).tags if t == "input" and a.get("name") == "paper_id"]
    assert hidden[-1]["value"] == "2607.00001" and hidden[-1]["type"] == "hidden"
    # Not an arXiv id: a plain 404, nothing to fetch.
    plain = client.get("/papers/nope:1")
    assert plain.status_code == 404 and 'action="/submit"' not in plain.text


def test_math_renders_as_mathml_and_broken_math_as_source(client):
    html = client.get(f"/papers/{MATH_ID}").text
    assert "<math" in html and "<mi>n</mi>" in html
    assert "$\\frac{1}{$" in html  # the span that does not convert stays text


def test_search_finds_expected_paper_and_shows_notes(client):
    r = client.get("/search", params={"q": "EvoArena memory evolution"})
    assert r.status_code == 200
    html = r.text
    first = html.index('class="paper"')
    assert "EvoArena: Tracking Memory Evolution" in html[first : first + 2000]
    # The search engine's notes (e.g. why semantic search is not used) are shown.
    assert 'class="notice"' in html
    assert 'href="/feeds/search.atom?q=EvoArena+memory+evolution' in html


def test_search_filters_and_paging(client, web_db, web_cache):
    r = client.get("/search", params={"q": "model", "category": "cs.CV"})
    assert r.status_code == 200
    assert "MaskWAM" in r.text
    with fresh_client(web_db, web_cache, PAPERFEED_PAGE_SIZE="3") as c:
        one = c.get("/search", params={"q": "model", "mode": "keyword"}).text
        two = c.get("/search", params={"q": "model", "mode": "keyword", "page": 2}).text
    assert 'href="/search?q=model&amp;mode=keyword&amp;page=2"' in one
    ids = lambda h: {a["href"] for _, a in Tags(h).tags if a.get("href", "").startswith("/papers/")}  # noqa: E731
    assert ids(one) and ids(two) and not ids(one) & ids(two)


def test_empty_search_shows_the_form(client):
    r = client.get("/search")
    assert r.status_code == 200 and 'name="q"' in r.text and 'class="paper"' not in r.text


def test_category_page(client):
    r = client.get("/category/cs.CV")
    assert r.status_code == 200 and "MaskWAM" in r.text
    assert 'href="/feeds/category/cs.CV.atom"' in r.text


def test_archive_pages_list_the_whole_archive(client):
    """/category/cs lists every cs.* paper once (as the CLI's --category cs does)."""
    cs = client.get("/api/papers", params={"limit": 100}).json()["papers"]
    in_cs = {p["id"] for p in cs if any(c.split(".")[0] == "cs" for c in p["categories"])}
    with_listed = {p["id"] for p in cs if p["published"] and p["authors"]}
    r = client.get("/category/cs")
    assert r.status_code == 200
    assert f"{len(in_cs & with_listed)} papers in the cs archive (all its categories)" in r.text
    assert "MaskWAM" in r.text and "An old-style identifier" not in r.text
    math = client.get("/category/math")
    assert math.status_code == 200
    assert "1303.2033" in math.text  # cs.DS with math.NA
    # math-ph is an archive of its own: a cs.LG + math-ph paper is not in math.
    assert "2606.13568" not in math.text and "2606.13568" in client.get("/category/math-ph").text
    feed = feedparser.parse(client.get("/feeds/category/cs.atom").content)
    ids = [e.id for e in feed.entries]
    assert len(ids) == len(set(ids)) == min(len(in_cs & with_listed), 100)
    assert client.get("/category/xx").status_code == 404


def test_abstracts_fold_the_same_way_on_short_and_long_pages(client, web_db, web_cache):
    """A long abstract folds whether the page lists 2 papers or 25."""
    short = client.get("/category/cs.DS").text  # 2 papers
    assert "Sorting in" in short and short.count('<details class="abstract">') == 2
    long = client.get(f"/daily/{HF_DAY}").text  # 25 papers
    # Every abstract folds there but the planted hostile paper's, which is two lines long.
    assert long.count('class="paper"') == 25 and long.count('<details class="abstract">') == 24
    assert "Filler sentence." * 3 not in short  # folded: the rest is behind "more"
    with fresh_client(web_db, web_cache, PAPERFEED_PAGE_SIZE="1") as c:
        one = c.get(f"/daily/{HF_DAY}").text
    assert one.count('<details class="abstract">') == 1
    # The paper page shows it whole.
    assert '<details class="abstract">' not in client.get(f"/papers/{MATH_ID}").text


def test_static_pages(client):
    for path in ("/submit", "/subscribe", "/api"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert_inert(r.text)
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


# --- the untrusted text stays inert --------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/", f"/daily/{HF_DAY}", "/week/2026-W24", "/month/2026-06", f"/papers/{XSS_ID}",
     "/search?q=abstract+hostile", "/category/cs.CR"],
)  # fmt: skip
def test_planted_markup_is_escaped(client, path):
    r = client.get(path)
    assert r.status_code == 200
    html = r.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html, "the hostile title is shown, as text"
    assert XSS_TITLE not in html
    assert "<script>alert" not in html
    assert_inert(html)


def test_planted_abstract_and_links_on_paper_page(client):
    html = client.get(f"/papers/{XSS_ID}").text
    assert "&lt;script&gt;alert(&#34;abstract&#34;)&lt;/script&gt;" in html
    assert "<mi>x</mi>" in html  # $x^2$ still renders
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in html
    assert "javascript:" not in html.replace("$\\href{javascript:alert(3)}", "")
    assert 'href="https://example.org/project"' in html  # plain links are kept


def test_api_and_feeds_carry_hostile_text_as_data(client):
    p = client.get(f"/api/papers/{XSS_ID}").json()
    assert p["title"] == XSS_TITLE  # JSON is data: the client escapes when it renders
    feed = client.get("/feeds/trending.atom").content
    assert b"<img" not in feed and b"<script" not in feed
    titles = [e.title for e in feedparser.parse(feed).entries]
    assert XSS_TITLE in titles


# --- security headers ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/", "/api/trending", "/feeds/daily.atom", "/static/style.css", "/nope", "/daily/x"]
)
def test_security_headers(client, path):
    h = client.get(path).headers
    csp = h["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src" not in csp  # no script source at all: default-src 'none' applies
    assert "unsafe-inline" not in csp and "http" not in csp
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "same-origin"


def test_pages_load_nothing_from_elsewhere(client):
    for path in ("/", f"/papers/{MATH_ID}", "/search?q=lora"):
        for tag, attrs in Tags(client.get(path).text).tags:
            if tag in ("link", "script", "img", "iframe"):
                assert (attrs.get("href") or attrs.get("src") or "").startswith("/"), (tag, attrs)


# --- JSON API ------------------------------------------------------------------------------
PUBLIC = {
    "id", "title", "abstract", "authors", "categories", "primary_category", "version",
    "published", "updated", "doi", "journal_ref", "comments", "votes", "hf_listed_on", "url",
    "abs_url", "pdf_url",
}  # fmt: skip


def test_api_one_paper_has_only_public_fields(client):
    p = client.get("/api/papers/2606.13681").json()
    assert set(p) == PUBLIC
    assert p["votes"] == 118 and p["hf_listed_on"] == [HF_DAY]
    assert p["abs_url"] == "https://arxiv.org/abs/2606.13681"
    old = client.get(f"/api/papers/{OLD_ID}").json()
    assert old["id"] == OLD_ID and old["version"] == 2
    r = client.get("/api/papers/2606.13681v2", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/api/papers/2606.13681"


def test_api_papers_cursor_walks_every_paper_once(client, web_db):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 40} | ({"cursor": cursor} if cursor else {})
        data = client.get("/api/papers", params=params).json()
        seen += [p["id"] for p in data["papers"]]
        assert all(set(p) == PUBLIC for p in data["papers"])
        cursor, pages = data["next_cursor"], pages + 1
        if cursor is None:
            break
    store = open_store(str(web_db))
    total = store.stats()["papers"]
    store.close()
    assert len(seen) == len(set(seen)) == total and pages == -(-total // 40)
    cv = client.get("/api/papers", params={"category": "cs.CV"}).json()["papers"]
    assert cv and all("cs.CV" in p["categories"] for p in cv)


def test_api_search_similar_daily(client):
    s = client.get("/api/search", params={"q": "EvoArena", "limit": 5}).json()
    assert s["papers"][0]["id"] == HF_TOP[0]
    assert s["mode"] in ("hybrid", "keyword", "semantic") and isinstance(s["notes"], list)
    assert set(s["papers"][0]) == PUBLIC | {"day", "score"}
    sim = client.get(f"/api/papers/{HF_TOP[0]}/similar", params={"limit": 5}).json()
    assert 0 < len(sim["papers"]) <= 5 and all(p["id"] != HF_TOP[0] for p in sim["papers"])
    old_sim = client.get(f"/api/papers/{OLD_ID}/similar")
    assert old_sim.status_code == 200
    day = client.get(f"/api/daily/{HF_DAY}").json()
    assert day["total"] == 31 and day["papers"][0]["id"] == HF_TOP[0]
    assert day["prev_day"] == "2026-06-11" and day["next_day"] is None
    assert client.get("/api/daily").json()["day"] == HF_DAY


def test_openapi_schema_lists_the_api(client):
    schema = client.get("/api/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/papers", "/api/papers/{paper_id}", "/api/papers/{paper_id}/similar",
            "/api/search", "/api/trending", "/api/daily", "/api/daily/{day}"} <= paths  # fmt: skip
    assert not any(p.startswith(("/feeds", "/papers", "/daily")) for p in paths)
    fields = set(schema["components"]["schemas"]["PaperOut"]["properties"])
    assert fields == PUBLIC


# --- Atom feeds ----------------------------------------------------------------------------
FEEDS = [
    "/feeds/trending.atom",
    "/feeds/daily.atom",
    "/feeds/category/cs.CV.atom",
    f"/feeds/category/{quote('hep-th')}.atom",
    "/feeds/search.atom?q=diffusion",
    "/feeds/search.atom?q=parameter+efficient&mode=keyword&category=cs.LG",
]


@pytest.mark.parametrize("path", FEEDS)
def test_feeds_are_valid_atom(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/atom+xml")
    d = feedparser.parse(r.content)
    assert not d.bozo, d.get("bozo_exception")
    assert d.version == "atom10"
    assert d.feed.id and d.feed.title and d.feed.updated
    root = etree.fromstring(r.content)
    assert root.tag == ATOM_NS + "feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(ATOM_NS + name) is not None, name
    entries = root.findall(ATOM_NS + "entry")
    if "category/cs.CV" in path or "trending" in path or "daily" in path:
        assert entries
    for e in entries:
        for name in ("id", "title", "updated"):
            assert (e.findtext(ATOM_NS + name) or "").strip(), name
        # One alternate link (rel defaults to "alternate"): the paper's page here.
        alternate = [k for k in e.findall(ATOM_NS + "link") if k.get("rel", "alternate") == "alternate"]
        assert len(alternate) == 1 and alternate[0].get("href").startswith("http://testserver/papers/")
    assert len({e.findtext(ATOM_NS + "id") for e in entries}) == len(entries)


def test_feed_contents(client):
    trending = feedparser.parse(client.get("/feeds/trending.atom").content)
    assert trending.entries[0].id == "http://testserver/papers/2606.13681"
    daily = feedparser.parse(client.get("/feeds/daily.atom").content)
    assert {e.id.rsplit("/", 1)[-1] for e in daily.entries} >= {"2606.13681", "2606.13515"}
    cat = feedparser.parse(client.get("/feeds/category/hep-th.atom").content)
    assert any(e.id.endswith(OLD_ID) for e in cat.entries)
    search = feedparser.parse(client.get("/feeds/search.atom", params={"q": "EvoArena"}).content)
    assert search.entries[0].id == f"http://testserver/papers/{HF_TOP[0]}"


def test_feed_ids_use_base_url_setting(web_db, web_cache):
    with fresh_client(web_db, web_cache, PAPERFEED_BASE_URL="https://papers.example.org") as c:
        d = feedparser.parse(c.get("/feeds/trending.atom").content)
    assert d.feed.id == "https://papers.example.org/feeds/trending.atom"
    assert d.entries[0].link.startswith("https://papers.example.org/papers/")


# --- hostile requests: 404 or 422, never a 500 ----------------------------------------------
HOSTILE = [
    ("/daily/2026-13-45", 404),
    ("/daily/2026-02-30", 404),
    ("/daily/9999-12-31", 404),
    ("/daily/0001-01-01", 404),
    ("/daily/yesterday", 404),
    ("/daily/2026-06-12%00", 404),
    ("/week/2026-W99", 404),
    ("/week/2026-24", 404),
    ("/month/2026-13", 404),
    ("/month/99999-01", 404),
    ("/papers/9999.99999", 404),
    ("/papers/%3Cscript%3E", 404),
    ("/papers/../../etc/passwd", 404),
    ("/category/%3Cimg%3E", 404),
    ("/category/xx.YY", 404),
    ("/feeds/category/%3Cx%3E.atom", 404),
    ("/feeds/category/nope.atom", 404),
    ("/static/../app.py", 404),
    ("/nope", 404),
    ("/papers/" + "a" * 10_000, 404),
    ("/daily/" + "9" * 10_000, 404),
    ("/papers/%E2%80%AE%F0%9F%98%80", 404),
    ("/papers/%FF%FE", 404),
    ("/?page=0", 422),
    ("/?page=-1", 422),
    ("/?page=99999999999999999999999", 422),
    ("/?page=abc", 422),
    ("/?page=999", 404),
    ("/daily/2026-06-12?page=1e9", 422),
    ("/search?q=lora&mode=evil", 422),
    ("/search?q=lora&since=2026-99-99", 422),
    ("/search?q=lora&until=tomorrow", 422),
    ("/search?q=lora&category=%3Cscript%3E", 422),
    ("/search?q=lora&page=100000", 422),
    ("/search?q=lora&page=900", 404),
    ("/search?q=" + "x" * 10_001, 422),
    ("/api/search?q=" + "x" * 10_001, 422),
    ("/api/search", 422),
    ("/api/search?q=lora&limit=100000", 422),
    ("/api/papers?cursor=abc", 422),
    ("/api/papers?cursor=-1", 422),
    ("/api/papers?limit=0", 422),
    ("/api/papers/9999.99999", 404),
    ("/api/papers/9999.99999/similar", 404),
    ("/api/papers/%20", 404),
    ("/api/daily/2026-02-31", 404),
    ("/api/trending?page=abc", 422),
    ("/api/nope", 404),
    ("/feeds/search.atom", 422),
    ("/feeds/search.atom?q=" + "y" * 10_001, 422),
    ("/feeds/search.atom?q=a&mode=x", 422),
]


@pytest.mark.parametrize("path,status", HOSTILE, ids=[h[0][:50] for h in HOSTILE])
def test_hostile_requests_get_404_or_422(client, path, status):
    r = client.get(path)
    assert r.status_code == status, r.text[:300]
    if path.startswith("/api/"):
        assert r.headers["content-type"] == "application/json"
    else:
        assert r.headers["content-type"].startswith("text/html")
        assert "Traceback" not in r.text
        assert_inert(r.text)


JUNK_QUERIES = [
    "\"unbalanced", "(((((", "AND OR NOT", "title:", "*", "?", "~~~", "'; DROP TABLE papers; --",
    "\x00\x01\x02", "ti:\"\"", "au:", "cat:cs.* OR", "😀 emoji", "ﬁ ligature", "\\", "%",
    "<script>alert(1)</script>", "a" * 500, " ".join(["x"] * 250),
]  # fmt: skip


@pytest.mark.parametrize("q", JUNK_QUERIES, ids=range(len(JUNK_QUERIES)))
def test_junk_search_queries_never_fail(client, q):
    for path in ("/search", "/api/search", "/feeds/search.atom"):
        r = client.get(path, params={"q": q})
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
    assert_inert(client.get("/search", params={"q": q}).text)


def test_every_route_is_exercised_here(client):
    """A new route without a test fails this list: every GET route of the app is covered by
    one of the paths used in this file."""
    covered = {
        "/", "/daily", "/daily/{day}", "/week/{week}", "/month/{month}", "/papers/{paper_id:path}",
        "/category/{category}", "/search", "/submit", "/subscribe", "/api",
        "/api/papers", "/api/papers/{paper_id:path}", "/api/papers/{paper_id:path}/similar",
        "/api/search", "/api/trending", "/api/daily", "/api/daily/{day}", "/api/openapi.json",
        "/feeds/trending.atom", "/feeds/daily.atom", "/feeds/category/{category}.atom",
        "/feeds/search.atom", "/static",
        # digest pages and the subscribe API: tests/test_digest_subscribe.py
        "/api/subscribe", "/confirm/{token}", "/unsubscribe/{token}", "/mail/rate/{token}",
        "/digest/preview", "/account/digest",
    }  # fmt: skip
    routes = {r.path for r in client.app.routes if hasattr(r, "path")}
    routes |= {r.path for mod in (api, feeds, pages) for r in mod.router.routes}
    assert len(routes) > 20 and routes - covered == set()


# --- subscribe and submit (they write: each gets its own copy of the database) -------------
def test_subscribe_box_posts_with_a_csrf_token(fresh_db, web_cache):
    # The subscription flow itself (double opt-in, same answer, throttles) is tested in
    # tests/test_digest_subscribe.py; here: the box on a listing works and is protected.
    with fresh_client(fresh_db, web_cache) as c:
        home = c.get("/")
        token = re.search(r'name="csrf" value="([^"]+)"', home.text).group(1)
        r = c.post("/subscribe", data={"email": "  Reader@Example.ORG ", "csrf": token})
        assert r.status_code == 200 and "confirmation link" in r.text
        for bad in ("", "no-at-sign", "a@b", "a b@example.org", "<x>@example.org", "x" * 400):
            r = c.post("/subscribe", data={"email": bad, "csrf": token})
            assert r.status_code == 422, bad
            assert_inert(r.text)
        assert c.post("/subscribe", data={"email": "x@example.org"}).status_code == 403
        cross = c.post(
            "/subscribe", data={"email": "victim@example.org", "csrf": token},
            headers={"origin": "https://evil.example"},
        )  # fmt: skip
        assert cross.status_code == 403
    rows = query(
        fresh_db,
        "SELECT u.email, s.status FROM digest_subscriptions s JOIN users u ON u.id = s.user_id",
    )
    assert rows == [("Reader@example.org", "pending")]


def test_submit_fetches_from_arxiv_and_lists_today(
    request, web_db, tmp_path_factory, tmp_path, web_cache, httpserver
):
    # The sample without the paper the response holds.
    without = sample_template(tmp_path_factory, leave_out=frozenset({"1601.00001"}))
    fresh_db = copy_like(request, web_db, without, tmp_path)
    httpserver.expect_request("/api/query").respond_with_data(
        ATOM_ONE.read_bytes(), content_type="application/atom+xml"
    )
    url = httpserver.url_for("/api/query")
    settings = settings_for(fresh_db, web_cache, PAPERFEED_ARXIV_API_URL=url,
                            PAPERFEED_HARVEST_INTERVAL="0")  # fmt: skip
    with TestClient(create_app(settings)) as c:
        sign_in(c, settings, "submitter@example.org")  # submitting needs a reader
        csrf = csrf_of(c, "/submit")
        missing = c.get("/papers/1601.00001")
        assert missing.status_code == 404 and 'value="1601.00001"' in missing.text
        r = c.post("/submit", data={"paper_id": "https://arxiv.org/abs/1601.00001v1", "csrf": csrf})
        assert r.status_code == 200, r.text
        assert "Inelastic effects in molecular transport junctions" in r.text
        assert "Fetched from the arXiv API" in r.text
        (req, _), = httpserver.log
        assert req.args["id_list"] == "1601.00001"
        today = c.get("/api/daily").json()
        assert today["day"] > HF_DAY  # today is now the newest day
        assert "1601.00001" in [p["id"] for p in today["papers"]]
        page = c.get(f"/papers/{'1601.00001'}").text
        assert "<math" in page  # its abstract's $I$-$V$
        again = c.post("/submit", data={"paper_id": "1601.00001", "csrf": csrf})
        assert "Already submitted" in again.text
    assert len(httpserver.log) == 1  # a stored paper is not fetched again


def test_submit_falls_back_to_the_local_store(fresh_db, web_cache):
    # Nothing listens on port 9 of loopback: arXiv is "unreachable".
    settings = settings_for(
        fresh_db, web_cache, PAPERFEED_ARXIV_API_URL="http://127.0.0.1:9/api/query",
        PAPERFEED_HARVEST_INTERVAL="0",
    )  # fmt: skip
    with TestClient(create_app(settings)) as c:
        sign_in(c, settings, "submitter@example.org")  # submitting needs a reader
        csrf = csrf_of(c, "/submit")
        before = c.get("/api/trending").json()
        r = c.post("/submit", data={"paper_id": "2606.13515", "csrf": csrf})  # in the sample already
        assert r.status_code == 200 and "Found in this site's database" in r.text
        # Trending is cached, but a submission shows at once: today joins the window.
        after = c.get("/api/trending").json()
        assert before["window"][1] == "2026-06-13" and after["window"][1] > "2026-11"
        day = c.get("/api/daily").json()
        assert day["papers"][0]["id"] == "2606.13515" and day["total"] == 1
        missing = c.post("/submit", data={"paper_id": "2607.00001", "csrf": csrf})
        assert missing.status_code == 404
        assert "arXiv could not be reached" in missing.text
        assert "not found in the local store" in missing.text
        for bad in ("not an id", "<script>", "x" * 300):
            r = c.post("/submit", data={"paper_id": bad, "csrf": csrf})
            assert r.status_code == 422
            assert_inert(r.text)
        cross = c.post(
            "/submit", data={"paper_id": "2606.13515", "csrf": csrf}, headers={"origin": "null"}
        )
        assert cross.status_code == 403
