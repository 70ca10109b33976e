"""The signed-in reader's JSON API under /api/me: library, tags, ratings, votes, follows,
saved searches, "For you", tokens and export.

Who is asking: a personal API token (``Authorization: Bearer pf_...``, made and revoked on
the account page or here) or the session cookie. With the cookie, a request that changes
anything must also carry the page's CSRF token in ``X-CSRF-Token`` (a browser sends the
cookie along with another site's request; that site cannot read the token). Everything is
scoped to that reader; another reader's ids answer 404.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from ..errors import InputError, NotFoundError
from ..ids import normalize_id
from ..models import User
from ..rank.foryou import recommend
from ..readers.export import export_json
from ..store.base import author_key
from ..store.sql_library import clean_tag
from .api import ErrorOut
from .auth import csrf_token, current_user
from .views import category_ok

__all__ = ["router", "api_reader"]

# Every error has the API's one shape (api.ErrorOut); documented so the schema says so.
_ERRORS = {
    401: {"model": ErrorOut, "description": "No valid API token or session."},
    403: {"model": ErrorOut, "description": "A cookie request that changes state lacks X-CSRF-Token."},
    404: {"model": ErrorOut, "description": "No such paper, or not one of yours."},
    422: {"model": ErrorOut, "description": "A field is not valid (see `errors`)."},
}

router = APIRouter(prefix="/api/me", tags=["reader"], responses=_ERRORS)


def api_reader(request: Request) -> User:
    """The reader of a request: Bearer token first, else the session cookie; 401 otherwise.
    Cookie requests that change state need ``X-CSRF-Token``."""
    store = request.app.state.store
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        user = store.api_token_user("api", value.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise HTTPException(401, "The API token is not valid (it may have been revoked).",
                                headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        return user
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "Sign in, or send a personal API token as a Bearer token.",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    if request.method not in ("GET", "HEAD"):
        sent = request.headers.get("x-csrf-token", "")
        import hmac

        if not sent or not hmac.compare_digest(sent, csrf_token(request)):
            raise HTTPException(403, "Send the page's CSRF token in X-CSRF-Token, or use an API token.")
    return user


Reader = Annotated[User, Depends(api_reader)]


def _pid(request: Request, text: str) -> str:
    pid = normalize_id(text or "")
    if not pid or request.app.state.store.get_paper(pid) is None:
        raise NotFoundError(f"no paper with id {(text or '')[:60]!r}")
    return pid


class LibraryItemOut(BaseModel):
    id: str
    title: str
    saved_at: str
    note: str
    tags: list[str]


class SaveIn(BaseModel):
    id: str = Field(max_length=200, description="arXiv id (any spelling) or stored id.")
    note: str | None = Field(default=None, max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=20)


class RatingIn(BaseModel):
    id: str = Field(max_length=200)
    value: int = Field(ge=-1, le=1, description="1 more like this, -1 not for me, 0 none.")


class VoteIn(BaseModel):
    id: str = Field(max_length=200)


class FollowIn(BaseModel):
    kind: str = Field(pattern="^(author|category)$")
    name: str = Field(min_length=1, max_length=300)


class FollowOut(BaseModel):
    kind: str
    key: str
    label: str


class SearchIn(BaseModel):
    query: str = Field(min_length=1, max_length=500)


class SearchOut(BaseModel):
    id: int
    query: str


class RecommendationOut(BaseModel):
    id: str
    title: str
    score: float
    reasons: list[str]


class TokenOut(BaseModel):
    id: int
    label: str
    created_at: str
    last_used_at: str | None


class NewTokenOut(TokenOut):
    token: str = Field(description="Shown once; only its hash is kept.")


class TokenIn(BaseModel):
    label: str = Field(default="API token", max_length=100)


class MeOut(BaseModel):
    email: str
    name: str
    tags: dict[str, int]
    library: int
    follows: list[FollowOut]
    saved_searches: list[SearchOut]


@router.get("", response_model=MeOut, summary="The signed-in reader")
def me(request: Request, user: Reader):
    store = request.app.state.store
    return MeOut(
        email=user.email,
        name=user.name,
        tags=dict(store.list_tags(user.id)),
        library=len(store.library_pks(user.id)),
        follows=[FollowOut(kind=f.kind, key=f.key, label=f.label) for f in store.list_follows(user.id)],
        saved_searches=[SearchOut(id=s.id, query=s.query) for s in store.list_saved_searches(user.id)],
    )


@router.get("/library", response_model=list[LibraryItemOut], summary="Saved papers")
def library(request: Request, user: Reader, tag: Annotated[str | None, Query(max_length=40)] = None):
    items = request.app.state.store.library(user.id, clean_tag(tag) if tag else None)
    return [LibraryItemOut(id=i.paper_id, title=i.title, saved_at=i.saved_at, note=i.note, tags=i.tags)
            for i in items]  # fmt: skip


@router.post("/library", response_model=LibraryItemOut, summary="Save a paper (note, tags)")
def save(request: Request, user: Reader, body: SaveIn):
    store = request.app.state.store
    pid = _pid(request, body.id)
    store.save_paper(user.id, pid, note=body.note, tags=body.tags)
    item = next(i for i in store.library(user.id) if i.paper_id == pid)
    return LibraryItemOut(id=item.paper_id, title=item.title, saved_at=item.saved_at,
                          note=item.note, tags=item.tags)  # fmt: skip


@router.delete("/library/{paper_id:path}", summary="Remove a saved paper")
def unsave(request: Request, user: Reader, paper_id: str):
    if not request.app.state.store.unsave_paper(user.id, _pid(request, paper_id)):
        raise NotFoundError("that paper is not in your library")
    return {"removed": normalize_id(paper_id)}


@router.post("/ratings", summary="More like this (1), not for me (-1), or none (0)")
def rate(request: Request, user: Reader, body: RatingIn):
    request.app.state.store.rate_paper(user.id, _pid(request, body.id), body.value)
    return {"id": normalize_id(body.id), "value": body.value}


@router.post("/votes", summary="Vote for a paper, or take the vote back")
def vote(request: Request, user: Reader, body: VoteIn):
    store = request.app.state.store
    pid = _pid(request, body.id)
    voted = store.toggle_vote(user.id, pid)
    request.app.state.trending.clear()
    pk = store.get_paper(pid).pk
    return {"id": pid, "voted": voted, "votes": store.vote_counts([pk]).get(pk, 0)}


@router.get("/follows", response_model=list[FollowOut], summary="Followed authors and categories")
def follows(request: Request, user: Reader):
    return [FollowOut(kind=f.kind, key=f.key, label=f.label)
            for f in request.app.state.store.list_follows(user.id)]  # fmt: skip


@router.post("/follows", response_model=FollowOut, summary="Follow an author or a category")
def follow(request: Request, user: Reader, body: FollowIn):
    name = " ".join(body.name.split())
    if body.kind == "category":
        if not category_ok(name):
            raise InputError(f"not a category: {name[:40]!r}")
        key = name
    else:
        key = author_key(name)
    request.app.state.store.follow(user.id, body.kind, key, name)
    return FollowOut(kind=body.kind, key=key, label=name)


@router.delete("/follows/{kind}/{key:path}", summary="Stop following")
def unfollow(request: Request, user: Reader, kind: str, key: str):
    if not request.app.state.store.unfollow(user.id, kind, key):
        raise NotFoundError("you do not follow that")
    return {"removed": key}


@router.get("/saved-searches", response_model=list[SearchOut], summary="Saved searches")
def saved_searches(request: Request, user: Reader):
    return [SearchOut(id=s.id, query=s.query)
            for s in request.app.state.store.list_saved_searches(user.id)]  # fmt: skip


@router.post("/saved-searches", response_model=SearchOut, summary="Save a search")
def add_search(request: Request, user: Reader, body: SearchIn):
    s = request.app.state.store.add_saved_search(user.id, body.query)
    return SearchOut(id=s.id, query=s.query)


@router.delete("/saved-searches/{search_id}", summary="Delete a saved search")
def delete_search(request: Request, user: Reader, search_id: int):
    if not request.app.state.store.delete_saved_search(user.id, search_id):
        raise NotFoundError("you have no saved search with that id")
    return {"removed": search_id}


@router.get("/for-you", response_model=list[RecommendationOut], summary="Papers picked for you")
def for_you(request: Request, user: Reader, limit: Annotated[int, Query(ge=1, le=100)] = 20):
    store = request.app.state.store
    recs = recommend(store, request.app.state.settings, user.id, limit=limit)
    papers = store.get_papers_by_pk([r.pk for r in recs])
    return [RecommendationOut(id=r.paper_id, title=papers[r.pk].paper.title, score=r.score,
                              reasons=r.reasons) for r in recs if r.pk in papers]  # fmt: skip


@router.get("/tokens", response_model=list[TokenOut], summary="Personal API tokens")
def tokens(request: Request, user: Reader):
    return [TokenOut(id=t.id, label=t.label, created_at=t.created_at, last_used_at=t.last_used_at)
            for t in request.app.state.store.list_api_tokens(user.id, "api")]  # fmt: skip


@router.post("/tokens", response_model=NewTokenOut, summary="Create a personal API token")
def create_token(request: Request, user: Reader, body: TokenIn):
    value = "pf_" + secrets.token_urlsafe(32)
    t = request.app.state.store.create_api_token(user.id, "api", value, body.label)
    return NewTokenOut(id=t.id, label=t.label, created_at=t.created_at, last_used_at=None, token=value)


@router.delete("/tokens/{token_id}", summary="Revoke a personal API token")
def revoke_token(request: Request, user: Reader, token_id: int):
    if not request.app.state.store.revoke_api_token(user.id, token_id):
        raise NotFoundError("you have no token with that id")
    return {"revoked": token_id}


@router.get("/export", summary="Everything stored about you")
def export(request: Request, user: Reader):
    return export_json(request.app.state.store, user.id)
