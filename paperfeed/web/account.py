"""Pages of the signed-in reader: sign-in by link, votes, the library (save, tags, notes,
ratings, imports), follows, saved searches, "For you", author pages, the account (API
tokens, private feed, export, deletion) and the private Atom feed.

Every state-changing request is a POST carrying the form's CSRF token (``check_csrf``) and
ends with a redirect back (post/redirect/get, so no page needs a script). Every page and
action works on the signed-in reader's own rows only: ids of papers, tokens or searches are
looked up within that reader, so another reader's id is simply not found.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile  # what request.form() holds

from ..errors import InputError, NotFoundError
from ..ids import normalize_id
from ..mail import MailError
from ..models import User
from ..rank.foryou import recommend
from ..readers.export import export_bibtex, export_json
from ..readers.importing import add_to_library, refs_from_file, refs_from_text
from ..readers.signin import LoginThrottled, check_login_link, complete_login, request_login
from ..readers.tokens import TokenError
from ..sources.taxonomy import SUBJECT_TO_CATEGORY
from ..store.base import author_key
from ..store.sql_library import clean_tag
from .auth import check_csrf, current_user, end_session, start_session
from .pages import render
from .views import category_ok, load_entries, page_size

__all__ = ["router", "safe_next", "read_upload"]

router = APIRouter(include_in_schema=False)

Csrf = Annotated[str, Form(max_length=200)]
PaperField = Annotated[str, Form(max_length=200)]
Next = Annotated[str, Form(max_length=500)]
# Upload forms carry more than the file; this much slack over the cap covers the fields.
_FORM_SLACK = 64 * 1024


def safe_next(value: str | None, default: str = "/") -> str:
    """A redirect target from a form or link: a path on this site only (never //host or a
    scheme), so a crafted link cannot bounce a reader to another site."""
    v = (value or "").strip()
    if not v.startswith("/") or v.startswith("//") or "\\" in v or any(c < " " for c in v):
        return default
    return v


def _back(next_path: str, default: str = "/") -> RedirectResponse:
    return RedirectResponse(safe_next(next_path, default), status_code=303)


def _reader(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "Sign in to do this.")
    return user


def _page_reader(request: Request) -> User | RedirectResponse:
    user = current_user(request)
    if user is None:
        return RedirectResponse("/login?next=" + quote(request.url.path), status_code=303)
    return user


def _paper_id(store, text: str) -> str:
    pid = normalize_id(text or "")
    if not pid or store.get_paper(pid) is None:
        raise NotFoundError(f"no paper with id {(text or '')[:60]!r} here")
    return pid


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _trending_changed(request: Request) -> None:
    # The cache is keyed on store.feed_version() (which counts votes taken back too); this
    # also drops this worker's pages at once.
    request.app.state.trending.clear()


# --- sign in and out ---------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: Annotated[str, Query(max_length=500)] = ""):
    return render(request, "login.html", title="Sign in", next=safe_next(next, ""), sent=None)


@router.post("/login", response_class=HTMLResponse)
def login_post(request: Request, csrf: Csrf = "", email: Annotated[str, Form(max_length=320)] = "",
               next: Next = ""):  # fmt: skip
    check_csrf(request, csrf)
    s, store = request.app.state.settings, request.app.state.store
    try:
        address = request_login(store, s, email, _client(request), safe_next(next, ""))
    except LoginThrottled as e:
        return render(request, "login.html", 429, title="Sign in", next=next, sent=None, error=str(e))
    except InputError as e:
        return render(request, "login.html", 422, title="Sign in", next=next, sent=None, error=str(e))
    except MailError:
        return render(request, "login.html", 503, title="Sign in", next=next, sent=None,
                      error="The sign-in mail could not be sent just now. Try again later.")  # fmt: skip
    # The same words whether the address has an account or not.
    return render(request, "login.html", title="Check your mail", next=next, sent=address,
                  link_minutes=s.login_link_minutes)  # fmt: skip


@router.get("/login/confirm", response_class=HTMLResponse)
def login_confirm_page(request: Request, token: Annotated[str, Query(max_length=2000)] = ""):
    """The page a sign-in link opens. Reading the link here never uses it up (mail scanners
    open links too); the button below POSTs the sign-in."""
    s, store = request.app.state.settings, request.app.state.store
    try:
        t = check_login_link(store, s, token)
    except TokenError as e:
        return render(request, "login_confirm.html", 400, title="Sign-in link", error=str(e), token="")
    return render(request, "login_confirm.html", title="Sign in", token=token, email=t.data["email"])


@router.post("/login/confirm")
def login_confirm(request: Request, csrf: Csrf = "", token: Annotated[str, Form(max_length=2000)] = ""):
    check_csrf(request, csrf)
    s, store = request.app.state.settings, request.app.state.store
    try:
        user, t = complete_login(store, s, token)
    except TokenError as e:
        return render(request, "login_confirm.html", 400, title="Sign-in link", error=str(e), token="")
    start_session(request, user)
    return _back(str(t.data.get("next") or ""), "/for-you")


@router.post("/logout")
def logout(request: Request, csrf: Csrf = ""):
    check_csrf(request, csrf)
    end_session(request)
    return RedirectResponse("/", status_code=303)


# --- votes, saves, ratings, notes, tags --------------------------------------------------------
@router.post("/vote")
def vote(request: Request, csrf: Csrf = "", paper: PaperField = "", next: Next = ""):
    check_csrf(request, csrf)
    user, store = _reader(request), request.app.state.store
    store.toggle_vote(user.id, _paper_id(store, paper))
    _trending_changed(request)
    return _back(next)


@router.post("/save")
def save(request: Request, csrf: Csrf = "", paper: PaperField = "", next: Next = "",
         action: Annotated[str, Form(pattern="^(save|unsave)$")] = "save"):  # fmt: skip
    check_csrf(request, csrf)
    user, store = _reader(request), request.app.state.store
    pid = _paper_id(store, paper)
    if action == "save":
        store.save_paper(user.id, pid)
    else:
        store.unsave_paper(user.id, pid)
    return _back(next)


@router.post("/rate")
def rate(request: Request, csrf: Csrf = "", paper: PaperField = "", next: Next = "",
         value: Annotated[int, Form(ge=-1, le=1)] = 0):  # fmt: skip
    check_csrf(request, csrf)
    user, store = _reader(request), request.app.state.store
    store.rate_paper(user.id, _paper_id(store, paper), value)
    return _back(next)


@router.post("/library/note")
def set_note(request: Request, csrf: Csrf = "", paper: PaperField = "", next: Next = "",
             note: Annotated[str, Form(max_length=10_000)] = ""):  # fmt: skip
    check_csrf(request, csrf)
    user, store = _reader(request), request.app.state.store
    store.set_note(user.id, _paper_id(store, paper), note)
    return _back(next, "/library")


@router.post("/library/tags")
def set_tags(request: Request, csrf: Csrf = "", paper: PaperField = "", next: Next = "",
             tags: Annotated[str, Form(max_length=1000)] = ""):  # fmt: skip
    check_csrf(request, csrf)
    user, store = _reader(request), request.app.state.store
    store.set_tags(user.id, _paper_id(store, paper), [t for t in tags.split(",") if t.strip()])
    return _back(next, "/library")


# --- library pages -------------------------------------------------------------------------------
def _library_page(request: Request, tag: str | None):
    user = _page_reader(request)
    if isinstance(user, RedirectResponse):
        return user
    store = request.app.state.store
    items = store.library(user.id, tag)
    if tag is not None and not items:
        raise NotFoundError(f"you have no papers tagged {tag[:40]!r}")
    papers = store.get_papers_by_pk([it.pk for it in items])
    votes = store.vote_counts([it.pk for it in items])
    rows = [(it, papers[it.pk].paper, votes.get(it.pk, 0)) for it in items if it.pk in papers]
    return render(request, "library.html", title=f"Tag {tag}" if tag else "Your library",
                  rows=rows, tags=store.list_tags(user.id), tag=tag)  # fmt: skip


@router.get("/library", response_class=HTMLResponse)
def library_page(request: Request, tag: Annotated[str | None, Query(max_length=40)] = None):
    return _library_page(request, clean_tag(tag) if tag else None)


@router.get("/tags/{tag}", response_class=HTMLResponse)
def tag_page(request: Request, tag: str):
    return _library_page(request, clean_tag(unquote(tag)))


@router.get("/library/import", response_class=HTMLResponse)
def import_form(request: Request):
    user = _page_reader(request)
    if isinstance(user, RedirectResponse):
        return user
    return render(request, "import.html", title="Add papers", result=None, categories=_top_categories())


def _top_categories() -> list[tuple[str, str]]:
    """(code, name) of arXiv's categories, for the cold-start picker."""
    return sorted((code, subject.split(" - ")[-1]) for subject, code in SUBJECT_TO_CATEGORY.items())


async def read_upload(request: Request, file: UploadFile | None) -> tuple[bytes, str] | None:
    """The bytes of an uploaded file, refused (413) above ``upload_max_mb``."""
    if file is None or not file.filename:
        return None
    cap = int(request.app.state.settings.upload_max_mb * 1024 * 1024)
    data = await file.read(cap + 1)
    if len(data) > cap:
        raise HTTPException(413, f"The file is larger than {request.app.state.settings.upload_max_mb:g} MB.")
    return data, file.filename[:100]


def _refuse_big(request: Request) -> None:
    """413 before the body is parsed when its declared size is over the cap."""
    cap = int(request.app.state.settings.upload_max_mb * 1024 * 1024) + _FORM_SLACK
    try:
        declared = int(request.headers.get("content-length") or 0)
    except ValueError:
        declared = 0
    if declared > cap:
        raise HTTPException(413, f"The upload is larger than {request.app.state.settings.upload_max_mb:g} MB.")


@router.post("/library/import", response_class=HTMLResponse)
async def import_post(request: Request):
    _refuse_big(request)
    form = await request.form(max_files=1, max_fields=400)
    check_csrf(request, str(form.get("csrf") or ""))
    user = _reader(request)
    s, store = request.app.state.settings, request.app.state.store
    ids_text = str(form.get("ids") or "")[:200_000]
    tag = str(form.get("tag") or "").strip()
    upload = form.get("file")
    cats = [c for c in form.getlist("category") if isinstance(c, str)][:100]
    errors: list[tuple[str, str]] = []
    refs = refs_from_text(ids_text)
    try:
        tags = [clean_tag(tag)] if tag else None
        got = await read_upload(request, upload if isinstance(upload, UploadFile) else None)
        if got is not None:
            more, errs = refs_from_file(*got)
            refs += more
            errors += errs
    except InputError as e:
        return render(request, "import.html", 422, title="Add papers", result=None,
                      categories=_top_categories(), error=str(e))  # fmt: skip
    followed = []
    for c in cats:
        if category_ok(c):
            store.follow(user.id, "category", c, c)
            followed.append(c)
    from starlette.concurrency import run_in_threadpool

    result = await run_in_threadpool(add_to_library, store, s, user.id, refs, tags)
    result.errors = errors + result.errors
    return render(request, "import.html", title="Papers added", result=result,
                  followed=followed, categories=_top_categories())  # fmt: skip


# --- follows, authors, saved searches --------------------------------------------------------------
@router.get("/follows", response_class=HTMLResponse)
def follows_page(request: Request):
    user = _page_reader(request)
    if isinstance(user, RedirectResponse):
        return user
    return render(request, "follows.html", title="Following",
                  follows=request.app.state.store.list_follows(user.id))  # fmt: skip


@router.post("/follow")
def follow(request: Request, csrf: Csrf = "", next: Next = "",
           kind: Annotated[str, Form(pattern="^(author|category)$")] = "author",
           name: Annotated[str, Form(max_length=300)] = ""):  # fmt: skip
    check_csrf(request, csrf)
    user, store = _reader(request), request.app.state.store
    name = " ".join(name.split())
    if kind == "category":
        if not category_ok(name):
            raise InputError(f"not a category: {name[:40]!r} (e.g. cs.LG, or cs for all of it)")
        store.follow(user.id, "category", name, name)
    else:
        if not name:
            raise InputError("give the author's name")
        store.follow(user.id, "author", author_key(name), name)
    return _back(next, "/follows")


@router.post("/unfollow")
def unfollow(request: Request, csrf: Csrf = "", next: Next = "",
             kind: Annotated[str, Form(pattern="^(author|category)$")] = "author",
             key: Annotated[str, Form(max_length=300)] = ""):  # fmt: skip
    check_csrf(request, csrf)
    user = _reader(request)
    request.app.state.store.unfollow(user.id, kind, key)
    return _back(next, "/follows")


@router.get("/authors/{name:path}", response_class=HTMLResponse)
def author_page(request: Request, name: str, page: Annotated[int, Query(ge=1, le=1000)] = 1):
    s, store = request.app.state.settings, request.app.state.store
    key = author_key(name)
    if not key or len(name) > 300:
        raise NotFoundError("no author by that name here")
    size = page_size(s)
    rows, total = store.author_entries(key, size, (page - 1) * size)
    if not rows:
        raise NotFoundError(f"no papers by {name[:60]!r} here")
    user = current_user(request)
    following = user is not None and any(
        f.kind == "author" and f.key == key for f in store.list_follows(user.id)
    )
    shown = store.author_name(key) or name
    from .pages import _pager

    return render(request, "author.html", title=shown, name=shown, key=key,
                  entries=load_entries(store, rows), total=total, following=following,
                  rank_from=(page - 1) * size + 1, collapse=True,
                  pager=_pager(request, page, size, total, len(rows)))  # fmt: skip


@router.get("/saved-searches", response_class=HTMLResponse)
def saved_searches_page(request: Request):
    user = _page_reader(request)
    if isinstance(user, RedirectResponse):
        return user
    return render(request, "saved_searches.html", title="Saved searches",
                  searches=request.app.state.store.list_saved_searches(user.id))  # fmt: skip


@router.post("/saved-searches")
def add_saved_search(request: Request, csrf: Csrf = "", q: Annotated[str, Form(max_length=500)] = "",
                     next: Next = ""):  # fmt: skip
    check_csrf(request, csrf)
    request.app.state.store.add_saved_search(_reader(request).id, q)
    return _back(next, "/saved-searches")


@router.post("/saved-searches/delete")
def delete_saved_search(request: Request, csrf: Csrf = "", id: Annotated[int, Form(ge=1)] = 0):
    check_csrf(request, csrf)
    if not request.app.state.store.delete_saved_search(_reader(request).id, id):
        raise NotFoundError("you have no saved search with that id")
    return _back("/saved-searches")


# --- For you -------------------------------------------------------------------------------------
def _recommendations(request: Request, user: User, limit: int):
    s, store = request.app.state.settings, request.app.state.store
    recs = recommend(store, s, user.id, limit=limit)
    papers = store.get_papers_by_pk([r.pk for r in recs])
    votes = store.vote_counts([r.pk for r in recs])
    return recs, papers, votes


@router.get("/for-you", response_class=HTMLResponse)
def for_you(request: Request):
    user = _page_reader(request)
    if isinstance(user, RedirectResponse):
        return user
    store = request.app.state.store
    recs, papers, votes = _recommendations(request, user, page_size(request.app.state.settings))
    from .views import Entry

    entries = [Entry(papers[r.pk].paper, r.pk, votes.get(r.pk, 0), score=r.score)
               for r in recs if r.pk in papers]  # fmt: skip
    reasons = {r.pk: r.reasons for r in recs}
    cold = not store.library_pks(user.id) and not store.ratings(user.id)
    return render(request, "foryou.html", title="For you", entries=entries, reasons=reasons,
                  cold=cold, follows=store.list_follows(user.id), collapse=True,
                  rank_from=1)  # fmt: skip


@router.get("/feeds/for-you/{token}.atom")
def for_you_feed(request: Request, token: str):
    """The reader's "For you" as Atom, at a URL only they know; revoking it ends it."""
    store = request.app.state.store
    user = store.api_token_user("feed", token)
    if user is None:
        raise NotFoundError("This feed does not exist (it may have been revoked).")
    from .feeds import FEED_SIZE, _atom
    from .views import Entry

    recs = recommend(store, request.app.state.settings, user.id, limit=FEED_SIZE)
    papers = store.get_papers_by_pk([r.pk for r in recs])
    entries = [Entry(papers[r.pk].paper, r.pk, 0, score=r.score) for r in recs if r.pk in papers]
    resp = _atom(request, "paperfeed: for you", "Papers picked for you.",
                 f"/feeds/for-you/{token}.atom", "/for-you", entries)  # fmt: skip
    resp.headers["Cache-Control"] = "private, no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


# --- account -------------------------------------------------------------------------------------
def _account(request: Request, user: User, status: int = 200, **extra):
    store = request.app.state.store
    return render(request, "account.html", status, title="Your account",
                  api_tokens=store.list_api_tokens(user.id, "api"),
                  feed_tokens=store.list_api_tokens(user.id, "feed"),
                  follows=store.list_follows(user.id),
                  searches=store.list_saved_searches(user.id),
                  tags=store.list_tags(user.id), **extra)  # fmt: skip


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request):
    user = _page_reader(request)
    if isinstance(user, RedirectResponse):
        return user
    return _account(request, user)


@router.post("/account/name")
def account_name(request: Request, csrf: Csrf = "", name: Annotated[str, Form(max_length=100)] = ""):
    check_csrf(request, csrf)
    request.app.state.store.set_user_name(_reader(request).id, " ".join(name.split()))
    return _back("/account")


@router.post("/account/tokens", response_class=HTMLResponse)
def create_token(request: Request, csrf: Csrf = "", label: Annotated[str, Form(max_length=100)] = ""):
    check_csrf(request, csrf)
    user = _reader(request)
    value = "pf_" + secrets.token_urlsafe(32)
    request.app.state.store.create_api_token(user.id, "api", value, label.strip() or "API token")
    # Shown once: only its hash is kept.
    return _account(request, user, new_token=value)


@router.post("/account/tokens/revoke")
def revoke_token(request: Request, csrf: Csrf = "", id: Annotated[int, Form(ge=1)] = 0):
    check_csrf(request, csrf)
    if not request.app.state.store.revoke_api_token(_reader(request).id, id):
        raise NotFoundError("you have no token with that id")
    return _back("/account")


@router.post("/account/feed", response_class=HTMLResponse)
def create_feed(request: Request, csrf: Csrf = ""):
    check_csrf(request, csrf)
    user, store = _reader(request), request.app.state.store
    store.revoke_api_tokens(user.id, "feed")  # one private feed at a time: a new URL ends the old
    value = secrets.token_urlsafe(32)
    store.create_api_token(user.id, "feed", value, "private feed")
    return _account(request, user, new_feed=f"/feeds/for-you/{value}.atom")


@router.post("/account/feed/revoke")
def revoke_feed(request: Request, csrf: Csrf = ""):
    check_csrf(request, csrf)
    request.app.state.store.revoke_api_tokens(_reader(request).id, "feed")
    return _back("/account")


@router.get("/account/export.json")
def export_account_json(request: Request):
    user = _reader(request)
    return JSONResponse(export_json(request.app.state.store, user.id), headers={
        "Content-Disposition": 'attachment; filename="paperfeed-export.json"',
        "Cache-Control": "private, no-store"})  # fmt: skip


@router.get("/account/export.bib")
def export_account_bib(request: Request):
    user = _reader(request)
    return Response(export_bibtex(request.app.state.store, user.id),
                    media_type="application/x-bibtex; charset=utf-8", headers={
                        "Content-Disposition": 'attachment; filename="paperfeed-library.bib"',
                        "Cache-Control": "private, no-store"})  # fmt: skip


@router.post("/account/delete", response_class=HTMLResponse)
def delete_account(request: Request, csrf: Csrf = "", confirm: Annotated[str, Form(max_length=320)] = ""):
    check_csrf(request, csrf)
    user = _reader(request)
    if confirm.strip().lower() != user.email.lower():
        return _account(request, user, 422, error="Type your email address to delete the account.")
    request.app.state.store.delete_user(user.id)
    end_session(request)
    return render(request, "deleted.html", title="Account deleted")
