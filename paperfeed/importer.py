"""Stream files of papers into the store: parse, batch, write, report.

Each batch is one transaction, so a crash (even kill -9) leaves the database consistent
with every finished batch kept; re-running the import is idempotent and completes it.
"""

from __future__ import annotations

import os
import queue
import threading
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


class _Writer:
    """Writes batches on a second thread while the caller parses the next ones.

    sqlite3 releases the GIL while SQLite works, so on two cores parsing (Python) and
    writing (mostly C) overlap. The queue holds at most two batches, which bounds memory.
    """

    def __init__(self, store: Store, report: ImportReport, bar: tqdm | None):
        self._store, self._report, self._bar = store, report, bar
        self._queue: queue.Queue[list[Paper] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paperfeed-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain after a failure; the caller re-raises it
            try:
                res = self._store.upsert_papers(batch)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                self._error = e
                continue
            self._report.added += res.added
            self._report.updated += res.updated
            self._report.unchanged += res.unchanged
            if self._bar is not None:
                self._bar.update(len(batch))

    def put(self, batch: list[Paper]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(batch)

    def close(self) -> None:
        """Wait for every queued batch to be written (each batch is its own transaction)."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def import_records(
    store: Store,
    records: Iterable[Paper | Rejected],
    report: ImportReport,
    batch_size: int = 5000,
    bar: tqdm | None = None,
) -> None:
    writer = _Writer(store, report, bar)
    buf: list[Paper] = []
    try:
        for rec in records:
            if isinstance(rec, Rejected):
                report.reject(rec.where, rec.why)
                continue
            buf.append(rec)
            if len(buf) >= batch_size:
                writer.put(buf)
                buf = []
        if buf:
            writer.put(buf)
    finally:
        # Also on Ctrl-C: batches already handed over finish, so the counts stay true.
        writer.close()


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
