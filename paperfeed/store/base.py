"""What every storage backend offers. Callers depend on this interface only, so the
PostgreSQL backend can slot in beside SQLite without changes elsewhere.

Backend-independent logic (merging two records of one paper, the content hash) lives here
too, so both backends decide "added / updated / unchanged" identically.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import orjson

from ..errors import InputError
from ..models import ApiToken, Follow, LibraryItem, OutboxRow, Paper, SavedSearch, Subscription, User

__all__ = [
    "Store",
    "UpsertResult",
    "content_hash",
    "merge_papers",
    "author_key",
    "StoredPaper",
    "PaperRow",
    "prepare_paper",
    "dedupe_rows",
    "HarvestState",
    "SourceHealth",
    "FeedRow",
    "normalize_email",
    "is_listable",
]


@dataclass(slots=True)
class UpsertResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0  # stored papers marked withdrawn (a harvest's deleted records)


@dataclass(slots=True)
class StoredPaper:
    """A paper plus what the store knows about it beyond the source record."""

    pk: int
    paper: Paper
    sources: list[str]
    added_at: str
    rev: int
    listings: list[dict] = field(default_factory=list)  # HF days: day, upvotes, num_comments
    withdrawn: bool = False  # the source deleted it: kept, but left out of listings


@dataclass(slots=True)
class HarvestState:
    """Checkpoint of one resumable harvest (an OAI-PMH list, a day of HF Daily Papers)."""

    name: str
    params: dict = field(default_factory=dict)
    token: str | None = None  # where the next page starts; None at the start and when done
    window_from: str | None = None  # YYYY-MM-DD
    window_until: str | None = None
    pages: int = 0  # pages stored so far
    records: int = 0  # records stored so far (added, updated or unchanged)
    complete: bool = False  # True only once the server said there is no next page
    started_at: str | None = None
    updated_at: str | None = None  # set by the store on every save


@dataclass(slots=True)
class SourceHealth:
    """When one harvest source (``arxiv-oai:<set>``, ``hf-daily``, ``arxiv-api``) last
    succeeded and last failed: what `harvest status` and the site's footer show."""

    source: str
    last_success_at: str | None = None
    last_failure_at: str | None = None
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        """The latest attempt failed (a failure after the last success)."""
        return bool(self.last_failure_at) and (self.last_failure_at or "") >= (
            self.last_success_at or ""
        )


def author_key(name: str) -> str:
    """Folded form of an author's name: accents stripped, case folded, spaces collapsed.
    "Balázs, C." and "Balazs, C." get the same key. On the import hot path: most names are
    ASCII and already single-spaced by the parsers, so that case is one ``lower()``."""
    if name.isascii():
        key = name.lower()
        return key if "  " not in key and key == key.strip() else " ".join(key.split())
    return _fold(name)


@lru_cache(maxsize=1 << 16)
def _fold(name: str) -> str:
    # Non-ASCII names repeat across an author's papers; the cache spares the NFKD pass.
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


class PaperRow(NamedTuple):
    """A Paper flattened into the values a store writes, with its content hash and folded
    author names already computed.

    Making one is pure Python and needs no database, so the importer's parser process makes
    them while the store writes the batch before: the writer is left with little but SQL.
    The first fifteen fields are the ``papers`` columns in the order the stores insert them.
    """

    id: str
    version: int | None
    title: str
    abstract: str
    authors: str  # JSON array, in the paper's order
    categories: str  # space separated, primary first
    primary_category: str | None
    published: str | None
    updated: str | None
    doi: str | None
    journal_ref: str | None
    comments: str | None
    links: str  # JSON object
    source: str  # the importer; the ``sources`` column of a paper stored for the first time
    content_hash: bytes  # content_hash(paper, [source])
    author_names: tuple[str, ...]
    author_keys: tuple[str, ...]  # author_key() of each name
    upvotes: int | None
    num_comments: int | None
    listed_on: str | None
    hf: str  # JSON object: Hugging Face's own fields of the listing (Paper.hf)

    def to_paper(self) -> Paper:
        return Paper(
            id=self.id,
            title=self.title,
            abstract=self.abstract,
            authors=list(self.author_names),
            categories=self.categories.split(),
            primary_category=self.primary_category,
            version=self.version,
            published=self.published,
            updated=self.updated,
            doi=self.doi,
            journal_ref=self.journal_ref,
            comments=self.comments,
            links=orjson.loads(self.links),
            source=self.source,
            upvotes=self.upvotes,
            num_comments=self.num_comments,
            listed_on=self.listed_on,
            hf=orjson.loads(self.hf),
        )


def prepare_paper(p: Paper) -> PaperRow:
    """The PaperRow of a Paper (see PaperRow for why this is a step of its own)."""
    dumps = orjson.dumps
    names = tuple(p.authors)
    return PaperRow(
        p.id,
        p.version,
        p.title,
        p.abstract,
        dumps(names).decode(),
        " ".join(p.categories),
        p.primary_category,
        p.published,
        p.updated,
        p.doi,
        p.journal_ref,
        p.comments,
        dumps(p.links).decode(),
        p.source,
        content_hash(p, [p.source] if p.source else []),
        names,
        tuple(map(author_key, names)),
        p.upvotes,
        p.num_comments,
        p.listed_on,
        dumps(p.hf, option=orjson.OPT_SORT_KEYS).decode() if p.hf else "{}",
    )


def dedupe_rows(rows: list[PaperRow]) -> dict[str, PaperRow]:
    """One row per paper id, in first-seen order; two records of one paper in a batch (two
    versions in one file, a paper listed twice on a page) are merged as the store would."""
    batch: dict[str, PaperRow] = {}
    for r in rows:
        prev = batch.get(r.id)
        if prev is not None:
            r = prepare_paper(merge_papers(prev.to_paper(), r.to_paper()))
        batch[r.id] = r
    return batch


_FIELDS = ("title", "abstract", "doi", "journal_ref", "comments")


def merge_papers(old: Paper, new: Paper, prefer_new: bool | None = None) -> Paper:
    """Combine a stored record with an incoming one for the same paper.

    The incoming record is authoritative when it names a version at least as new as the
    stored one, or, having no version, carries a later update date: its non-empty fields win.
    Otherwise (an older version, an undated Hugging Face listing, BEIR) it only fills fields
    the stored record lacks, so a daily listing never overwrites arXiv's own metadata and an
    old snapshot never rolls a paper back.

    ``prefer_new`` overrides that choice when the caller knows better: an OAI-PMH record whose
    header datestamp is newer than the one stored is a correction (True) even with the same
    version and dates; one with an older datestamp is a stale copy (False).
    """
    if prefer_new is not None:
        authoritative = prefer_new
    elif new.version is not None:
        authoritative = old.version is None or new.version >= old.version
    else:
        # No version (OAI-PMH, HF, BEIR): a record dated after the stored one describes a
        # later version; an undated one (HF) only fills gaps.
        authoritative = bool(new.updated and old.updated and new.updated > old.updated)
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
        hf=new.hf if new.listed_on else old.hf,
    )
    return merged


def is_listable(p: Paper, withdrawn: bool = False) -> bool:
    """Whether a paper belongs in listings, trending, feeds and similar-paper lists: a record a
    reader can open and place, with a date, at least one author, and an arXiv id or a DOI, and
    not withdrawn by its source (``StoredPaper.withdrawn``). Benchmark documents
    (``scifact:4983``) and titles scraped from a listing page fail it. The SQL twin is
    ``sql_feed.LISTABLE``; keep the two in step."""
    return bool(not withdrawn and p.published and p.authors and (":" not in p.id or p.doi))


class Store(ABC):
    """A paper database. One writer at a time; any number of readers."""

    # --- lifecycle -----------------------------------------------------------------------
    @abstractmethod
    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migration names applied now."""

    @abstractmethod
    def close(self) -> None: ...

    def applied_migrations(self) -> list[str]:
        """The names of the migration steps this database has had, in name order."""
        raise NotImplementedError

    def harvest_lock(self) -> AbstractContextManager[bool]:
        """Hold the database's one harvester lock for the block: it gets True when this
        process holds it, False when another process does (`paperfeed run` then exits). The
        lock dies with its process, however that ends. A backend that cannot lock gets True."""
        return nullcontext(True)

    def digest_queue_lock(self) -> AbstractContextManager[bool]:
        """Like harvest_lock, for composing and queueing digests: two processes that both
        found a reader due would each queue a mail for them. The one that gets False sends
        only; the holder's mails reach its queue in committed batches."""
        return nullcontext(True)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- papers --------------------------------------------------------------------------
    def upsert_papers(self, papers: list[Paper]) -> UpsertResult:
        """Store a batch atomically: all of it lands or none of it does."""
        return self.upsert_rows([prepare_paper(p) for p in papers])

    @abstractmethod
    def upsert_rows(self, rows: list[PaperRow]) -> UpsertResult:
        """upsert_papers for papers already prepared (prepare_paper), as bulk imports send them."""

    def bulk_import(self, expected: int) -> AbstractContextManager[bool]:
        """Wrap a large import of about ``expected`` papers. A backend may then defer index
        upkeep to the end, where one sorted pass is far cheaper than millions of scattered
        inserts. Whatever happens, no data is missing at any point, and the indexes are whole
        again when the block ends (after a crash, when the store is next opened). The block
        gets True when indexes will be built as it ends (worth telling a waiting user)."""
        return nullcontext(False)

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

    # --- search: vectors (implemented in sql_vectors.py) --------------------------------
    # Vectors are float32 little-endian bytes, L2-normalised; ``model_id`` names the model,
    # backend and settings that made them (a different model_id is a different set).
    @abstractmethod
    def embedded_hashes(self, model_id: str, pks: list[int]) -> dict[int, bytes]:
        """pk -> hash of the text each stored vector was made from (papers with a vector)."""

    @abstractmethod
    def put_embeddings(
        self,
        model_id: str,
        dim: int,
        rows: list[tuple[int, int, bytes, bytes]],
        checkpoint: tuple[str, int] | None = None,
    ) -> None:
        """Store (pk, paper rev, text hash, vector) rows, replacing older vectors of the same
        papers, and optionally set a checkpoint, all in ONE transaction."""

    @abstractmethod
    def iter_embeddings(
        self, model_id: str, since_seq: int = 0, batch: int = 20000
    ) -> Iterator[list[tuple[int, int, bytes]]]:
        """(seq, pk, vector) rows written after ``since_seq``, in write order, in batches."""

    @abstractmethod
    def get_embeddings(self, model_id: str, pks: list[int]) -> dict[int, bytes]:
        """pk -> vector for the papers that have one."""

    @abstractmethod
    def embedding_stats(self) -> list[dict]:
        """One {"model_id", "dim", "vectors", "max_seq"} per model with stored vectors."""

    @abstractmethod
    def count_changed(self, since_rev: int) -> int:
        """How many papers changed after ``since_rev`` (progress totals for indexers)."""

    @abstractmethod
    def get_checkpoint(self, name: str) -> int:
        """A search indexing checkpoint (0 when never set)."""

    @abstractmethod
    def set_checkpoint(self, name: str, value: int) -> None: ...

    # --- search: hooks of a database that searches itself (pg_search.py) ---------------
    def keyword_index(self):
        """An object with the interface search/engine.py uses of search/keyword.py's
        KeywordIndex when the database indexes the papers' words itself, as it stores them
        (PostgreSQL); None when search keeps a tantivy index in a folder (SQLite)."""
        return None

    def search_writer_lock(self, wait: bool = False) -> AbstractContextManager[bool] | None:
        """A lock that serialises `paperfeed index` runs on this database (yields whether it
        was taken); None when the index folder's lock file does (SQLite)."""
        return None

    def pgvector_available(self) -> bool:
        """Whether the server offers the pgvector extension (only PostgreSQL can)."""
        return False

    # --- harvest: checkpoints (implemented in sql_harvest.py) ----------------------------
    @abstractmethod
    def get_harvest(self, name: str) -> HarvestState | None:
        """The checkpoint of the harvest called ``name``, or None if it never ran."""

    @abstractmethod
    def list_harvests(self) -> list[HarvestState]:
        """Every harvest checkpoint, by name."""

    @abstractmethod
    def save_harvest_page(
        self,
        state: HarvestState,
        papers: list[Paper],
        datestamps: dict[str, str] | None = None,
        deleted: list[tuple[str, str | None]] | None = None,
    ) -> UpsertResult:
        """Store one harvested page and the checkpoint that follows it in ONE transaction, so
        a crash at any moment leaves both or neither (resume refetches at most that page).

        ``datestamps`` (paper id -> OAI-PMH header datestamp): a record newer than the one
        stored wins even with the same version and dates (a correction), an older one only
        fills gaps, and the stored datestamp never moves back. ``deleted`` ((id, datestamp)
        of deleted records): stored papers are marked withdrawn unless the stored record is
        newer; a live record newer than the deletion brings a paper back. The result's
        ``withdrawn`` counts papers marked now."""

    @abstractmethod
    def record_harvest_outcome(self, source: str, error: str | None = None) -> None:
        """Note that a harvest of ``source`` (``arxiv-oai:<set>``, ``hf-daily``,
        ``arxiv-api``) succeeded now (``error`` None) or failed now, and why."""

    @abstractmethod
    def harvest_summary(self) -> list[SourceHealth]:
        """Per source: when it was last harvested successfully, when it last failed and why."""


    # --- web: listings, trending, votes, submissions (implemented in sql_feed.py) --------
    @abstractmethod
    def feed_entries(
        self,
        start_day: str,
        end_day: str,
        limit: int,
        offset: int = 0,
        order: str = "votes",
        exclude: list[int] | None = None,
    ) -> tuple[list[FeedRow], int]:
        """Listable papers listed on days ``start_day`` <= day < ``end_day`` (YYYY-MM-DD), one row each,
        and how many there are, leaving out the keys in ``exclude``. A paper's day: the day
        Hugging Face listed it if it was listed, else its published (first version) day; a
        paper submitted by id is also listed on the day it was submitted. ``order``: "votes"
        (most votes first) or "recent" (newest first)."""

    @abstractmethod
    def feed_day_bounds(self, day: str) -> tuple[str | None, str | None]:
        """(the last day with papers before ``day``, the first day with papers after it)."""

    @abstractmethod
    def feed_version(self) -> tuple:
        """A cheap value that changes when papers, votes or submissions change (for caches;
        imported upvote counts may change without it)."""

    @abstractmethod
    def feed_recent_days(self, before_day: str, n: int) -> list[str]:
        """The ``n`` newest days with papers before ``before_day``, newest first."""

    @abstractmethod
    def trending_candidates(self, start_day: str, end_day: str) -> list[FeedRow]:
        """Papers with at least one vote (own or imported) listed in [start_day, end_day)."""

    @abstractmethod
    def category_entries(
        self, category: str, limit: int, offset: int = 0
    ) -> tuple[list[FeedRow], int]:
        """Listable papers in ``category`` (``cs.LG``), or in every category of an archive
        (``cs``), newest published first, once each, and how many there are."""

    @abstractmethod
    def has_category(self, category: str) -> bool:
        """Whether any paper is in ``category``, or in the archive ``category`` (``cs``)."""

    @abstractmethod
    def feed_count(self, start_day: str, end_day: str) -> int:
        """How many papers are listed in [start_day, end_day) (what feed_entries counts)."""

    @abstractmethod
    def listable_pks(self, pks: list[int]) -> set[int]:
        """The keys among ``pks`` of listable papers (see ``is_listable``): for search and
        similar papers, which rank every stored paper, to leave the others out."""

    @abstractmethod
    def vote_counts(self, pks: list[int]) -> dict[int, int]:
        """Votes per paper: this site's own plus the imported Hugging Face upvotes."""

    @abstractmethod
    def add_vote(self, paper_id: str, user_id: int) -> bool:
        """Record a user's vote; False if they had already voted for the paper."""

    @abstractmethod
    def add_submission(
        self, paper_id: str, via: str, user_id: int | None = None
    ) -> tuple[str, bool]:
        """List a stored paper on today's page: (submitted_at, whether new). A paper already
        submitted keeps its first submission (and its submitter)."""

    @abstractmethod
    def list_paper_pks(
        self, limit: int, before_pk: int | None = None, category: str | None = None
    ) -> list[int]:
        """Paper keys, newest stored first, strictly below ``before_pk`` (a cursor)."""

    # --- readers: identity, sessions, tokens, rate limits (store/sql_readers.py) ---------
    @abstractmethod
    def get_or_create_user(self, email: str) -> tuple["User", bool]:
        """The reader with this address (case-insensitive), created when new: (user, new).
        Raises InputError when the address is not valid."""

    @abstractmethod
    def get_user(self, user_id: int) -> "User | None": ...

    @abstractmethod
    def find_user(self, email: str) -> "User | None": ...

    @abstractmethod
    def list_users(self) -> list["User"]: ...

    @abstractmethod
    def set_user_name(self, user_id: int, name: str) -> None: ...

    @abstractmethod
    def delete_user(self, user_id: int) -> None:
        """Delete the reader and every row about them; NotFoundError when unknown."""

    @abstractmethod
    def create_session(self, user_id: int, secret_value: str, days: float) -> None:
        """Store a session (by the hash of its cookie value) valid for ``days``."""

    @abstractmethod
    def session_user(self, secret_value: str) -> "User | None":
        """The reader of a live session, or None."""

    @abstractmethod
    def delete_session(self, secret_value: str) -> None: ...

    @abstractmethod
    def delete_sessions_of(self, user_id: int) -> None: ...

    @abstractmethod
    def use_token(self, nonce: str, purpose: str, expires_at: float) -> bool:
        """Mark a single-use token's nonce used; False when it already was."""

    @abstractmethod
    def token_used(self, nonce: str) -> bool: ...

    @abstractmethod
    def throttle_hit(self, key: str, limit: int, window_s: float) -> bool:
        """Count a hit on ``key``; False (nothing counted) when ``limit`` hits fell in the
        last ``window_s`` seconds."""

    @abstractmethod
    def mark_shown(self, user_id: int, pks: list[int], via: str = "digest") -> None:
        """Record that these papers reached the reader (they are never recommended again)."""

    @abstractmethod
    def shown_pks(self, user_id: int) -> set[int]: ...

    # --- readers: library, ratings, votes, follows, saved searches, tokens, models --------
    # (store/sql_library.py). Every method is scoped to one reader: another reader's
    # keys or ids match nothing.
    @abstractmethod
    def counter(self, name: str) -> int:
        """A change counter (``votes``: bumped on every vote given or taken back)."""

    @abstractmethod
    def save_paper(self, user_id: int, paper_id: str, note: str | None = None,
                   tags: list[str] | None = None) -> bool:  # fmt: skip
        """Save a paper to the library (note set, tags added); True when newly saved."""

    @abstractmethod
    def unsave_paper(self, user_id: int, paper_id: str) -> bool: ...

    @abstractmethod
    def set_note(self, user_id: int, paper_id: str, note: str) -> None: ...

    @abstractmethod
    def set_tags(self, user_id: int, paper_id: str, tags: list[str]) -> list[str]: ...

    @abstractmethod
    def library(self, user_id: int, tag: str | None = None) -> list[LibraryItem]: ...

    @abstractmethod
    def library_pks(self, user_id: int) -> dict[int, list[str]]:
        """pk -> tags of each saved paper."""

    @abstractmethod
    def list_tags(self, user_id: int) -> list[tuple[str, int]]: ...

    @abstractmethod
    def library_rev(self, user_id: int) -> int:
        """Bumped on every change to what trains the reader's models (saves, tags, ratings)."""

    @abstractmethod
    def rate_paper(self, user_id: int, paper_id: str, value: int) -> None:
        """+1 "more like this", -1 "not for me", 0 removes the rating."""

    @abstractmethod
    def ratings(self, user_id: int) -> dict[int, int]: ...

    @abstractmethod
    def toggle_vote(self, user_id: int, paper_id: str) -> bool:
        """Vote, or take the vote back; True when the reader now votes for the paper."""

    @abstractmethod
    def user_votes(self, user_id: int, pks: list[int] | None = None) -> set[int]: ...

    @abstractmethod
    def follow(self, user_id: int, kind: str, key: str, label: str) -> bool:
        """Follow an author (key: author_key of the name) or a category; True when new."""

    @abstractmethod
    def unfollow(self, user_id: int, kind: str, key: str) -> bool: ...

    @abstractmethod
    def list_follows(self, user_id: int) -> list[Follow]: ...

    @abstractmethod
    def add_saved_search(self, user_id: int, query: str) -> SavedSearch: ...

    @abstractmethod
    def delete_saved_search(self, user_id: int, search_id: int) -> bool: ...

    @abstractmethod
    def list_saved_searches(self, user_id: int) -> list[SavedSearch]: ...

    @abstractmethod
    def create_api_token(self, user_id: int, kind: str, value: str, label: str = "") -> ApiToken:
        """Store a personal token (``api``) or private-feed token (``feed``) by its hash."""

    @abstractmethod
    def api_token_user(self, kind: str, value: str) -> User | None: ...

    @abstractmethod
    def list_api_tokens(self, user_id: int, kind: str | None = None) -> list[ApiToken]: ...

    @abstractmethod
    def revoke_api_token(self, user_id: int, token_id: int) -> bool: ...

    @abstractmethod
    def revoke_api_tokens(self, user_id: int, kind: str) -> int: ...

    @abstractmethod
    def get_reader_models(self, user_id: int) -> list[tuple[str, str, int, bytes, list[int]]]:
        """Cached "For you" models: (interest, model_id, lib_rev, weights, positive pks)."""

    @abstractmethod
    def put_reader_models(
        self, user_id: int, models: list[tuple[str, str, int, bytes, list[int]]]
    ) -> None: ...

    @abstractmethod
    def window_pks(self, since: str, until: str | None = None) -> list[int]:
        """Papers published, listed or submitted in [since, until)."""

    @abstractmethod
    def papers_by_authors(self, keys: list[str], pks: list[int] | None = None) -> dict[int, list[str]]: ...

    @abstractmethod
    def papers_in_categories(self, categories: list[str], pks: list[int]) -> dict[int, list[str]]: ...

    @abstractmethod
    def author_entries(self, key: str, limit: int, offset: int = 0) -> tuple[list[FeedRow], int]:
        """Papers of the author with this folded name, newest first, and how many."""

    @abstractmethod
    def author_name(self, key: str) -> str | None: ...

    @abstractmethod
    def ids_by_doi(self, dois: list[str]) -> dict[str, str]:
        """lower-cased DOI -> paper id, for the DOIs stored."""

    @abstractmethod
    def export_user(self, user_id: int) -> dict:
        """Everything stored about the reader, as JSON values."""


    # --- digests: subscriptions, digest runs, the outbox (store/sql_digest.py) -----------
    @abstractmethod
    def subscribe(self, email: str, source: str = "web") -> tuple["User", str | None]:
        """Ask for a digest: (the reader, created when new; the subscription's status before:
        None, pending, active or unsubscribed). New and unsubscribed become pending."""

    @abstractmethod
    def get_subscription(self, user_id: int) -> "Subscription | None": ...

    @abstractmethod
    def list_subscriptions(self, status: str | None = "active") -> list["Subscription"]: ...

    @abstractmethod
    def confirm_subscription(self, user_id: int) -> bool:
        """pending -> active; False when it was not pending."""

    @abstractmethod
    def activate_subscription(self, user_id: int, source: str = "account") -> None:
        """Active at once (the reader is signed in: the address is proven)."""

    @abstractmethod
    def unsubscribe(self, user_id: int) -> bool:
        """-> unsubscribed, cancelling queued mail; False when already unsubscribed."""

    @abstractmethod
    def set_digest_prefs(self, user_id: int, **prefs) -> None: ...

    @abstractmethod
    def max_paper_pk(self) -> int: ...

    @abstractmethod
    def new_paper_pks(self, after_pk: int, limit: int) -> list[int]:
        """Keys of papers stored after ``after_pk``, newest first."""

    @abstractmethod
    def users_with_open_mail(self, claimed_after: float = 0.0) -> set[int]:
        """Readers with mail queued, or sending and claimed after ``claimed_after``."""

    @abstractmethod
    def create_digest(self, forced: bool, max_pk: int) -> int: ...

    @abstractmethod
    def queue_digest_mail(self, digest_id: int, seen_pk: int, rows: list[tuple]) -> int:
        """Store composed mails and move each reader's schedule on, in ONE transaction."""

    @abstractmethod
    def mark_digest_checked(self, user_ids: list[int], seen_pk: int) -> None: ...

    @abstractmethod
    def claim_outbox(self, worker: str, now: float | None = None) -> "OutboxRow | None":
        """Atomically move the next due queued mail to 'sending' (recording its papers as
        shown), or None. Two senders never get the same row."""

    @abstractmethod
    def outbox_sent(self, row_id: int) -> None: ...

    @abstractmethod
    def outbox_failed(self, row_id: int, error: str) -> None: ...

    @abstractmethod
    def outbox_retry(self, row_id: int, error: str, next_attempt_at: float, max_attempts: int) -> str: ...

    @abstractmethod
    def requeue_outbox(self, row_ids: list[int]) -> int: ...

    @abstractmethod
    def outbox_counts(self) -> list[dict]: ...

    @abstractmethod
    def outbox_in_flight(self) -> list[dict]: ...

    @abstractmethod
    def outbox_rows(self, user_id: int | None = None, limit: int = 100) -> list[dict]: ...


class FeedRow(NamedTuple):
    """One paper on a listing: its key, listing day, when it appeared (an ISO date or time:
    the listing day, the published time or the submission time) and its votes."""

    pk: int
    day: str
    at: str
    votes: int


_EMAIL = re.compile(
    r"^[^@\s\"<>(),;:\\\[\]]{1,64}"  # local part: no spaces, quotes or brackets
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,63}\Z"  # a domain with a dot
)


def normalize_email(email: str) -> str:
    """A subscriber's address trimmed and with its domain lower-cased; InputError when it does
    not look deliverable. Deliberately plain: the digest's confirmation mail is the real test."""
    s = (email or "").strip()
    if len(s) > 254 or not _EMAIL.match(s):
        raise InputError(f"not a valid email address: {s[:80]!r}")
    local, _, domain = s.rpartition("@")
    return f"{local}@{domain.lower()}"
