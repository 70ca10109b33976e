"""Stream files of papers into the store: parse, batch, write, report.

Each batch is one transaction, so a crash (even kill -9) leaves the database consistent
with every finished batch kept; re-running the import is idempotent and completes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from .errors import SourceError
from .models import ImportReport, Paper, Rejected
from .sources import iter_file
from .store import Store

__all__ = ["import_files", "import_records", "sample_path"]


def sample_path() -> Path:
    """The bundled sample of real papers (seed listing, HF daily, arXiv Atom/OAI samples)."""
    return Path(__file__).parent / "data" / "sample.jsonl.gz"


def import_records(
    store: Store,
    records: Iterable[Paper | Rejected],
    report: ImportReport,
    batch_size: int = 5000,
    bar: tqdm | None = None,
) -> None:
    buf: list[Paper] = []

    def flush() -> None:
        res = store.upsert_papers(buf)
        report.added += res.added
        report.updated += res.updated
        report.unchanged += res.unchanged
        if bar is not None:
            bar.update(len(buf))
        buf.clear()

    for rec in records:
        if isinstance(rec, Rejected):
            report.reject(rec.where, rec.why)
            continue
        buf.append(rec)
        if len(buf) >= batch_size:
            flush()
    if buf:
        flush()


def import_files(
    store: Store,
    paths: Iterable[str | Path],
    fmt: str | None = None,
    batch_size: int = 5000,
    progress: bool = False,
) -> ImportReport:
    """Import every file; a file that cannot be read is reported and the next one is tried."""
    report = ImportReport()
    for path in paths:
        name = str(path)
        size = _size(path)
        desc = f"{Path(name).name} ({size / 1e6:.1f} MB)" if size else Path(name).name
        with tqdm(
            desc=desc, unit=" papers", disable=not progress, mininterval=0.5, leave=True
        ) as bar:
            try:
                import_records(store, iter_file(path, fmt), report, batch_size, bar)
            except SourceError as e:
                report.reject(name, str(e))
                report.files_unreadable += 1
    return report


def _size(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
