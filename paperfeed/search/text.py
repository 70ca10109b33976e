"""Text helpers shared by every search component, so the keyword index, the embedder and
the evaluation all see a paper the same way."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import date as _date

from ..models import Paper

__all__ = ["doc_text", "text_hash", "title_key", "archive_of", "category_terms", "day_number",
           "user_day_number"]


def doc_text(paper: Paper) -> str:
    """What gets embedded for a paper: ``title + ". " + abstract``.

    Every embedding (indexing, evaluation, benchmarks) goes through this one function: a
    vector made from a different text would not be comparable with the stored ones.
    """
    title = (paper.title or "").strip()
    abstract = (paper.abstract or "").strip()
    if not abstract:
        return title
    if not title:
        return abstract
    return f"{title}. {abstract}"


def text_hash(text: str) -> bytes:
    """Short hash of the embedded text: a paper whose text did not change keeps its vector
    even when other metadata (version, categories, links) bumps its revision."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()


_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def title_key(text: str) -> str:
    """Normalised form of a title for exact-title matching: accents folded, case folded,
    punctuation and spacing ignored. Empty when nothing word-like is left."""
    s = unicodedata.normalize("NFKD", text)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", s.casefold()).split())


def archive_of(category: str) -> str:
    """``cs.LG`` -> ``cs``; ``hep-th`` -> ``hep-th``."""
    return category.split(".", 1)[0]


def category_terms(categories: list[str]) -> list[str]:
    """Terms indexed for category filters: each category and its archive, so ``cat:cs``
    finds every cs.* paper and ``cat:cs.LG`` only cs.LG ones."""
    out: list[str] = []
    for c in categories:
        for t in (c, archive_of(c)):
            if t and t not in out:
                out.append(t)
    return out


_DAY = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def day_number(date: str | None, end: bool = False) -> int | None:
    """``2024-05-17...`` -> 20240517 (an int that sorts like the date). A bare year or month
    expands to its first day, or with ``end`` to its last, so ``until=2024`` includes all of
    2024. None when the text does not start with a date."""
    if not date:
        return None
    m = _DAY.match(date.strip())
    if not m:
        return None
    y, mo, d = m.group(1), m.group(2), m.group(3)
    if mo is None:
        mo, d = ("12", "31") if end else ("01", "01")
    elif d is None:
        d = "31" if end else "01"
    month, day = int(mo), int(d)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    return int(y) * 10000 + month * 100 + day


_USER_DAY = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")


def user_day_number(text: str, end: bool = False) -> int | None:
    """Like ``day_number`` for a date a person typed: the whole text must be YYYY-MM-DD
    (or YYYY-MM, YYYY) and name a real day, so 2026-02-30 and "2024-05-17junk" are refused
    where ``day_number`` would read a prefix."""
    s = text.strip()
    if not _USER_DAY.match(s):
        return None
    if len(s) == 10:
        try:
            _date.fromisoformat(s)
        except ValueError:
            return None
    return day_number(s, end=end)
