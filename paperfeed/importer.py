"""Stream files of papers into the store: parse, batch, write, report.

Each batch is one transaction, so a crash (even kill -9) leaves the database consistent
with every finished batch kept; re-running the import is idempotent and completes it.

A large file is parsed in a second process: parsing and preparing rows (hashes, JSON, folded
author names) is Python work, and in a thread it would hold the GIL the writer needs to feed
SQLite, so on two cores the two would mostly take turns. A process runs them side by side.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import sys
import threading
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from .errors import PaperfeedError, SourceError
from .models import ImportReport, Paper, Rejected
from .sources import DEFAULT_LIMITS, Limits, iter_file
from .store import Store
from .store.base import PaperRow, prepare_paper

__all__ = ["import_files", "import_records", "sample_path", "PARSER_PROCESS_MIN_BYTES"]

# Files at least this big get a parser process; below it, starting one costs more than it
# saves (a fork is ~10 ms, a spawn several hundred).
PARSER_PROCESS_MIN_BYTES = 4 << 20


def sample_path() -> Path:
    """The bundled sample of real papers (seed listing, HF daily, arXiv Atom/OAI samples)."""
    return Path(__file__).parent / "data" / "sample.jsonl.gz"


class _Writer:
    """Writes batches on a second thread while the caller parses the next ones.

    For record streams that are not files (tests, the BEIR evaluation): sqlite3 releases the
    GIL while SQLite works, so parsing and writing overlap a little. The queue holds at most
    two batches, which bounds memory.
    """

    def __init__(self, store: Store, report: ImportReport, bar: tqdm | None, lock: threading.Lock):
        self._store, self._report, self._bar, self._lock = store, report, bar, lock
        self._queue: queue.Queue[list[Paper] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paperfeed-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain after a failure; the caller re-raises it
            try:
                rows, rejected = _prepare_all(batch)
                with self._lock:  # the caller's thread reports rejections too
                    for where, why in rejected:
                        self._report.reject(where, why)
                _write(self._store, rows, self._report, self._bar)
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                self._error = e

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


def _prepare(p: Paper, rows: list, rejected: list[tuple[str, str]], where: str) -> None:
    """Append the row of ``p`` to ``rows``, or (where, why) to ``rejected`` when making it
    fails. The parsers' checks (sources/limits.py) make that a bug, not bad input; still, it
    costs only that record."""
    try:
        rows.append(prepare_paper(p))
    except Exception as exc:  # noqa: BLE001 - one record's fault must not end the import
        rejected.append((where, f"{p.id!r}: cannot be stored: {type(exc).__name__}: {exc}"))


def _prepare_all(batch: list[Paper]) -> tuple[list[PaperRow], list[tuple[str, str]]]:
    rows: list[PaperRow] = []
    rejected: list[tuple[str, str]] = []
    for p in batch:
        try:
            rows.append(prepare_paper(p))
        except Exception:  # noqa: BLE001 - the slow path names the record
            _prepare(p, rows, rejected, "import")
    return rows, rejected


def _write(store: Store, rows: list[PaperRow], report: ImportReport, bar: tqdm | None) -> None:
    res = store.upsert_rows(rows)
    # Counted only once the batch is committed, so the report never claims lost work.
    report.added += res.added
    report.updated += res.updated
    report.unchanged += res.unchanged
    if bar is not None:
        bar.update(len(rows))


def import_records(
    store: Store,
    records: Iterable[Paper | Rejected],
    report: ImportReport,
    batch_size: int = 5000,
    bar: tqdm | None = None,
) -> None:
    """Import a stream of records in this process (see import_files for whole files)."""
    lock = threading.Lock()
    writer = _Writer(store, report, bar, lock)
    buf: list[Paper] = []
    try:
        for rec in records:
            if isinstance(rec, Rejected):
                with lock:
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


# --- the parser process ------------------------------------------------------------------
# Messages, each one pickle: ("batch", rows, rejected) with rejected as (where, why) pairs,
# then ("done",) or ("error", message). Rows go as plain tuples: cheaper to pickle than
# named ones, and the writer rebuilds them for free.


def _parse_into(
    conn, parent_end, path: str, fmt: str | None, batch_size: int, limits: Limits
) -> None:
    """Runs in the parser process: read, parse and prepare, and send batches to the writer."""
    # A forked child inherits the writer's reading end too; while it stayed open here, the
    # pipe would never break when the writer dies, and this process would wait forever.
    parent_end.close()
    dumps = pickle.dumps
    try:
        rows: list[tuple] = []
        rejected: list[tuple[str, str]] = []
        try:
            for rec in iter_file(path, fmt, limits):
                if type(rec) is Rejected:
                    rejected.append((rec.where, rec.why))
                    continue
                try:
                    rows.append(tuple(prepare_paper(rec)))  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - the slow path names the record
                    _prepare(rec, [], rejected, path)  # type: ignore[arg-type]
                if len(rows) >= batch_size:
                    # Blocks while the writer is busy: at most one batch waits, which bounds
                    # memory, and the writer never waits long for the next.
                    conn.send_bytes(dumps(("batch", rows, rejected), protocol=5))
                    rows, rejected = [], []
        except Exception as e:  # noqa: BLE001 - reported by the writer, which goes on
            why = str(e) if isinstance(e, PaperfeedError) else f"{path}: {type(e).__name__}: {e}"
            conn.send_bytes(dumps(("batch", rows, rejected), protocol=5))
            conn.send_bytes(dumps(("error", why), protocol=5))
            return
        conn.send_bytes(dumps(("batch", rows, rejected), protocol=5))
        conn.send_bytes(dumps(("done",), protocol=5))
    except (KeyboardInterrupt, BrokenPipeError, ConnectionResetError):
        pass  # Ctrl-C reaches the whole process group; a dead writer closed the pipe
    finally:
        conn.close()


def _mp_context():
    # fork starts at once (nothing is imported again) but is unsafe once this process has
    # other threads (a lock one of them holds would stay held in the child forever).
    if "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class _ParserProcess:
    """A file parsed in a second process; ``write_into`` stores what it sends."""

    def __init__(self, path: str, fmt: str | None, batch_size: int, limits: Limits):
        # Started before the progress bar, whose monitor thread would rule out a fork.
        ctx = _mp_context()
        self.path = path
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_parse_into,
            args=(send, self._recv, path, fmt, batch_size, limits),
            name="paperfeed-parser",
            daemon=True,
        )
        self._proc.start()
        send.close()  # now the child holds the only writing end, so its death reads as EOF

    def write_into(self, store: Store, report: ImportReport, bar: tqdm | None) -> None:
        make = PaperRow._make
        try:
            while True:
                try:
                    msg = pickle.loads(self._recv.recv_bytes())
                except EOFError:
                    self._proc.join(5)
                    raise SourceError(
                        f"{self.path}: the parser process stopped unexpectedly "
                        f"(exit code {self._proc.exitcode})"
                    ) from None
                if msg[0] == "done":
                    return
                if msg[0] == "error":
                    raise SourceError(msg[1])
                _, rows, rejected = msg
                for where, why in rejected:
                    report.reject(where, why)
                if rows:
                    _write(store, [make(r) for r in rows], report, bar)
        finally:
            self.close()

    def close(self) -> None:
        self._recv.close()  # a child still sending gets a broken pipe and stops
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def import_files(
    store: Store,
    paths: Iterable[str | Path],
    fmt: str | None = None,
    batch_size: int = 5000,
    progress: bool = False,
    parser_process: bool | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ImportReport:
    """Import every file; a file that cannot be read is reported and the next one is tried.

    ``parser_process``: parse in a second process (True), in this one (False), or decide by
    the file's size (None: files of PARSER_PROCESS_MIN_BYTES and more). ``limits``: the
    caps a record must keep to (settings max_record_bytes ...; see sources/limits.py).
    """
    report = ImportReport()
    paths = list(paths)
    # One bulk import around all the files: the author index is rebuilt once, at the end.
    # (Parser processes forked inside it share its lock; each is joined before it ends.)
    with store.bulk_import(sum(_estimate_records(p) for p in paths)) as deferred:
        for path in paths:
            _import_file(
                store, str(path), fmt, batch_size, progress, parser_process, report, limits
            )
        if deferred and progress:
            # Seconds per million papers, after the last bar has filled: say why it waits.
            tqdm.write("Building the index of author names...", file=sys.stderr)
    return report


def _import_file(
    store: Store,
    name: str,
    fmt: str | None,
    batch_size: int,
    progress: bool,
    parser_process: bool | None,
    report: ImportReport,
    limits: Limits,
) -> None:
    size = _size(name)
    desc = f"{Path(name).name} ({size / 1e6:.1f} MB)" if size else Path(name).name
    try:
        records = iter_file(name, fmt, limits)  # checks the file and its format now
    except SourceError as e:
        report.file_error(name, _without_name(str(e), name))
        return
    use_process = size >= PARSER_PROCESS_MIN_BYTES if parser_process is None else parser_process
    parser = None
    if use_process:
        records.close()  # the parser process opens the file itself
        parser = _ParserProcess(name, fmt, batch_size, limits)
    try:
        with tqdm(
            desc=desc, unit=" papers", disable=not progress, mininterval=0.5, leave=True
        ) as bar:
            if parser is not None:
                parser.write_into(store, report, bar)
            else:
                import_records(store, records, report, batch_size, bar)
    except SourceError as e:
        report.file_error(name, _without_name(str(e), name))
    finally:
        if parser is not None:
            parser.close()


def _without_name(message: str, name: str) -> str:
    # SourceError messages name the file; the report lists it beside them already.
    return message.removeprefix(f"{name}: ").replace(f" of {name}:", ":")


def _estimate_records(path: str | Path) -> int:
    """Roughly how many records a file holds, from its size: a snapshot line is about 2 KB,
    and gzip shrinks them about five times. Only used to tell a bulk load from a small one."""
    size = _size(path)
    if not os.path.isfile(path):
        return 0  # reported when it is read; opening a pipe here would block
    try:
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
    except OSError:
        return 0
    return size * (5 if gz else 1) // 2000


def _size(path: str | Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
