"""What one harvest did: counts for the CLI, the scheduler's log and ``--json``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import ImportReport, Rejected
from ..store import UpsertResult

__all__ = ["HarvestReport"]


@dataclass(slots=True)
class HarvestReport:
    source: str  # arxiv-oai, arxiv-api, hf-daily
    name: str = ""  # checkpoint name, when the harvest keeps one
    window_from: str | None = None
    window_until: str | None = None
    pages: int = 0  # fetched and stored by this run
    complete: bool = False
    resumed: bool = False  # went on from a checkpoint left by an earlier run
    restarted: bool = False  # the server forgot our resumptionToken; the window began again
    counts: ImportReport = field(default_factory=ImportReport)
    missing: list[str] = field(default_factory=list)  # ids asked for that the source lacks
    deleted: int = 0  # records the source marked deleted (OAI-PMH status="deleted")
    withdrawn: int = 0  # ... of which stored papers were marked withdrawn now
    # Things a person should know although the harvest went on (said once each, in plain words).
    warnings: list[str] = field(default_factory=list)

    def add(self, res: UpsertResult, rejected: list[Rejected], deleted: int = 0) -> None:
        self.counts.added += res.added
        self.counts.updated += res.updated
        self.counts.unchanged += res.unchanged
        self.deleted += deleted
        self.withdrawn += res.withdrawn
        for r in rejected:
            self.counts.reject(r.where, r.why)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    @property
    def changed(self) -> int:
        """Papers whose stored record changed (withdrawn ones too: listings and caches move)."""
        return self.counts.added + self.counts.updated + self.withdrawn

    def summary(self) -> str:
        what = self.name or self.source
        window = f"{self.window_from or ''}..{self.window_until or ''}"
        if window != ".." and not what.endswith(window):
            what += f" {window}"
        state = "complete" if self.complete else "incomplete"
        extra = " (resumed)" if self.resumed else ""
        pages = f"{self.pages} page{'s' if self.pages != 1 else ''}, " if self.pages else ""
        deleted = ""
        if self.deleted:
            deleted = (
                f", {self.deleted} deleted record{'s' if self.deleted != 1 else ''} "
                f"({self.withdrawn} stored paper{'s' if self.withdrawn != 1 else ''} withdrawn)"
            )
        return f"{what}: {pages}{self.counts.summary()}{deleted}; {state}{extra}"

    def as_dict(self) -> dict:
        d = self.counts.as_dict()
        d.update(
            source=self.source,
            name=self.name,
            window_from=self.window_from,
            window_until=self.window_until,
            pages=self.pages,
            complete=self.complete,
            resumed=self.resumed,
            restarted=self.restarted,
            missing=self.missing,
            deleted=self.deleted,
            withdrawn=self.withdrawn,
            warnings=self.warnings,
        )
        return d
