"""What every storage backend offers. Callers depend on this interface only, so the
PostgreSQL backend can slot in beside SQLite without changes elsewhere.

Backend-independent logic (merging two records of one paper, the content hash) lives here
too, so both backends decide "added / updated / unchanged" identically.
"""

from __future__ import annotations

import hashlib
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Iterator

import orjson

from ..models import Paper

__all__ = ["Store", "UpsertResult", "content_hash", "merge_papers", "author_key", "StoredPaper"]


@dataclass(slots=True)
class UpsertResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(slots=True)
class StoredPaper:
    """A paper plus what the store knows about it beyond the source record."""

    pk: int
    paper: Paper
    sources: list[str]
    added_at: str
    rev: int
    listings: list[dict] = field(default_factory=list)  # HF days: day, upvotes, num_comments


def author_key(name: str) -> str:
    """Folded form of an author's name: accents stripped, case folded, spaces collapsed.
    "Balázs, C." and "Balazs, C." get the same key."""
    if name.isascii():
        return " ".join(name.casefold().split())
    s = unicodedata.normalize("NFKD", name)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return " ".join(s.casefold().split())


def content_hash(p: Paper, sources: list[str]) -> bytes:
    """Hash of everything stored for a paper except signals; equal hash = nothing to write."""
    return hashlib.blake2b(
        orjson.dumps(
            (
                p.title,
                p.abstract,
                p.authors,
                p.categories,
                p.primary_category,
                p.version,
                p.published,
                p.updated,
                p.doi,
                p.journal_ref,
                p.comments,
                p.links,
                sources,
            ),
            option=orjson.OPT_SORT_KEYS,
        ),
        digest_size=16,
    ).digest()


_FIELDS = ("title", "abstract", "doi", "journal_ref", "comments")


def merge_papers(old: Paper, new: Paper) -> Paper:
    """Combine a stored record with an incoming one for the same paper.

    The incoming record is authoritative when it names a version at least as new as the
    stored one: its non-empty fields win. A record without a version (Hugging Face, BEIR)
    or an older version only fills fields the stored record lacks, so a daily listing never
    overwrites arXiv's own metadata and an old snapshot never rolls a paper back.
    """
    authoritative = new.version is not None and (old.version is None or new.version >= old.version)
    win, lose = (new, old) if authoritative else (old, new)
    merged = Paper(
        id=old.id,
        title=win.title or lose.title,
        abstract=win.abstract or lose.abstract,
        authors=list(win.authors or lose.authors),
        categories=list(win.categories or lose.categories),
        primary_category=(win.primary_category if win.categories else lose.primary_category),
        version=max((v for v in (old.version, new.version) if v is not None), default=None),
        published=min((d for d in (old.published, new.published) if d), default=None),
        updated=max((d for d in (old.updated, new.updated) if d), default=None),
        doi=win.doi or lose.doi,
        journal_ref=win.journal_ref or lose.journal_ref,
        comments=win.comments or lose.comments,
        links={**lose.links, **win.links},
        source=new.source,
        # Signals travel with the record that carries them (the latest listing wins).
        upvotes=new.upvotes if new.listed_on else old.upvotes,
        num_comments=new.num_comments if new.listed_on else old.num_comments,
        listed_on=new.listed_on or old.listed_on,
    )
    return merged


class Store(ABC):
    """A paper database. One writer at a time; any number of readers."""

    # --- lifecycle -----------------------------------------------------------------------
    @abstractmethod
    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migration names applied now."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- papers --------------------------------------------------------------------------
    @abstractmethod
    def upsert_papers(self, papers: list[Paper]) -> UpsertResult:
        """Store a batch atomically: all of it lands or none of it does."""

    @abstractmethod
    def get_paper(self, paper_id: str) -> StoredPaper | None:
        """One paper by base id (callers normalise versioned ids first)."""

    @abstractmethod
    def get_papers_by_pk(self, pks: list[int]) -> dict[int, StoredPaper]: ...

    @abstractmethod
    def iter_changed(self, since_rev: int, batch: int = 1000) -> Iterator[list[StoredPaper]]:
        """Papers changed after ``since_rev``, in rev order, in batches (for indexers)."""

    @abstractmethod
    def max_rev(self) -> int: ...

    @abstractmethod
    def stats(self) -> dict:
        """{"papers": N, "by_category": {...}, "by_primary_archive": {...}, "by_source": {...}}."""

    @abstractmethod
    def integrity_ok(self) -> bool: ...

    # --- search: vectors (implemented in sqlite_vectors.py) --------------------------------

    # --- harvest: checkpoints (implemented in sqlite_harvest.py) ----------------------------

    # --- web: listings, trending, votes, submissions (implemented in sqlite_feed.py) --------
