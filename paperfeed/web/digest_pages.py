"""Digest pages: subscribe (the box on every listing), confirm, unsubscribe (one-click, RFC
8058), the "not for me" / "more like this" links of a mail, the preview of one's next digest
and the digest settings; and ``POST /api/subscribe``.

Links in mail never change anything on a GET: mail scanners open every link. Each opens a
page whose button POSTs. The one exception to "every form carries a CSRF token" is the
unsubscribe POST: a mail client sends it without cookies, so the signed token in the URL is
the credential (and all it can do is stop mail to the address it was sent to).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Annotated

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from ..digest.compose import compose
from ..digest.links import TokenError, read_confirm, read_rate, read_unsubscribe
from ..digest.prefs import MAX_PAPERS, SECTION_LABELS, WEEKDAYS, parse_prefs
from ..digest.select import Pool
from ..digest.subscribe import (
    ANSWER,
    WHAT_ARRIVES,
    Throttled,
    confirm,
    request_subscription,
    unsubscribe,
)
from ..errors import InputError
from ..models import Subscription
from .auth import check_csrf, require_user
from .pages import render

__all__ = ["router", "api_router"]

log = logging.getLogger("paperfeed.web")
router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api", tags=["api"])

Token = Annotated[str, "a signed token"]


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- subscribe -------------------------------------------------------------------------------
@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_form(request: Request):
    return render(request, "subscribe.html", title="Subscribe", done=False, what_arrives=WHAT_ARRIVES)


@router.post("/subscribe", response_class=HTMLResponse)
def subscribe_post(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
):
    check_csrf(request, csrf)
    s, store = request.app.state.settings, request.app.state.store
    try:
        request_subscription(store, s, email, _client(request), source="web")
    except InputError as e:
        status = 429 if isinstance(e, Throttled) else 422
        return render(
            request, "subscribe.html", status, title="Subscribe", done=False, error=str(e),
            what_arrives=WHAT_ARRIVES,
        )  # fmt: skip
    return render(
        request, "subscribe.html", title="Check your inbox", done=True, answer=ANSWER,
        hours=f"{s.confirm_link_hours:g}",
    )  # fmt: skip


class SubscribeIn(BaseModel):
    email: str = Field(max_length=320, description="The address to subscribe.")


class SubscribeOut(BaseModel):
    detail: str


# Left out of /api/openapi.json, which describes the read-only data API (and which the schema
# fuzzer in tests/test_api.py checks): "schema-valid" here is any string, while the answer
# for a string email-validator refuses is, rightly, 422. README (Digests) documents it.
@api_router.post(
    "/subscribe", response_model=SubscribeOut, status_code=202, include_in_schema=False,
)  # fmt: skip
def api_subscribe(request: Request, body: SubscribeIn):
    """Ask for the email digest. The address gets a confirmation link; the answer is the same
    whether it was new, pending or already subscribed. A JSON body is required, which a
    cross-site HTML form cannot send."""
    s, store = request.app.state.settings, request.app.state.store
    try:
        request_subscription(store, s, body.email, _client(request), source="api")
    except Throttled as e:
        return JSONResponse({"detail": str(e)}, status_code=429)
    except InputError as e:
        return JSONResponse({"detail": str(e)}, status_code=422)
    return SubscribeOut(detail=ANSWER)


# --- confirm ---------------------------------------------------------------------------------
def _confirm_page(request: Request, status: int = 200, **ctx) -> HTMLResponse:
    ctx.setdefault("heading", "Confirm your subscription")
    return render(request, "confirm.html", status, title=ctx["heading"], **ctx)


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_form(request: Request, token: Token):
    s, store = request.app.state.settings, request.app.state.store
    try:
        uid = read_confirm(s, token)
    except TokenError as e:
        return _confirm_page(request, 400, error=str(e))
    user = store.get_user(uid)
    sub = store.get_subscription(uid)
    if user is None or sub is None:
        return _confirm_page(request, 400, error="This link is for a subscription that no longer exists.")
    if sub.status == "active":
        return _confirm_page(request, done=True, heading="Already subscribed",
                             message=f"{user.email} is subscribed already.")  # fmt: skip
    return _confirm_page(request, email=user.email, action=f"/confirm/{token}")


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm_post(request: Request, token: Token, csrf: Annotated[str, Form(max_length=200)] = ""):
    check_csrf(request, csrf)
    s, store = request.app.state.settings, request.app.state.store
    try:
        user, changed = confirm(store, s, token)
    except InputError as e:  # TokenError included: tampered, expired or used
        return _confirm_page(request, 400, error=str(e))
    msg = (f"{user.email} is subscribed. The first digest comes with the next papers."
           if changed else f"{user.email} was subscribed already; nothing changed.")  # fmt: skip
    return _confirm_page(request, done=True, heading="Subscribed", message=msg)


# --- unsubscribe -------------------------------------------------------------------------------
def _unsub_page(request: Request, status: int = 200, **ctx) -> HTMLResponse:
    ctx.setdefault("heading", "Unsubscribe")
    return render(request, "unsubscribe.html", status, title=ctx["heading"], **ctx)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_form(request: Request, token: Token):
    """A page with a button: a GET (a scanner, a preview) never unsubscribes."""
    s, store = request.app.state.settings, request.app.state.store
    try:
        uid = read_unsubscribe(s, token)
    except TokenError as e:
        return _unsub_page(request, 400, error=str(e))
    user = store.get_user(uid)
    sub = store.get_subscription(uid) if user else None
    if user is None or sub is None or sub.status == "unsubscribed":
        return _unsub_page(request, done=True, heading="Unsubscribed",
                           message="This address is not subscribed (any more).")  # fmt: skip
    return _unsub_page(request, email=user.email, action=f"/unsubscribe/{token}")


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def unsubscribe_post(request: Request, token: Token):
    """RFC 8058 one-click: a POST with body ``List-Unsubscribe=One-Click``, no cookie and no
    CSRF token (the signed token is the credential); answers 200. Also the page's button."""
    s, store = request.app.state.settings, request.app.state.store
    try:
        user, changed = unsubscribe(store, s, token)
    except TokenError as e:
        return _unsub_page(request, 400, error=str(e))
    if changed:
        log.info("unsubscribed reader %s", user.id)
        msg = f"{user.email} is unsubscribed: no more digests will be sent to it."
    else:
        msg = "This address was already unsubscribed; nothing more will be sent to it."
    return _unsub_page(request, done=True, heading="Unsubscribed", message=msg)


# --- "not for me" / "more like this" from a mail --------------------------------------------
def _rate_page(request: Request, status: int = 200, **ctx) -> HTMLResponse:
    ctx.setdefault("heading", "Your digest")
    ctx.setdefault("paper", None)
    return render(request, "rate.html", status, title=ctx["heading"], **ctx)


RatePaper = Annotated[str, Query(max_length=200, description="The paper's id.")]
RateValue = Annotated[int, Query(ge=-1, le=1, description="1: more like this; -1: not for me.")]


def _rate_target(request: Request, token: str, paper: str, v: int):
    """(reader id, StoredPaper) of a rate link, or an error page: the token must be good and
    the paper one that was mailed to that reader."""
    s, store = request.app.state.settings, request.app.state.store
    heading = "More like this" if v > 0 else "Not for me"
    try:
        uid = read_rate(s, token)
    except TokenError as e:
        return _rate_page(request, 400, heading=heading, error=str(e))
    if v == 0:
        return _rate_page(request, 400, heading=heading, error="This link is not valid.")
    sp = store.get_paper(paper)
    if store.get_user(uid) is None:
        return _rate_page(request, 400, heading=heading,
                          error="This link is for an account that no longer exists.")  # fmt: skip
    if sp is None or sp.pk not in store.shown_pks(uid):
        return _rate_page(request, 400, heading=heading,
                          error="This link is not valid (that paper was not in your digest).")  # fmt: skip
    return uid, sp


@router.get("/mail/rate/{token}", response_class=HTMLResponse)
def rate_form(request: Request, token: Token, paper: RatePaper = "", v: RateValue = 0):
    got = _rate_target(request, token, paper, v)
    if isinstance(got, HTMLResponse):
        return got
    heading = "More like this" if v > 0 else "Not for me"
    action = f"/mail/rate/{token}?{urlencode({'paper': paper, 'v': v})}"
    return _rate_page(request, heading=heading, value=v, paper=got[1].paper, action=action)


@router.post("/mail/rate/{token}", response_class=HTMLResponse)
def rate_post(
    request: Request, token: Token, paper: RatePaper = "", v: RateValue = 0,
    csrf: Annotated[str, Form(max_length=200)] = "",
):  # fmt: skip
    check_csrf(request, csrf)
    got = _rate_target(request, token, paper, v)
    if isinstance(got, HTMLResponse):
        return got
    uid, sp = got
    heading = "More like this" if v > 0 else "Not for me"
    request.app.state.store.rate_paper(uid, sp.paper.id, v)
    msg = ("Noted: your digest will bring more papers like this one." if v > 0
           else "Noted: your digest will bring fewer papers like this one.")  # fmt: skip
    return _rate_page(request, done=True, recorded=True, heading=heading, paper=sp.paper, message=msg)


# --- the signed-in reader's digest ---------------------------------------------------------
@router.get("/digest/preview", response_class=HTMLResponse)
def digest_preview(request: Request):
    user = require_user(request)
    s, store = request.app.state.settings, request.app.state.store
    sub = store.get_subscription(user.id)
    view = sub or Subscription(user.id, user.email)
    now = datetime.now(timezone.utc)
    d = compose(store, s, view, Pool.build(store, s, view.seen_pk, now), now)
    return render(request, "digest_preview.html", title="Your next digest", digest=d, sub=sub)


def _prefs_page(request: Request, user, status: int = 200, **ctx) -> HTMLResponse:
    store = request.app.state.store
    sub = store.get_subscription(user.id)
    return render(
        request, "account_digest.html", status, title="Digest settings", sub=sub,
        p=sub or Subscription(user.id, user.email), weekdays=WEEKDAYS, sections=SECTION_LABELS,
        max_papers=MAX_PAPERS, **ctx,
    )  # fmt: skip


@router.get("/account/digest", response_class=HTMLResponse)
def account_digest(request: Request):
    return _prefs_page(request, require_user(request))


@router.post("/account/digest", response_class=HTMLResponse)
async def account_digest_post(request: Request):
    user = require_user(request)
    form = await request.form()
    check_csrf(request, str(form.get("csrf", "")))
    store = request.app.state.store
    if form.get("action") == "unsubscribe":
        store.unsubscribe(user.id)
        return _prefs_page(request, user, saved="Unsubscribed: no more digests.")
    fields = {k: str(form.get(k, "")) for k in
              ("frequency", "weekday", "send_hour", "timezone", "max_papers", "min_score")
              if k in form}  # fmt: skip
    fields["sections"] = [str(v) for v in form.getlist("sections")][:10]
    try:
        prefs = parse_prefs(fields)
    except InputError as e:
        return _prefs_page(request, user, 422, error=str(e))
    sub = store.get_subscription(user.id)
    if sub is None or sub.status != "active":
        store.activate_subscription(user.id, source="account")  # signed in: address proven
    store.set_digest_prefs(user.id, **prefs)
    return _prefs_page(request, user, saved="Saved.")


