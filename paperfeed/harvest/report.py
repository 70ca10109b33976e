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

    def add(self, res: UpsertResult, rejected: list[Rejected]) -> None:
        self.counts.added += res.added
        self.counts.updated += res.updated
        self.counts.unchanged += res.unchanged
        for r in rejected:
            self.counts.reject(r.where, r.why)

    @property
    def changed(self) -> int:
        return self.counts.added + self.counts.updated

    def summary(self) -> str:
        what = self.name or self.source
        window = f"{self.window_from or ''}..{self.window_until or ''}"
        if window != ".." and not what.endswith(window):
            what += f" {window}"
        state = "complete" if self.complete else "incomplete"
        extra = " (resumed)" if self.resumed else ""
        pages = f"{self.pages} page{'s' if self.pages != 1 else ''}, " if self.pages else ""
        return f"{what}: {pages}{self.counts.summary()}; {state}{extra}"

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
        )
        return d
