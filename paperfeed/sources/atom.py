"""arXiv API (``export.arxiv.org/api/query``) Atom responses -> Papers.

Both the legacy format and the 2026 one are read. Their differences (feed id under
``https://arxiv.org/api/``, opensearch namespace declared on the root instead of on each
element, ``arxiv:primary_category`` without ``scheme``, ``<published>`` after the categories)
vanish once names are namespace-resolved and children are looked up by name, not position.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO
from xml.etree.ElementTree import Element

from ..ids import parse_arxiv_id
from ..models import Paper, Rejected
from .limits import DEFAULT_LIMITS, Limits, checked, overlong_why
from .text import arxiv_links, clean, first_doi, join_initials, parse_date
from .xmlsafe import OversizeTagError, ParseError, UnsafeXMLError, iter_elements, oversize_of, syntax_error

__all__ = ["FeedInfo", "parse_atom", "read_atom_page", "feed_info", "SOURCE"]

SOURCE = "arxiv-api"
ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"

_ENTRY = ATOM + "entry"
_INFO_TAGS = {
    OPENSEARCH + "totalResults": "total_results",
    OPENSEARCH + "startIndex": "start_index",
    OPENSEARCH + "itemsPerPage": "items_per_page",
}


@dataclass(slots=True)
class FeedInfo:
    """Paging numbers of one API response (None where the feed does not say)."""

    total_results: int | None = None
    start_index: int | None = None
    items_per_page: int | None = None


def _text(parent: Element, tag: str) -> str | None:
    node = parent.find(tag)
    return node.text if node is not None else None


def _entry(e: Element, where: str) -> Paper | Rejected:
    raw_id = (_text(e, ATOM + "id") or "").strip()
    if not raw_id:
        return Rejected(where, "entry has no <id>")
    if "/api/errors" in raw_id:
        # The API reports a bad query as a feed with one "Error" entry; its summary says why.
        return Rejected(where, f"arXiv API error: {clean(_text(e, ATOM + 'summary')) or raw_id}")
    parsed = parse_arxiv_id(raw_id)
    if parsed is None:
        return Rejected(where, f"entry id {raw_id!r} is not an arXiv id")
    base, version = parsed
    title = clean(_text(e, ATOM + "title"))
    if not title:
        return Rejected(where, f"{base}: missing title")
    dates: dict[str, str | None] = {}
    for field in ("published", "updated"):
        raw = _text(e, ATOM + field)
        try:
            dates[field] = parse_date(raw) if raw and raw.strip() else None
        except ValueError as exc:
            return Rejected(where, f"{base}: <{field}>: {exc}")
    categories: list[str] = []
    for c in e.iterfind(ATOM + "category"):
        term = (c.get("term") or "").strip()
        if term and term not in categories:
            categories.append(term)
    prim = e.find(ARXIV + "primary_category")
    primary = ((prim.get("term") or "").strip() or None) if prim is not None else None
    if primary:
        categories = [primary] + [c for c in categories if c != primary]
    doi = first_doi((_text(e, ARXIV + "doi") or "").strip())
    authors = [
        join_initials(n) for a in e.iterfind(ATOM + "author") if (n := clean(a.findtext(ATOM + "name")))
    ]
    return Paper(
        id=base,
        title=title,
        abstract=clean(_text(e, ATOM + "summary")) or "",
        authors=authors,
        categories=categories,
        primary_category=primary or (categories[0] if categories else None),
        version=version,
        published=dates["published"],
        updated=dates["updated"] or dates["published"],
        doi=doi,
        journal_ref=clean(_text(e, ARXIV + "journal_ref")) or None,
        comments=clean(_text(e, ARXIV + "comment")) or None,
        links=arxiv_links(base, version, doi),
        source=SOURCE,
    )


def parse_atom(
    stream: BinaryIO | bytes,
    where: str,
    info: FeedInfo | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[Paper | Rejected]:
    """Yield one Paper per entry (or a Rejected naming ``where:LINE`` and why).

    A document that declares entities yields one Rejected and nothing else; a syntax error
    yields a last Rejected after the entries before it. When ``info`` is given it is filled
    in with the feed's opensearch numbers as they are read. Entries over ``limits`` are
    rejected (see limits.py).
    """
    tags = {_ENTRY, *_INFO_TAGS}
    try:
        for elem, line in iter_elements(stream, tags, limits.max_record_bytes):
            if elem.tag == _ENTRY:
                here = f"{where}:{line}"
                size = oversize_of(elem)
                if size is not None:
                    yield Rejected(here, overlong_why(size, limits).replace("record of", "entry of over"))
                    continue
                try:
                    rec = _entry(elem, here)
                    yield checked(rec, here, limits) if type(rec) is Paper else rec
                except Exception as exc:  # noqa: BLE001 - odd shapes reject one entry, never crash
                    yield Rejected(here, f"unreadable entry: {type(exc).__name__}: {exc}")
            elif info is not None:
                try:
                    setattr(info, _INFO_TAGS[elem.tag], int((elem.text or "").strip()))
                except ValueError:
                    pass  # a garbled count only loses paging hints, not papers
    except (UnsafeXMLError, OversizeTagError) as exc:
        yield Rejected(where, str(exc))
    except ParseError as exc:
        line, why = syntax_error(exc)
        yield Rejected(f"{where}:{line}" if line else where, why)


def read_atom_page(
    data: bytes, where: str = "arXiv API response"
) -> tuple[list[Paper | Rejected], FeedInfo]:
    """One pass over a whole response: its records and its paging numbers."""
    info = FeedInfo()
    records = list(parse_atom(data, where, info))
    return records, info


def feed_info(data: bytes) -> FeedInfo:
    """Only the paging numbers (opensearch totalResults, startIndex, itemsPerPage)."""
    return read_atom_page(data)[1]
