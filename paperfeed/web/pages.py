"""HTML pages: trending, day/week/month listings, paper pages, search, submit. (Subscribe and
the other digest pages are in digest_pages.py.)"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from markupsafe import Markup
from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ..errors import InputError, NotFoundError, PaperfeedError
from ..ids import is_arxiv_id, normalize_id
from ..search import MODES
from .auth import check_csrf, csrf_token, current_user
from .marks import card_marks
from .render import paper_url
from .searching import run_search, run_similar
from .security import same_origin
from .submit import submit_paper
from .views import (
    CATEGORY_RE,
    MAX_PAGE,
    DAY_PATTERN,
    Span,
    category_ok,
    hits_to_entries,
    load_entries,
    newest_day,
    page_href,
    page_size,
    parse_day,
    parse_month,
    parse_week,
    week_of,
)

__all__ = ["router"]

log = logging.getLogger("paperfeed.web")
router = APIRouter(include_in_schema=False)

Page = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")]


def render(request: Request, template: str, status_code: int = 200, **ctx) -> HTMLResponse:
    # The footer says when each source was last harvested: a stale feed must not look fresh.
    ctx.setdefault("harvested", request.app.state.store.harvest_summary())
    user = current_user(request)
    html = request.app.state.env.get_template(template).render(
        request_path=request.url.path,
        csrf=csrf_token(request),
        user=user,
        marks=ctx.pop("marks", None) or card_marks(request, user, ctx),
        **ctx,
    )
    resp = HTMLResponse(html, status_code=status_code)
    if user is not None:  # a page with the reader's marks on it: never in a shared cache
        resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _pager(request: Request, page: int, size: int, total: int | None, shown: int) -> dict:
    has_next = (page * size < total) if total is not None else shown >= size
    return {
        "page": page,
        "prev": page_href(request, page - 1) if page > 1 else None,
        "next": page_href(request, page + 1) if has_next else None,
        "pages": (total + size - 1) // size if total is not None else None,
    }


def _beyond_end(page: int, shown: int) -> None:
    if page > 1 and shown == 0:
        raise NotFoundError("This listing has fewer pages.")


# --- trending and listings -------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def home(request: Request, page: Page = 1):
    s, store = request.app.state.settings, request.app.state.store
    size = page_size(s)
    cache = request.app.state.trending
    t, entries = cache.page(store, s, size, (page - 1) * size)
    _beyond_end(page, len(t.items))
    rank_from = (page - 1) * size + 1
    cards_html = None
    if current_user(request) is None and entries:
        env = request.app.state.env
        cards_html = cache.cards(entries, (request.url.path, rank_from), lambda: Markup(
            env.get_template("_cards.html").render(
                entries=entries, rank_from=rank_from, request_path=request.url.path,
                user=None, csrf="", marks=card_marks(request, None, {}),
            )
        ))  # fmt: skip
    return render(
        request,
        "listing.html",
        title="Trending papers",
        heading="Trending papers",
        subheading=t.window_text,
        entries=entries,
        cards_html=cards_html,
        rank_from=rank_from,
        pager=_pager(request, page, size, t.total, len(entries)),
        feed=("/feeds/trending.atom", "Trending papers"),
        empty="No papers yet. Import some with `paperfeed import --sample`.",
        nav=None,
    )


@router.get("/daily", response_class=RedirectResponse)
def daily_latest(request: Request):
    return RedirectResponse(f"/daily/{newest_day(request.app.state.store)}", status_code=302)


def _listing(request: Request, span: Span, page: int):
    s, store = request.app.state.settings, request.app.state.store
    size = page_size(s)
    rows, total = store.feed_entries(
        span.start.isoformat(), span.end.isoformat(), size, (page - 1) * size
    )
    _beyond_end(page, len(rows))
    entries = load_entries(store, rows)
    return entries, total, size


@router.get("/daily/{day}", response_class=HTMLResponse)
def daily(request: Request, day: str, page: Page = 1):
    span = parse_day(day)
    prev_day, next_day = request.app.state.store.feed_day_bounds(span.label)
    entries, total, size = _listing(request, span, page)
    d = span.start
    nav = {
        "prev": (f"/daily/{prev_day}", f"← {prev_day}") if prev_day else None,
        "next": (f"/daily/{next_day}", f"{next_day} →") if next_day else None,
        "up": [(f"/week/{week_of(d)}", f"Week {week_of(d)}"), (f"/month/{d:%Y-%m}", f"{d:%B %Y}")],
    }
    return render(
        request,
        "listing.html",
        title=f"Papers of {d:%A %d %B %Y}",
        heading=f"{d:%A, %d %B %Y}",
        subheading=f"{total} paper{'s' if total != 1 else ''}, most voted first.",
        entries=entries,
        rank_from=(page - 1) * size + 1,
        pager=_pager(request, page, size, total, len(entries)),
        feed=("/feeds/daily.atom", "Daily papers"),
        empty="No papers were listed on this day.",
        nav=nav,
    )


@router.get("/week/{week}", response_class=HTMLResponse)
def weekly(request: Request, week: str, page: Page = 1):
    span = parse_week(week)
    return _span_page(request, span, page, f"Week {span.label}", "/week/")


@router.get("/month/{month}", response_class=HTMLResponse)
def monthly(request: Request, month: str, page: Page = 1):
    span = parse_month(month)
    return _span_page(request, span, page, f"{span.start:%B %Y}", "/month/")


def _span_page(request: Request, span: Span, page: int, heading: str, base: str):
    entries, total, size = _listing(request, span, page)
    last = date.fromordinal(span.end.toordinal() - 1)
    nav = {
        "prev": (base + span.prev, f"← {span.prev}"),
        "next": (base + span.next, f"{span.next} →"),
        "up": [(f"/daily/{span.start.isoformat()}", "By day")],
    }
    return render(
        request,
        "listing.html",
        title=heading,
        heading=heading,
        subheading=f"{total} papers listed {span.start.isoformat()} to {last.isoformat()}, "
        "most voted first.",
        entries=entries,
        rank_from=(page - 1) * size + 1,
        pager=_pager(request, page, size, total, len(entries)),
        feed=("/feeds/daily.atom", "Daily papers"),
        empty="No papers were listed in this period.",
        nav=nav,
    )


@router.get("/category/{category}", response_class=HTMLResponse)
def category_page(request: Request, category: str, page: Page = 1):
    s, store = request.app.state.settings, request.app.state.store
    if not category_ok(category) or not store.has_category(category):
        raise NotFoundError(f"no papers in category {category[:40]!r}")
    size = page_size(s)
    rows, total = store.category_entries(category, size, (page - 1) * size)
    _beyond_end(page, len(rows))
    entries = load_entries(store, rows)
    return render(
        request,
        "listing.html",
        title=f"{category} papers",
        heading=f"Newest in {category}",
        subheading=f"{total} paper{'s' if total != 1 else ''}"
        + ("" if "." in category else f" in the {category} archive (all its categories)")
        + ", newest first.",
        entries=entries,
        rank_from=(page - 1) * size + 1,
        pager=_pager(request, page, size, total, len(entries)),
        feed=(f"/feeds/category/{category}.atom", f"{category} papers"),
        empty="",
        nav=None,
    )


# --- one paper -----------------------------------------------------------------------------
@router.get("/papers/{paper_id:path}", response_class=HTMLResponse)
def paper_page(request: Request, paper_id: str):
    store = request.app.state.store
    base = normalize_id(paper_id)
    if base != paper_id and base:
        return RedirectResponse(paper_url(base), status_code=301)
    sp = store.get_paper(base) if base else None
    if sp is None and base and is_arxiv_id(base):
        # A real arXiv id we do not hold: offer to fetch it (the form POSTs to /submit).
        return render(
            request, "error.html", 404, title="Not found", status=404, reason="Not found",
            message=f"This site does not have arXiv paper {base} yet.", details=[],
            submit_id=base,
        )  # fmt: skip
    if sp is None:
        raise NotFoundError(f"no paper with id {paper_id[:60]!r} here")
    votes = store.vote_counts([sp.pk]).get(sp.pk, 0)
    hf = sp.listings[-1]["fields"] if sp.listings else {}
    return render(
        request,
        "paper.html",
        title=sp.paper.title,
        sp=sp,
        p=sp.paper,
        votes=votes,
        related=_similar(request, sp.paper.id, SIMILAR_SHOWN),
        arxiv=_arxiv_links(sp.paper.id),
        hf=hf,
    )


# Similar papers on a paper page; more are asked for, since some may not be listable.
SIMILAR_SHOWN = 6


def _similar(request: Request, paper_id: str, n: int) -> list:
    store = request.app.state.store
    try:
        hits = run_similar(store, request.app.state.settings, paper_id, n * 2)
    except PaperfeedError as e:
        log.warning("similar papers for %s: %s", paper_id, e)
        return []
    pks = [h.pk for h in hits if h.pk]
    keep = store.listable_pks(pks)
    near = store.get_papers_by_pk([pk for pk in pks if pk in keep])
    return [near[h.pk].paper for h in hits if h.pk in near][:n]


def _arxiv_links(pid: str) -> dict | None:
    if not is_arxiv_id(pid):
        return None
    return {"abs": f"https://arxiv.org/abs/{pid}", "pdf": f"https://arxiv.org/pdf/{pid}"}


# --- search --------------------------------------------------------------------------------
@router.get("/search", response_class=HTMLResponse)
def search_page(
    request: Request,
    q: str = "",  # its length limit is the max_query_chars setting (the search says so)
    mode: Annotated[str, Query(pattern="^(" + "|".join(MODES) + ")$")] = MODES[0],
    category: Annotated[str | None, Query(pattern=CATEGORY_RE)] = None,
    since: Annotated[str | None, Query(pattern=DAY_PATTERN)] = None,
    until: Annotated[str | None, Query(pattern=DAY_PATTERN)] = None,
    author: Annotated[str | None, Query(max_length=200)] = None,
    page: Page = 1,
):
    s, store = request.app.state.settings, request.app.state.store
    size = page_size(s)
    form = {
        "q": q,
        "mode": mode,
        "category": category or "",
        "since": since or "",
        "until": until or "",
        "author": author or "",
    }
    ctx = dict(title="Search", form=form, modes=MODES, entries=[], notes=[], searched=False,
               max_query=s.max_query_chars)  # fmt: skip
    if not q.strip():
        return render(request, "search.html", **ctx, pager=None, total=None, used_mode=None,
                      total_exact=True)  # fmt: skip
    res = run_search(
        store,
        s,
        q,
        mode=mode,
        limit=size,
        offset=(page - 1) * size,
        category=category or None,
        since=since or None,
        until=until or None,
        author=author or None,
    )
    _beyond_end(page, len(res.hits))
    entries = hits_to_entries(store, res.hits)
    feed_params = {k: form[k] for k in ("q", "mode", "category", "author") if form[k]}
    ctx.update(
        feed_href="/feeds/search.atom?" + urlencode(feed_params),
        title=f"{q[:60]} - search",
        entries=entries,
        notes=res.notes,
        searched=True,
        rank_from=(page - 1) * size + 1,
    )
    return render(
        request,
        "search.html",
        **ctx,
        pager=_pager(request, page, size, res.total, len(res.hits)),
        total=res.total,
        total_exact=res.total_exact,
        used_mode=res.mode,
    )


# --- submit ------------------------------------------------------------------
def _check_origin(request: Request) -> None:
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise HTTPException(403, "This form can only be sent from this site.")


@router.get("/submit", response_class=HTMLResponse)
def submit_form(request: Request):
    return render(request, "submit.html", title="Submit a paper", result=None, value="")


@router.post("/submit", response_class=HTMLResponse)
def submit_post(
    request: Request,
    paper_id: Annotated[str, Form(max_length=200)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
):
    # A submission reshapes the day's page: signed-in readers only, a few an hour each.
    check_csrf(request, csrf)
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "Sign in to submit a paper.")
    s, store = request.app.state.settings, request.app.state.store
    if not store.throttle_hit(f"submit:user:{user.id}", s.submit_per_hour, 3600.0):
        raise HTTPException(429, f"You can submit {s.submit_per_hour} papers an hour. Try again later.")
    try:
        result = submit_paper(store, s, paper_id, user_id=user.id)
    except (InputError, NotFoundError) as e:
        status = 422 if isinstance(e, InputError) else 404
        return render(
            request, "submit.html", status, title="Submit a paper", result=None,
            value=paper_id, error=str(e),
        )  # fmt: skip
    return render(
        request,
        "submit.html",
        title="Paper submitted",
        result=result,
        value="",
        today=result.submitted_at[:10],
    )


# --- about the API and feeds --------------------------------------------------------------
@router.get("/api", response_class=HTMLResponse)
def api_page(request: Request):
    return render(request, "api.html", title="API and feeds")
