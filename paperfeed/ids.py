"""arXiv identifiers: recognise them in the many spellings sources use, split off versions."""

from __future__ import annotations

import re

__all__ = ["parse_arxiv_id", "split_version", "normalize_id", "is_arxiv_id"]

# New style (2007-04 onwards): YYMM.NNNN or YYMM.NNNNN; old style: archive(.SUBJ)/YYMMNNN.
_NEW = r"\d{4}\.\d{4,5}"
_OLD = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
_ARXIV = re.compile(rf"^(?P<base>{_NEW}|{_OLD})(?:v(?P<version>\d+))?$")
_PREFIXES = re.compile(
    r"^(?:https?://(?:export\.|www\.)?arxiv\.org/(?:abs|pdf|api)/|oai:arxiv\.org:|arxiv:)",
    re.IGNORECASE,
)


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Return (base id, version or None) for any common spelling of an arXiv id, else None.

    >>> parse_arxiv_id("http://arxiv.org/abs/2606.00467v2")
    ('2606.00467', 2)
    >>> parse_arxiv_id("oai:arXiv.org:hep-th/9901001")
    ('hep-th/9901001', None)
    """
    s = _PREFIXES.sub("", text.strip())
    if s.endswith(".pdf"):
        s = s[:-4]
    m = _ARXIV.match(s)
    if not m:
        return None
    v = m.group("version")
    return m.group("base"), int(v) if v else None


def is_arxiv_id(text: str) -> bool:
    return parse_arxiv_id(text) is not None


def split_version(text: str) -> tuple[str, int | None]:
    """Like parse_arxiv_id, but leaves non-arXiv ids as they are (version None)."""
    parsed = parse_arxiv_id(text)
    return parsed if parsed else (text.strip(), None)


def normalize_id(text: str) -> str:
    """The store's key for what a user typed: base arXiv id, or the text itself."""
    return split_version(text)[0]
