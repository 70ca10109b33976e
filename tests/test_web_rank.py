"""Trending scores and the web's store queries (which day a paper is listed on, votes,
submissions, subscriptions, cursors) on each backend (``db``); and the HTML rendering helpers
(math, abstract folding, URLs) on their own."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser

import pytest

from paperfeed.errors import InputError, NotFoundError
from paperfeed.models import Paper
from paperfeed.rank import trending, trending_score
from paperfeed.rank.trending import age_hours, span_text, window
from paperfeed.store import open_store
from paperfeed.store.base import is_listable, normalize_email
from paperfeed.web.render import render_math, safe_url, split_abstract


def p(pid, published=None, listed_on=None, upvotes=None, cats=("cs.LG",)) -> Paper:
    return Paper(
        id=pid, title=f"Paper {pid}", abstract="text", authors=["A. Author"],
        categories=list(cats), version=1 if not listed_on else None, published=published,
        updated=published, source="hf-daily" if listed_on else "arxiv-api",
        upvotes=upvotes, num_comments=0 if listed_on else None, listed_on=listed_on,
    )  # fmt: skip


@pytest.fixture
def store(db):
    s = open_store(db)
    yield s
    s.close()


def ids(store, rows):
    papers = store.get_papers_by_pk([r.pk for r in rows])
    return [papers[r.pk].paper.id for r in rows]


# --- the score -----------------------------------------------------------------------------
def test_score_decays_with_age_and_gravity():
    assert trending_score(0, 1, 1.8) == 0
    assert trending_score(10, 0, 1.8) == pytest.approx(10 / 2**1.8)
    assert trending_score(10, 5, 1.8) > trending_score(10, 50, 1.8)
    # More gravity: the old paper loses more.
    ratio = lambda g: trending_score(10, 50, g) / trending_score(10, 5, g)  # noqa: E731
    assert ratio(2.5) < ratio(1.8) < ratio(1.0)
    # A paper from "the future" (clock skew) counts as brand new, not as a negative age.
    assert trending_score(10, -5, 1.8) == trending_score(10, 0, 1.8)


def test_age_hours_reads_days_and_times():
    as_of = datetime(2026, 6, 13, tzinfo=timezone.utc)
    assert age_hours("2026-06-12", as_of) == 24
    assert age_hours("2026-06-12T18:00:00Z", as_of) == 6
    assert age_hours("garbage", as_of) == 24 * 365


# --- trending on a real store --------------------------------------------------------------
NOW = datetime(2026, 6, 13, 9, 0, tzinfo=timezone.utc)


def test_trending_ranks_votes_against_age(store):
    store.upsert_papers([
        p("2606.00001", "2026-06-10T00:00:00Z", listed_on="2026-06-13", upvotes=30),
        p("2606.00002", "2026-06-11T12:00:00Z"),  # own votes below; older
        p("2606.00003", "2026-06-11T00:00:00Z", listed_on="2026-06-12", upvotes=0),
        p("2606.00004", "2026-06-13T06:00:00Z"),  # unvoted, newest arXiv paper
        p("2606.00005", "2099-01-01T00:00:00Z", listed_on=None),  # a bad, future date
    ])  # fmt: skip
    for user in range(40):
        store.add_vote("2606.00002", user)
    t = trending(store, gravity=1.8, days=3, limit=10, now=NOW, fill=1)
    # Ages are measured to now; the window is the last three days, today included.
    assert t.as_of == NOW and (t.start_day, t.end_day) == ("2026-06-11", "2026-06-14")
    order = [store.get_papers_by_pk([r.row.pk])[r.row.pk].paper.id for r in t.items]
    # 30 upvotes listed 9 hours ago beat 40 votes on a paper 45 hours old.
    s1 = trending_score(30, 9, 1.8)
    s2 = trending_score(40, 45, 1.8)
    assert s1 > s2
    assert order[:2] == ["2606.00001", "2606.00002"]
    # Unvoted papers follow, newest first; the future-dated paper is left out.
    assert order[2:] == ["2606.00004", "2606.00003"]
    assert "2606.00005" not in order and t.total == 4
    assert [r.score for r in t.items[:2]] == pytest.approx([s1, s2])
    # With low gravity the many votes win.
    flat = trending(store, gravity=0.1, days=3, limit=10, now=NOW, fill=1)
    first = flat.items[0].row.pk
    assert store.get_papers_by_pk([first])[first].paper.id == "2606.00002"
    # Paging continues across the voted/unvoted boundary without repeats.
    pages = [trending(store, 1.8, 3, limit=1, offset=i, now=NOW, fill=1).items for i in range(5)]
    assert [len(x) for x in pages] == [1, 1, 1, 1, 0]
    assert len({x[0].row.pk for x in pages[:4]}) == 4


def test_trending_window_widens_only_to_fill_a_first_page(store):
    """Three papers a day for the last 40 days, and a voted paper from years ago: the window
    doubles from 3 days until it holds a page, and the old paper never comes back."""
    papers = [
        p(f"2606.{d:02d}{k:03d}", (NOW - timedelta(days=d)).strftime("%Y-%m-%dT08:00:00Z"))
        for d in range(40)
        for k in range(3)
    ]
    papers.append(p("1606.00001", "2016-06-14T00:00:00Z", listed_on="2016-06-14", upvotes=500))
    store.upsert_papers(papers)
    w = window(store, 3, NOW, max_days=60, fill=9)
    assert (w.days, w.start_day, w.end_day, w.stale) == (3, "2026-06-11", "2026-06-14", False)
    w = window(store, 3, NOW, max_days=60, fill=10)  # 9 papers in 3 days: doubled once
    assert (w.days, w.start_day) == (6, "2026-06-08")
    w = window(store, 3, NOW, max_days=60, fill=1000)  # never fills: stops at the cap
    assert (w.days, w.start_day) == (60, "2026-04-15")
    t = trending(store, 1.8, 3, limit=25, offset=0, now=NOW, max_days=60, fill=25)
    assert t.window.days == 12 and t.total == 36
    every = [trending(store, 1.8, 3, 25, off, NOW, 60, 25).items for off in (0, 25, 50)]
    ids_ = {store.get_papers_by_pk([r.row.pk])[r.row.pk].paper.id for page in every for r in page}
    assert len(ids_) == 36 and "1606.00001" not in ids_  # pages 2-3: recent papers only
    assert t.window_text == (
        "Listed in the last 12 days (2–13 June 2026; widened from 3 to fill a page): "
        "36 papers, most voted first."
    )


def test_trending_on_stale_data_shows_the_newest_days_and_says_so(store):
    store.upsert_papers([
        p("2606.00001", "2026-06-12T00:00:00Z", listed_on="2026-06-12", upvotes=4),
        p("2606.00002", "2026-06-11T00:00:00Z"),
        p("2605.00003", "2026-05-01T00:00:00Z"),  # outside the window of the newest day
    ])  # fmt: skip
    now = datetime(2026, 11, 28, tzinfo=timezone.utc)
    t = trending(store, 1.8, 3, limit=25, now=now, max_days=60, fill=2)
    assert t.window.stale and (t.start_day, t.end_day) == ("2026-06-10", "2026-06-13")
    # Ages run to the end of the newest day, as if it were then.
    assert t.as_of == datetime(2026, 6, 13, tzinfo=timezone.utc) and t.total == 2
    assert t.window_text == (
        "Nothing was listed in the last 60 days, so this shows the newest papers here: "
        "2 papers listed 10–12 June 2026, most voted first."
    )
    # Today's papers: ages run to now, and the window is back to the last days.
    store.upsert_papers([p("2611.00009", "2026-11-28T00:00:00Z")])
    t = trending(store, 1.8, 1, limit=25, now=now, max_days=1)
    assert (t.start_day, t.end_day, t.as_of, t.window.stale) == (
        "2026-11-28", "2026-11-29", now, False
    )
    assert t.window_text == "Listed today (28 November 2026): 1 paper, most voted first."


def test_window_words():
    assert span_text(date(2026, 6, 12), date(2026, 6, 12)) == "12 June 2026"
    assert span_text(date(2026, 11, 29), date(2026, 12, 1)) == "29 November – 1 December 2026"
    assert span_text(date(2025, 12, 30), date(2026, 1, 2)) == "30 December 2025 – 2 January 2026"


def test_empty_store_trending(store):
    t = trending(store, 1.8, 3, 10)
    assert t.items == [] and t.total == 0 and t.window_text == "No papers listed yet."


# --- which papers are listed at all ---------------------------------------------------------
def test_only_listable_papers_are_listed(store):
    """A record without a date, without authors, or with a namespaced id and no DOI is not a
    paper a reader can open and place: no listing, category or trending page shows it."""
    good = p("2606.00001", "2026-06-12T00:00:00Z", listed_on="2026-06-12", upvotes=9)
    no_authors = p("2606.00002", "2026-06-12T00:00:00Z", listed_on="2026-06-12", upvotes=50)
    no_authors.authors = []
    no_date = p("2606.00003", None)
    seed = Paper(id="seed:64", title="A title from a listing page", abstract="text", source="seed")
    beir = p("scifact:4983", "2026-06-12T00:00:00Z")  # dated, with authors, but nothing to open
    doi = p("doi:10.1000/x", "2026-06-12T00:00:00Z")
    doi.doi = "10.1000/x"
    store.upsert_papers([good, no_authors, no_date, seed, beir, doi])
    listable = {x.id for x in (good, no_authors, no_date, seed, beir, doi) if is_listable(x)}
    assert listable == {"2606.00001", "doi:10.1000/x"}
    pks = {x.id: store.get_paper(x.id).pk for x in (good, no_authors, no_date, seed, beir, doi)}
    assert store.listable_pks(list(pks.values())) == {pks[i] for i in listable}  # SQL == Python
    rows, total = store.feed_entries("2026-01-01", "2027-01-01", 10)
    assert set(ids(store, rows)) == listable and total == 2
    assert store.feed_count("2026-01-01", "2027-01-01") == 2
    rows, total = store.category_entries("cs.LG", 10)
    assert set(ids(store, rows)) == listable and total == 2
    t = trending(store, 1.8, 3, 10, now=NOW)
    assert [store.get_papers_by_pk([r.row.pk])[r.row.pk].paper.id for r in t.items][0] == "2606.00001"
    assert t.total == 2  # the 50-upvote paper without authors does not compete
    assert store.feed_recent_days("2027-01-01", 5) == ["2026-06-12"]


@pytest.mark.parametrize("walk", [True, False], ids=["walk-by-date", "sort-category"])
def test_archive_listing(store, walk):
    """Both ways a category page is read (walking papers by date for a common category,
    sorting the category's rows for a rare one) give the same pages and exact counts."""
    store._WALK_SHARE = 10**9 if walk else 0
    store.upsert_papers([
        p("2606.00001", "2026-06-01T00:00:00Z", cats=("cs.LG", "cs.CV")),  # twice in cs
        p("2606.00002", "2026-06-02T00:00:00Z", cats=("math.AP",)),
        p("2606.00003", "2026-06-03T00:00:00Z", cats=("math-ph", "cs.DS")),
        p("2606.00004", "2026-06-04T00:00:00Z", cats=("hep-th",)),
        p("scifact:5", "2026-06-05T00:00:00Z", cats=("cs.LG", "hep-th")),  # not listable
        p("2606.00006", "2026-06-06T00:00:00Z", cats=("cs.LGX",)),  # not cs.LG
        p("2606.00007", "2026-06-07T00:00:00Z", cats=("cs.LG",)),  # withdrawn below
    ])  # fmt: skip
    # As a harvest of a deleted OAI record leaves it (the store's own write path).
    with store._write() as conn:
        conn.execute("UPDATE papers SET withdrawn = 1 WHERE id = '2606.00007'")
    rows, total = store.category_entries("cs", 10)
    assert ids(store, rows) == ["2606.00006", "2606.00003", "2606.00001"] and total == 3
    rows, total = store.category_entries("cs", 1, 1)  # a page that is not all of them
    assert ids(store, rows) == ["2606.00003"] and total == 3
    rows, total = store.category_entries("cs.LG", 10)
    assert ids(store, rows) == ["2606.00001"] and total == 1
    rows, _ = store.category_entries("math", 10)
    assert ids(store, rows) == ["2606.00002"]  # math-ph is an archive of its own
    rows, total = store.category_entries("hep-th", 10)
    assert ids(store, rows) == ["2606.00004"] and total == 1
    assert store.has_category("cs") and store.has_category("math") and not store.has_category("q-bio")


# --- listings: which day a paper is on -----------------------------------------------------
def test_day_of_a_paper_hf_listing_published_and_submission(store):
    store.upsert_papers([
        p("2606.00001", "2026-06-10T23:59:59Z", listed_on="2026-06-12", upvotes=3),
        p("2606.00002", "2026-06-10T00:00:00Z"),
        p("2606.00003", "2026-06-12"),  # a bare day as published date
    ])  # fmt: skip
    day10, n10 = store.feed_entries("2026-06-10", "2026-06-11", 10)
    day12, n12 = store.feed_entries("2026-06-12", "2026-06-13", 10)
    assert ids(store, day10) == ["2606.00002"] and n10 == 1  # the HF paper is not here ...
    assert ids(store, day12) == ["2606.00001", "2606.00003"] and n12 == 2  # ... but here
    assert day12[0].votes == 3 and day12[0].day == "2026-06-12"
    at, new = store.add_submission("2606.00002", "local")
    assert new and at.endswith("Z")
    today = at[:10]
    rows, _ = store.feed_entries(today, "9999-01-01", 10)
    assert ids(store, rows) == ["2606.00002"] and rows[0].day == today
    assert store.add_submission("2606.00002", "local") == (at, False)
    # A range holding both of its days lists a paper once, on the later day.
    both, n = store.feed_entries("2026-01-01", "9999-01-01", 10, order="recent")
    assert n == 3 and ids(store, both)[0] == "2606.00002"
    with pytest.raises(NotFoundError):
        store.add_submission("2606.99999", "local")


def test_day_navigation(store):
    store.upsert_papers([
        p("2606.00001", "2026-06-01T10:00:00Z"),
        p("2606.00002", "2026-06-05T10:00:00Z", listed_on="2026-06-08", upvotes=1),
        p("2606.00003", "2026-06-09T10:00:00Z"),
    ])  # fmt: skip
    assert store.feed_day_bounds("2026-06-05") == ("2026-06-01", "2026-06-08")
    assert store.feed_day_bounds("2026-06-08") == ("2026-06-01", "2026-06-09")
    assert store.feed_day_bounds("2026-06-09") == ("2026-06-08", None)
    assert store.feed_day_bounds("2026-05-01") == (None, "2026-06-01")
    assert store.feed_recent_days("2026-06-10", 2) == ["2026-06-09", "2026-06-08"]
    assert store.feed_recent_days("2026-06-10", 9) == ["2026-06-09", "2026-06-08", "2026-06-01"]


def test_votes_once_per_user_and_added_to_hf_upvotes(store):
    store.upsert_papers([p("2606.00001", "2026-06-10", listed_on="2026-06-12", upvotes=5)])
    store.upsert_papers([p("2606.00001", "2026-06-10", listed_on="2026-06-13", upvotes=9)])
    assert store.add_vote("2606.00001", 1) is True
    assert store.add_vote("2606.00001", 1) is False
    assert store.add_vote("2606.00001", 2) is True
    pk = store.get_paper("2606.00001").pk
    assert store.vote_counts([pk]) == {pk: 9 + 2}  # the highest HF count, plus ours
    with pytest.raises(NotFoundError):
        store.add_vote("2606.99999", 1)


def test_exclude_orders_and_counts(store):
    store.upsert_papers([p(f"2606.0000{i}", f"2026-06-1{i}T00:00:00Z") for i in range(5)])
    store.add_vote("2606.00003", 7)
    rows, total = store.feed_entries("2026-06-10", "2026-06-20", 2, 0, order="recent")
    assert total == 5 and ids(store, rows) == ["2606.00004", "2606.00003"]
    assert [r.votes for r in rows] == [0, 1]
    (voted,) = store.trending_candidates("2026-06-10", "2026-06-20")
    assert voted.votes == 1 and ids(store, [voted]) == ["2606.00003"]
    rows, total = store.feed_entries("2026-06-10", "2026-06-20", 2, 2, "recent", [voted.pk])
    assert total == 4 and ids(store, rows) == ["2606.00001", "2606.00000"]
    rows, _ = store.feed_entries("2026-06-10", "2026-06-20", 5, 0, order="votes")
    assert ids(store, rows)[0] == "2606.00003" and rows[0].votes == 1
    with pytest.raises(ValueError):
        store.feed_entries("2026-06-10", "2026-06-20", 5, 0, order="sideways")


def test_category_listing_and_cursor(store):
    store.upsert_papers(
        [p(f"2606.000{i:02d}", f"2026-06-{i + 1:02d}T00:00:00Z", cats=("cs.CV",) if i % 2 else ("cs.LG",))
         for i in range(10)]
    )  # fmt: skip
    rows, total = store.category_entries("cs.CV", 3)
    assert total == 5 and ids(store, rows) == ["2606.00009", "2606.00007", "2606.00005"]
    assert store.has_category("cs.CV") and not store.has_category("cs.XX")
    seen, cursor = [], None
    while True:
        pks = store.list_paper_pks(4, cursor)
        if not pks:
            break
        seen += pks
        cursor = pks[-1]
    assert seen == sorted(seen, reverse=True) and len(seen) == 10
    assert len(store.list_paper_pks(100, None, "cs.LG")) == 5


# --- subscriptions -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw,expected",
    [("Reader@Example.ORG", "Reader@example.org"), (" a.b+tag@sub.example.co.uk ", "a.b+tag@sub.example.co.uk")],
)
def test_email_normalised(raw, expected):
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "bad",
    ["", "plain", "a@b", "a@@b.org", "a b@c.org", "a@b .org", "<a>@b.org", "a@-b.org",
     "a@b.c", "x" * 65 + "@b.org", "a@" + "b" * 250 + ".org", "a@b.org\nBcc: x@y.org"],
)  # fmt: skip
def test_bad_email_refused(bad):
    with pytest.raises(InputError):
        normalize_email(bad)


def test_subscription_pending_once(store):
    # Subscriptions are the digest feature's now (tests/test_digest_subscribe.py has the flow).
    user, before = store.subscribe("Reader@Example.org")
    assert (user.email, before) == ("Reader@example.org", None)
    again, before = store.subscribe("reader@example.org")
    assert again.id == user.id and before == "pending"
    with pytest.raises(InputError):
        store.subscribe("nope")


# --- rendering -----------------------------------------------------------------------------
def test_math_becomes_mathml_everything_else_escaped():
    html = str(render_math("Cost $O(n^2)$ & <b>bold</b>"))
    assert "<math" in html and "<msup><mi>n</mi><mn>2</mn></msup>" in html
    assert "&amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert str(render_math("costs $5 and $10")) == "costs $5 and $10"
    assert str(render_math("$$\\frac{1}{2}$$")).startswith('<math display="block">')


@pytest.mark.parametrize(
    "latex",
    ["$\\text{<img src=x onerror=alert(1)>}$", "$\\text{<script>alert(1)</script>}$",
     "$\\href{javascript:alert(1)}{x}$", "$\\style{color:red}{x}$", "$a < b & c$",
     "$\\mathrm{\\\"onload}$", "$" + "{" * 2000 + "$", "$\\frac{1}{$", "$\x00$"],
)  # fmt: skip
def test_math_from_hostile_latex_is_inert(latex):
    html = str(render_math(latex))
    assert "\x00" not in html
    tags = Tags(html)
    assert {t for t, _ in tags.tags} <= MATHML, html
    for _, attrs in tags.tags:
        assert set(attrs) <= {"display", "mathvariant", "stretchy", "fence", "separator",
                              "lspace", "rspace", "mathcolor", "columnalign"}, html  # fmt: skip


MATHML = {"math", "mrow", "mi", "mn", "mo", "mtext", "msup", "msub", "mfrac", "mstyle", "mspace"}


class Tags(HTMLParser):
    def __init__(self, html):
        super().__init__()
        self.tags = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_abstract_folds_at_a_space_outside_math():
    text = "word " * 60 + "$a + b + c + d$ " + "tail " * 40
    head, tail = split_abstract(text, limit=305)
    assert head + tail == text.strip()
    assert head.count("$") % 2 == 0  # never inside a math span
    assert split_abstract("short text") == ("short text", "")


def test_safe_url():
    assert safe_url("https://github.com/x/y") == "https://github.com/x/y"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "//evil", "", None, "http://"):
        assert safe_url(bad) is None, bad
