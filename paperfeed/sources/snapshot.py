"""The Kaggle arXiv metadata snapshot (``arxiv-metadata-oai-snapshot.json``) -> Papers.

One compact JSON object per line, millions of lines: this is the hot import path, so the
per-record work is plain string operations (no regex, no email date parser) on what orjson
returns. Anything unusual falls back to the general, slower helpers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from ..ids import parse_arxiv_id
from ..models import Paper, Rejected
from .limits import DEFAULT_LIMITS, Limits, Overlong, overlong_why, problem
from .text import _fast_rfc2822, clean, first_doi, join_initials, parse_date

__all__ = ["parse_snapshot", "snapshot_record", "SOURCE"]

SOURCE = "arxiv-snapshot"

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


class _Bad(ValueError):
    """A record-level problem with a message fit for the user."""


def _date(s: object) -> str:
    if type(s) is str:
        fast = _fast_rfc2822(s)
        if fast is not None:
            return fast
    return parse_date(s)  # type: ignore[arg-type]  # raises a readable ValueError


def _base_id(rid: object) -> str:
    parsed = parse_arxiv_id(rid) if type(rid) is str else None
    if parsed is None:
        raise _Bad(f"id {rid!r} is not an arXiv id")
    return parsed[0]


def _authors_from_text(text: str) -> list[str]:
    """Fallback when ``authors_parsed`` is missing: "A, B and C (Univ. X, Y)" -> [A, B, C]."""
    depth, kept = 0, []
    for ch in text:  # drop parenthesised affiliations; they contain commas of their own
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(ch)
    flat = " ".join("".join(kept).split()).replace(" and ", ", ")
    return [n.strip() for n in flat.split(",") if n.strip()]


def snapshot_record(r: object) -> Paper:
    """One decoded snapshot object -> Paper; raises ValueError/KeyError/TypeError if bad."""
    if type(r) is not dict:
        raise _Bad("line is not a JSON object")
    pid = r["id"]
    # New-style ids ("0704.0001", "2606.00467") are nearly all of the snapshot: check them
    # with string ops and leave the regex to old-style ids like "hep-th/9901001".
    if not (
        type(pid) is str and len(pid) in (9, 10) and pid[4] == "."
        and pid[:4].isdigit() and pid[5:].isdigit() and pid.isascii()
    ):  # fmt: skip
        pid = _base_id(pid)
    title = r.get("title")
    if not title or type(title) is not str or title.isspace():
        raise _Bad(f"{pid}: missing title")
    title = clean(title)
    abstract = r.get("abstract")
    abstract = clean(abstract) if abstract else ""

    parsed = r.get("authors_parsed")
    if parsed:
        # [last, first, suffix(, "")] -> "First Last Suffix", skipping empty parts
        authors = [
            (f"{a[1]} {a[0]}" if a[1] else a[0])
            if len(a) < 3 or not a[2]
            else (f"{a[1]} {a[0]} {a[2]}" if a[1] else f"{a[0]} {a[2]}")
            for a in parsed
        ]
        if "" in authors:
            authors = [a for a in authors if a]
        # arXiv's parse spaces hyphenated initials ("C. -P." for "C.-P."). One search of the
        # joined names: searching the whole line costs more than the rest of the checks.
        if ". -" in "|".join(authors):
            authors = [join_initials(a) for a in authors]
    else:
        authors = _authors_from_text(r.get("authors") or "")

    cats = (r.get("categories") or "").split()

    version = published = updated = None
    versions = r.get("versions")
    if versions:
        n = len(versions)
        first, last = versions[0], versions[-1]
        if first["version"] == "v1" and int(last["version"][1:]) == n:
            version = n  # the usual v1..vN in order
        else:
            by_num = sorted(versions, key=lambda v: int(v["version"][1:]))
            first, last = by_num[0], by_num[-1]
            version = int(last["version"][1:])
        published = _date(first["created"])
        updated = published if n == 1 else _date(last["created"])
    update_date = r.get("update_date")
    if updated is None and update_date:
        updated = parse_date(update_date)

    doi = r.get("doi")
    if doi:
        doi = first_doi(doi)
    links = {
        "abs": f"https://arxiv.org/abs/{pid}",
        "pdf": f"https://arxiv.org/pdf/{pid}v{version}"
        if version
        else f"https://arxiv.org/pdf/{pid}",
    }
    if doi:
        links["doi"] = f"https://doi.org/{doi}"
    jref = r.get("journal-ref")
    comments = r.get("comments")
    return Paper(
        id=pid,
        title=title,
        abstract=abstract,
        authors=authors,
        categories=cats,
        primary_category=cats[0] if cats else None,
        version=version,
        published=published,
        updated=updated,
        doi=doi or None,
        journal_ref=clean(jref) if jref else None,
        comments=clean(comments) if comments else None,
        links=links,
        source=SOURCE,
    )


def _why(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, _Bad):
        return str(exc)
    if isinstance(exc, (TypeError, ValueError, AttributeError, IndexError)):
        return f"bad value: {exc}"
    return f"unreadable record: {type(exc).__name__}: {exc}"


def parse_snapshot(
    lines: Iterable[bytes | Overlong], where: str, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Paper | Rejected]:
    """Yield a Paper per line, or a Rejected at ``where:LINE`` for a line that is not one
    (malformed, a bad value, over a cap: see limits.py)."""
    lineno = 0
    for line in lines:
        lineno += 1
        if type(line) is Overlong:
            yield Rejected(f"{where}:{lineno}", overlong_why(line, limits))
            continue
        if not line or line.isspace():
            continue
        try:
            r = _loads(line)
        except _JSONDecodeError as exc:
            yield Rejected(f"{where}:{lineno}", f"malformed JSON: {exc}")
            continue
        try:
            p = snapshot_record(r)
            why = problem(p, limits)
        except Exception as exc:  # noqa: BLE001 - any fault of one record rejects only it
            why = _why(exc)
        if why is None:
            yield p
        else:
            yield Rejected(f"{where}:{lineno}", why)
