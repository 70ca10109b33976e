"""paperfeed's own export format: one JSON object per line with ``Paper``'s field names.

It round-trips what the store holds (used for the bundled sample), so it is validated
field by field: a wrong type is a Rejected line, not a corrupt row later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields

import orjson

from ..ids import parse_arxiv_id
from ..models import Paper, Rejected
from .hf import hf_fields
from .limits import DEFAULT_LIMITS, Limits, Overlong, link_problem, overlong_why, problem
from .text import clean, day_of, parse_date

__all__ = ["parse_paperfeed", "paperfeed_record", "FORMAT"]

FORMAT = "paperfeed"
_KNOWN = frozenset(f.name for f in fields(Paper))
_TEXT = ("abstract", "primary_category", "doi", "journal_ref", "comments", "source")
_COUNTS = ("version", "upvotes", "num_comments")


def _str_list(d: dict, key: str) -> list[str]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{key!r} must be a list of strings")
    return [c for x in v if (c := clean(x))]


def paperfeed_record(d: object, limits: Limits = DEFAULT_LIMITS) -> Paper:
    """One decoded line -> Paper; raises ValueError naming the bad field."""
    if not isinstance(d, dict):
        raise ValueError("line is not a JSON object")
    pid = d.get("id")
    if not isinstance(pid, str) or not pid.strip():
        raise ValueError("missing 'id'")
    title = clean(d.get("title")) if isinstance(d.get("title"), str) else None
    if not title:
        raise ValueError(f"{pid.strip()}: missing title")
    kw: dict = {k: d[k] for k in _KNOWN & d.keys()}  # unknown keys: newer exports, ignored
    for key in _TEXT:
        v = kw.get(key)
        if v is not None and not isinstance(v, str):
            raise ValueError(f"{key!r} must be a string")
        kw[key] = (clean(v) or None) if v is not None else None
    for key in _COUNTS:
        v = kw.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"{key!r} must be a non-negative integer")
    if "hf" in kw:
        if not isinstance(kw["hf"], dict):
            raise ValueError("'hf' must be an object of Hugging Face fields")
        kw["hf"] = hf_fields(kw["hf"])
    links = kw.get("links") or {}
    if not isinstance(links, dict) or not all(isinstance(v, str) for v in links.values()):
        raise ValueError("'links' must map names to URL strings")
    for name, url in links.items():
        why = link_problem(name, url, limits)
        if why:
            raise ValueError(f"{pid.strip()}: {why}")
    try:
        for key in ("published", "updated"):
            kw[key] = parse_date(kw[key]) if kw.get(key) else None
        kw["listed_on"] = day_of(kw["listed_on"]) if kw.get("listed_on") else None
    except ValueError as exc:
        raise ValueError(f"{pid.strip()}: {exc}") from None
    # A versioned arXiv id ("2606.00467v2") is stored under its base id, keeping the version.
    parsed = parse_arxiv_id(pid)
    base, version = parsed if parsed else (pid.strip(), None)
    kw.update(
        id=base,
        title=title,
        abstract=kw.get("abstract") or "",
        authors=_str_list(d, "authors"),
        categories=_str_list(d, "categories"),
        links=dict(links),
        version=kw.get("version") or version,
        source=kw.get("source") or FORMAT,
    )
    return Paper(**kw)


def parse_paperfeed(
    lines: Iterable[bytes | Overlong], where: str, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Paper | Rejected]:
    """Yield a Paper per line, or a Rejected at ``where:LINE``."""
    for lineno, line in enumerate(lines, 1):
        if type(line) is Overlong:
            yield Rejected(f"{where}:{lineno}", overlong_why(line, limits))
            continue
        if not line or line.isspace():
            continue
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Rejected(f"{where}:{lineno}", f"malformed JSON: {exc}")
            continue
        try:
            p = paperfeed_record(d, limits)
            why = problem(p, limits)
        except (ValueError, TypeError, AttributeError) as exc:
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - any fault of one record rejects only it
            why = f"unreadable record: {type(exc).__name__}: {exc}"
        if why is None:
            yield p
        else:
            yield Rejected(f"{where}:{lineno}", why)
