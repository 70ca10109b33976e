"""Size caps and shape checks every imported record passes before it can reach the store.

Input files are untrusted: one record may carry a 1 GiB abstract, a version number beyond
64 bits, an id like ``../../etc/passwd`` or a category like ``"><script>``. Each parser calls
``checked`` on every Paper it makes, so such a record becomes a Rejected naming its
``file:line`` and why, and the records around it still land. The caps are settings (see
config.py); their defaults fit every record of the real arXiv snapshot with room to spare.

``bounded_lines`` reads JSON lines without ever holding more than one capped line: a longer
line is read to its end in pieces and handed on as an ``Overlong`` marker instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, BinaryIO

from ..config import SETTINGS
from ..ids import parse_arxiv_id
from ..models import Paper, Rejected

__all__ = [
    "Limits",
    "DEFAULT_LIMITS",
    "Overlong",
    "bounded_lines",
    "checked",
    "problem",
    "id_problem",
    "category_problem",
    "link_problem",
]

# Counts from input are checked against these, so a version like v99999999999999999999 is a
# rejected record, not an integer that overflows the content hash or SQLite. arXiv's highest
# version numbers are in the tens.
MAX_VERSION = 100_000
MAX_COUNT = 2**31 - 1  # upvotes, comments
MAX_LINKS = 32

# A namespaced id (scifact:4983, seed:64, oai:repo.org:123): a short lower-case namespace, then
# printable text without whitespace, quotes or angle brackets, and no "." or ".." path step.
_NAMESPACE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ID_FORBIDDEN = frozenset('<>"\'`\\')
_MAX_ID_CHARS = 256
# A category: arXiv codes (cs.LG, hep-th, cond-mat.mes-hall), MSC and ACM classes the arXiv API
# lists too (68T05, I.2.7), and subject words an oai_dc record gives ("Physics - Optics").
_CATEGORY_FORBIDDEN = frozenset('<>"\'`\\/&')
_MAX_CATEGORY_CHARS = 100
_CATEGORY_CODES = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,39}(?: [A-Za-z0-9][A-Za-z0-9.-]{0,39})*")
_FIELDS = ("comments", "journal_ref", "doi", "source")


@dataclass(frozen=True, slots=True)
class Limits:
    """The import caps (one setting each; see config.py for what each means)."""

    max_record_bytes: int
    max_title_chars: int
    max_abstract_chars: int
    max_field_chars: int
    max_authors: int
    max_author_chars: int
    max_categories: int
    max_document_bytes: int

    @classmethod
    def from_settings(cls, settings: Any) -> "Limits":
        return cls(**{f.name: settings[f.name] for f in fields(cls)})


DEFAULT_LIMITS = Limits(
    **{s.name: s.default for s in SETTINGS if s.name in {f.name for f in fields(Limits)}}
)


class Overlong(int):
    """Stands in for a line longer than the cap; its value is the line's length in bytes."""


def bounded_lines(stream: BinaryIO, max_bytes: int) -> Iterator[bytes | Overlong]:
    """The lines of a buffered binary stream, each at most ``max_bytes`` long; a longer line is
    consumed to its end in cap-sized pieces (memory stays flat) and yielded as Overlong."""
    readline = stream.readline
    limit = max_bytes + 1  # a line of exactly max_bytes plus its newline still fits
    while True:
        line = readline(limit)
        if len(line) < limit or line[-1] == 10:  # short, or exactly at the cap with "\n"
            if not line:
                return
            yield line
            continue
        size = len(line)
        while line and line[-1] != 10:
            line = readline(limit)
            size += len(line)
        yield Overlong(size)


def overlong_why(size: int, limits: Limits) -> str:
    return f"record of {size:,} bytes is over max_record_bytes ({limits.max_record_bytes:,})"


def _text_problem(name: str, value: object, cap: int, setting: str) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        return f"{name} must be text"
    if len(value) > cap:
        return f"{name} of {len(value):,} characters is over {setting} ({cap:,})"
    return None


def id_problem(pid: object) -> str | None:
    """Why ``pid`` is not an id some source can produce, or None when it is one."""
    if type(pid) is not str or not pid:
        return "missing id"
    if len(pid) > _MAX_ID_CHARS:
        return f"id of {len(pid):,} characters is too long"
    if (
        len(pid) in (9, 10) and pid[4] == "."
        and pid[:4].isdigit() and pid[5:].isdigit() and pid.isascii()
    ):  # fmt: skip
        return None  # a new-style arXiv id: nearly every record, so no regex
    if parse_arxiv_id(pid) == (pid, None):
        return None  # an old-style one (hep-th/9901001)
    ns, colon, local = pid.partition(":")
    if (
        colon
        and local
        and _NAMESPACE.fullmatch(ns)
        and local.isprintable()
        and not any(ch.isspace() or ch in _ID_FORBIDDEN for ch in local)
        and not any(step in (".", "..") for step in local.split("/"))
    ):
        return None
    return (
        f"id {pid[:80]!r} is neither an arXiv id nor a namespaced id like 'scifact:4983' "
        "(no spaces, quotes, angle brackets or '..' steps)"
    )


def category_problem(cat: object) -> str | None:
    if type(cat) is not str or not cat:
        return "empty category"
    if (
        len(cat) > _MAX_CATEGORY_CHARS
        or not cat.isprintable()
        or cat != cat.strip()
        or any(ch in _CATEGORY_FORBIDDEN for ch in cat)
    ):
        return f"category {cat[:80]!r} is not a category code (like cs.LG or hep-th)"
    return None


def _count_problem(name: str, value: object, low: int, high: int) -> str | None:
    if value is None:
        return None
    if type(value) is not int:
        return f"{name} must be a whole number"
    if not low <= value <= high:
        return f"{name} out of range ({value} is not between {low} and {high:,})"
    return None


def problem(p: Paper, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """Why a parsed Paper may not be stored (over a cap, a bad id, category or number), or
    None. Text fields the parsers make themselves (dates from parse_date, links built from a
    checked id and DOI) are only type-checked; URLs taken from input are capped where they are
    read (paperfeed_jsonl, hf). A fault this misses still costs one record only: the importer
    rejects a record whose row cannot be made.

    On the import hot path (every snapshot record), so each check is a cheap test that
    passes for good records; only a record that fails one is looked at closely for the why.
    """
    pid = p.id
    if not (
        type(pid) is str and len(pid) in (9, 10) and pid[4] == "."
        and pid[:4].isdigit() and pid[5:].isdigit() and pid.isascii()
    ):  # fmt: skip  # (new-style arXiv ids, nearly every record, pass without a call)
        why = id_problem(pid)
        if why:
            return why
    title, abstract, version = p.title, p.abstract, p.version
    if not (
        type(title) is str and len(title) <= limits.max_title_chars
        and type(abstract) is str and len(abstract) <= limits.max_abstract_chars
        and (version is None or (type(version) is int and 1 <= version <= MAX_VERSION))
        and p.upvotes is None and p.num_comments is None
    ):  # fmt: skip
        why = (
            _text_problem("title", title, limits.max_title_chars, "max_title_chars")
            or _text_problem("abstract", abstract, limits.max_abstract_chars, "max_abstract_chars")
            or _count_problem("version", version, 1, MAX_VERSION)
            or _count_problem("upvotes", p.upvotes, 0, MAX_COUNT)
            or _count_problem("num_comments", p.num_comments, 0, MAX_COUNT)
        )
        if why:
            return f"{p.id}: {why}"
    cap = limits.max_field_chars
    try:
        fields_ok = (
            len(p.comments or "") <= cap and len(p.journal_ref or "") <= cap
            and len(p.doi or "") <= cap and len(p.source) <= cap
        )  # fmt: skip
    except TypeError:
        fields_ok = False
    if not fields_ok:
        for name in _FIELDS:
            why = _text_problem(name, getattr(p, name), cap, "max_field_chars")
            if why:
                return f"{p.id}: {why}"
    hf = p.hf
    if hf:  # Hugging Face's own fields (AI summary, keywords, links): capped like the rest
        for key, value in hf.items():
            size = len(value) if isinstance(value, str) else (
                sum(len(str(x)) for x in value) if isinstance(value, list) else 0)
            limit = limits.max_abstract_chars if key == "ai_summary" else cap
            if size > limit:
                return f"{p.id}: Hugging Face {key} is {size:,} characters, over the cap ({limit:,})"
    authors = p.authors
    if type(authors) is not list:
        return f"{p.id}: authors must be a list"
    if len(authors) > limits.max_authors:
        return f"{p.id}: {len(authors):,} authors is over max_authors ({limits.max_authors:,})"
    cap = limits.max_author_chars
    try:
        longest = max(map(len, authors), default=0)
    except TypeError:
        return f"{p.id}: author names must be text"
    if longest > cap or (authors and type(authors[0]) is not str):
        for a in authors:
            why = _text_problem("author name", a, cap, "max_author_chars")
            if why:
                return f"{p.id}: {why}"
    cats = p.categories
    if type(cats) is not list:
        return f"{p.id}: categories must be a list"
    if len(cats) > limits.max_categories:
        return f"{p.id}: {len(cats):,} categories is over max_categories ({limits.max_categories})"
    try:  # one match over all of them: arXiv's own codes, the usual case
        fast = not cats or _CATEGORY_CODES.fullmatch(" ".join(cats)) is not None
    except TypeError:
        fast = False
    if not fast:
        for c in cats:
            why = category_problem(c)
            if why:
                return f"{p.id}: {why}"
    if p.primary_category is not None and p.primary_category not in cats:
        return f"{p.id}: primary category is not among the categories"
    links = p.links
    if type(links) is not dict or len(links) > MAX_LINKS:
        return f"{p.id}: links must map up to {MAX_LINKS} names to URLs"
    return None


def link_problem(name: object, url: object, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """For links read from input (not built from a checked id): text, and of sane length."""
    if type(name) is not str or type(url) is not str or not 0 < len(name) <= 64:
        return "links must map names to URL strings"
    if len(url) > limits.max_field_chars:
        return f"link {name[:64]!r} of {len(url):,} characters is over max_field_chars"
    return None


def checked(p: Paper, where: str, limits: Limits = DEFAULT_LIMITS) -> Paper | Rejected:
    """The Paper itself when it may be stored, else a Rejected at ``where`` saying why."""
    why = problem(p, limits)
    return p if why is None else Rejected(where, why)
