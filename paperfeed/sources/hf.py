"""Hugging Face Daily Papers (``GET https://huggingface.co/api/daily_papers``) -> Papers.

The body is a JSON array of items ``{paper: {...}, numComments, publishedAt, ...}``; a
single item object is accepted too, and so is the older schema whose authors carry a
nested ``user``. A day's response is small (tens of items), so it is decoded whole; each
item is then checked on its own, and a bad one is reported without losing the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from ..ids import parse_arxiv_id
from ..models import Paper, Rejected
from .limits import DEFAULT_LIMITS, Limits, link_problem, problem
from .text import arxiv_links, clean, day_of, parse_date

__all__ = ["parse_hf", "hf_item", "hf_fields", "SOURCE", "HF_FIELDS"]

SOURCE = "hf-daily"

# Hugging Face's own fields of a listing, kept beside it (Paper.hf) and shown on the paper
# page: name -> what it holds. Daily-papers JSON names in brackets.
HF_FIELDS = {
    "ai_summary": "a one-sentence summary written by a model (paper.ai_summary)",
    "ai_keywords": "keywords extracted by a model (paper.ai_keywords)",
    "github_repo": "the code repository's URL (paper.githubRepo)",
    "github_stars": "its GitHub stars when listed (paper.githubStars)",
    "project_page": "the project's page (paper.projectPage)",
    "organization": "the organisation that submitted it (organization.fullname)",
}
_MAX_KEYWORDS = 40


class _Bad(ValueError):
    """An item-level problem with a message fit for the user."""


def _str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) and v.strip() else None


def _count(v: object) -> int | None:
    # bool is an int in Python; a true/false vote count is garbage, not 1/0.
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _author(a: object) -> str | None:
    if isinstance(a, str):
        return clean(a) or None
    if isinstance(a, dict):
        name = _str(a, "name")
        if name is None and isinstance(a.get("user"), dict):
            name = _str(a["user"], "fullname")  # older schema: the name may sit on the user
        return clean(name) if name else None
    return None


def _url(v: object) -> str | None:
    if isinstance(v, str) and v.strip().lower().startswith(("https://", "http://")):
        return v.strip()
    return None


def hf_fields(d: object) -> dict:
    """The valid ``HF_FIELDS`` of ``d`` (a paperfeed export's ``hf`` object, or fields
    gathered from a daily-papers item): wrong types and non-http(s) URLs are dropped, so the
    page never shows a ``javascript:`` link or a number that is not one."""
    if not isinstance(d, dict):
        return {}
    out: dict = {}
    for key in ("ai_summary", "organization"):
        v = d.get(key)
        if isinstance(v, str) and clean(v):
            out[key] = clean(v)
    words = d.get("ai_keywords")
    if isinstance(words, list):
        kept = [c for w in words if isinstance(w, str) and (c := clean(w))][:_MAX_KEYWORDS]
        if kept:
            out["ai_keywords"] = kept
    for key in ("github_repo", "project_page"):
        if url := _url(d.get(key)):
            out[key] = url
    stars = _count(d.get("github_stars"))
    if stars is not None and "github_repo" in out:
        out["github_stars"] = stars
    return out


def _org(v: object) -> str | None:
    return (_str(v, "fullname") or _str(v, "name")) if isinstance(v, dict) else None


def hf_item(item: object, limits: Limits = DEFAULT_LIMITS) -> Paper:
    """One daily-papers item -> Paper; raises ValueError/TypeError when it is not one."""
    if not isinstance(item, dict):
        raise _Bad("item is not a JSON object")
    paper = item.get("paper")
    if not isinstance(paper, dict):
        raise _Bad("item has no 'paper' object")
    raw_id = paper.get("id")
    parsed = parse_arxiv_id(raw_id) if isinstance(raw_id, str) else None
    if parsed is None:
        raise _Bad(f"paper id {raw_id!r} is not an arXiv id")
    base, version = parsed
    title = clean(_str(paper, "title") or _str(item, "title"))
    if not title:
        raise _Bad(f"{base}: missing title")
    try:
        published = parse_date(paper["publishedAt"]) if _str(paper, "publishedAt") else None
        # The day HF listed it; old responses lack submittedOnDailyAt, and there the item's
        # own publishedAt is the listing time.
        listed = _str(paper, "submittedOnDailyAt") or _str(item, "publishedAt")
        listed_on = day_of(listed) if listed else None
    except ValueError as exc:
        raise _Bad(f"{base}: {exc}") from None
    authors = [n for a in paper.get("authors") or [] if (n := _author(a))]
    links = arxiv_links(base, version, None)
    links["hf"] = f"https://huggingface.co/papers/{base}"
    hf = hf_fields(
        {
            "ai_summary": paper.get("ai_summary"),
            "ai_keywords": paper.get("ai_keywords"),
            "github_repo": paper.get("githubRepo"),
            "github_stars": paper.get("githubStars"),
            "project_page": paper.get("projectPage"),
            "organization": _org(paper.get("organization")) or _org(item.get("organization")),
        }
    )
    for key, field in (("code", "githubRepo"), ("project", "projectPage")):
        url = _str(paper, field)
        if url:
            why = link_problem(key, url.strip(), limits)
            if why:
                raise _Bad(f"{base}: {field}: {why}")
            links[key] = url.strip()
    return Paper(
        id=base,
        title=title,
        abstract=clean(_str(paper, "summary") or _str(item, "summary")) or "",
        authors=authors,
        version=version,
        published=published,
        links=links,
        source=SOURCE,
        upvotes=_count(paper.get("upvotes")),
        num_comments=_count(item.get("numComments")),
        listed_on=listed_on,
        hf=hf,
    )


def _read_upto(stream: BinaryIO, n: int) -> bytes:
    # A raw (gunzipping) stream's read() may return less than asked before the end.
    parts, size = [], 0
    while size < n:
        chunk = stream.read(min(1 << 20, n - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def parse_hf(
    stream: BinaryIO | bytes, where: str, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Paper | Rejected]:
    """Yield a Paper per item, or a Rejected at ``where:item N`` (1-based) for a bad one."""
    cap = limits.max_document_bytes
    # Read whole (one JSON document), so never more than the cap: a bomb stops here.
    raw = stream if isinstance(stream, (bytes, bytearray)) else _read_upto(stream, cap + 1)
    if len(raw) > cap:
        yield Rejected(
            where, f"a Hugging Face JSON document over max_document_bytes ({cap:,}) is not read"
        )
        return
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        yield Rejected(where, f"malformed JSON: {exc}")
        return
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        yield Rejected(where, "expected a JSON array of daily-paper items")
        return
    for n, item in enumerate(body, 1):
        try:
            p = hf_item(item, limits)
            why = problem(p, limits)
        except _Bad as exc:
            why = str(exc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            why = f"bad value: {exc}"
        except Exception as exc:  # noqa: BLE001 - any fault of one item rejects only it
            why = f"unreadable item: {type(exc).__name__}: {exc}"
        if why is None:
            yield p
        else:
            yield Rejected(f"{where}:item {n}", why)
