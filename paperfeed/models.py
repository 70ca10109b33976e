"""Plain data passed between stages: sources -> store -> index -> rank -> deliver.

Dates are ISO 8601 strings in UTC (``2026-06-12T00:00:00Z``, or a bare ``YYYY-MM-DD``
where the source only gives a day). Strings sort correctly and need no conversion on
either SQLite or PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Paper", "Rejected", "ImportReport", "MAX_REPORTED_ERRORS", "User", "Subscription",
    "OutboxRow", "DIGEST_SECTIONS", "LibraryItem", "Follow", "SavedSearch", "ApiToken",
]


@dataclass(slots=True)
class Paper:
    """One paper as the store keeps it, keyed on its base id (no version suffix).

    ``id`` is the base arXiv id (``2606.00467`` or ``hep-th/9901001``); papers with no arXiv
    id get a namespaced id such as ``scifact:4983`` or ``doi:10.1000/x``.
    """

    id: str
    title: str
    abstract: str = ""
    authors: list[str] = field(default_factory=list)  # in the paper's order
    categories: list[str] = field(default_factory=list)  # primary first
    primary_category: str | None = None
    version: int | None = None  # latest version seen; None when the source does not say
    published: str | None = None  # first version's date
    updated: str | None = None  # latest version's date
    doi: str | None = None
    journal_ref: str | None = None
    comments: str | None = None
    links: dict[str, str] = field(default_factory=dict)  # abs, pdf, doi, code, project ...
    source: str = ""  # which importer produced this record: arxiv-snapshot, arxiv-api, ...
    # Hugging Face Daily Papers signal (kept for trending); None when not from HF.
    upvotes: int | None = None
    num_comments: int | None = None
    listed_on: str | None = None  # the day HF listed it (YYYY-MM-DD)
    # Hugging Face's own fields for the listing (sources.hf.HF_FIELDS: ai_summary, ai_keywords,
    # github_repo, github_stars, project_page, organization); kept with the listing, like upvotes.
    hf: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.primary_category is None and self.categories:
            self.primary_category = self.categories[0]
        elif self.primary_category and self.primary_category not in self.categories:
            self.categories.insert(0, self.primary_category)

    @property
    def abs_url(self) -> str | None:
        return self.links.get("abs")

    @property
    def pdf_url(self) -> str | None:
        return self.links.get("pdf")


@dataclass(slots=True)
class Rejected:
    """A record that could not be read: where it was and why."""

    where: str  # "file:line" (or "file" when the whole file is unreadable)
    why: str


MAX_REPORTED_ERRORS = 100


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[Rejected] = field(default_factory=list)  # capped; ``rejected`` is exact
    files_unreadable: int = 0  # files of which nothing could be read

    def reject(self, where: str, why: str) -> None:
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(Rejected(where, why))

    def file_error(self, where: str, why: str) -> None:
        """A whole file could not be read (missing, a directory, unreadable, unknown format):
        listed among the errors, but not a rejected record."""
        self.files_unreadable += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(Rejected(where, why))

    @property
    def read(self) -> int:
        return self.added + self.updated + self.unchanged

    def as_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "files_unreadable": self.files_unreadable,
            "errors": [{"where": e.where, "why": e.why} for e in self.errors],
        }

    def summary(self) -> str:
        line = (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.rejected} rejected"
        )
        if self.files_unreadable:
            n = self.files_unreadable
            line += f"; {n} file{'s' if n != 1 else ''} could not be read"
        return line


@dataclass(slots=True)
class User:
    """A reader: one identity per email address. A digest subscriber is a reader too."""

    id: int
    email: str
    name: str = ""
    created_at: str = ""
    last_login_at: str | None = None


# What goes into a digest; a reader picks any of them.
DIGEST_SECTIONS = ("trending", "follows", "searches", "foryou")


@dataclass(slots=True)
class Subscription:
    """A reader's digest subscription and preferences (one per reader)."""

    user_id: int
    email: str
    status: str = "pending"  # pending (not confirmed yet) | active | unsubscribed
    source: str = "web"  # where it started: web, api, cli, account
    frequency: str = "daily"  # daily | weekly
    weekday: int = 0  # weekly digests: 0 Monday .. 6 Sunday
    send_hour: int = 6  # not before this hour of the reader's day
    timezone: str = "UTC"
    max_papers: int = 10
    min_score: float | None = None  # None: no threshold
    sections: tuple[str, ...] = DIGEST_SECTIONS
    created_at: str = ""
    confirmed_at: str | None = None
    last_digest_on: str | None = None  # the reader's local date of the last digest queued
    last_digest_at: str | None = None  # UTC time of it
    seen_pk: int = 0  # papers with keys up to this were new in an earlier digest


@dataclass(slots=True)
class OutboxRow:
    """One digest mail to one reader, composed once and stored (sent as these bytes)."""

    id: int
    digest_id: int
    user_id: int
    email: str
    message_id: str
    message: bytes
    paper_pks: list[int]
    attempts: int = 0


@dataclass(slots=True)
class LibraryItem:
    """A paper a reader saved, with their note and tags."""

    pk: int
    paper_id: str
    title: str
    saved_at: str
    note: str = ""
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Follow:
    """An author (``key`` is the folded name, ``label`` as shown) or a category a reader follows."""

    kind: str  # author or category
    key: str
    label: str
    created_at: str = ""


@dataclass(slots=True)
class SavedSearch:
    id: int
    query: str
    created_at: str = ""


@dataclass(slots=True)
class ApiToken:
    """A personal API token or private-feed token (the store keeps only its hash)."""

    id: int
    kind: str  # api or feed
    label: str
    created_at: str
    last_used_at: str | None = None
