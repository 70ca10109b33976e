"""Read paper metadata files: tell their format, open them (gzipped or not), parse them.

``iter_file`` is the one entry point the importer needs. It raises ``SourceError`` only
when nothing of a file can be read (missing, a directory, unknown or wrong format); every
problem inside a readable file comes out as a ``Rejected`` among the Papers, and reading
goes on with the next record. The per-format modules are parse-only: no network, no SQL.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from ..errors import SourceError
from ..models import Paper, Rejected
from .atom import parse_atom
from .beir import namespace_for, parse_beir
from .hf import parse_hf
from .oai import parse_oai
from .paperfeed_jsonl import parse_paperfeed
from .snapshot import parse_snapshot

__all__ = ["FORMATS", "detect_format", "iter_file", "SourceError"]

FORMATS: tuple[str, ...] = (
    "arxiv-snapshot",
    "arxiv-atom",
    "arxiv-oai",
    "hf-daily",
    "beir",
    "paperfeed",
)

_GZIP_MAGIC = b"\x1f\x8b"
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 20  # JSON lines tried before giving up (a few bad leading lines are fine)
_READ_BUFFER = 1 << 20  # big reads: the snapshot is gigabytes of short lines

_XML_NAME = re.compile(rb"[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?")
_LINE_FORMATS = frozenset({"arxiv-snapshot", "beir", "paperfeed"})
_Parser = Callable[[BinaryIO, str, Path], Iterator["Paper | Rejected"]]
_PARSERS: dict[str, _Parser] = {
    "arxiv-snapshot": lambda f, where, path: parse_snapshot(f, where),
    "arxiv-atom": lambda f, where, path: parse_atom(f, where),
    "arxiv-oai": lambda f, where, path: parse_oai(f, where),
    "hf-daily": lambda f, where, path: parse_hf(f, where),
    "beir": lambda f, where, path: parse_beir(f, where, namespace_for(path)),
    "paperfeed": lambda f, where, path: parse_paperfeed(f, where),
}


def _check_file(path: Path, where: str) -> None:
    if not path.exists():
        raise SourceError(f"{where}: no such file")
    if path.is_dir():
        raise SourceError(f"{where}: is a directory, not a file")


def _head(path: Path, where: str) -> bytes:
    """The first bytes of the content, un-gzipped when the file starts with the gzip magic
    (whatever its name). A truncated gzip still gives what it has."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_SNIFF_BYTES)
    except OSError as exc:
        raise SourceError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(raw, _SNIFF_BYTES)
    except zlib.error as exc:
        raise SourceError(f"{where}: starts like gzip but cannot be decompressed ({exc})") from None


def _xml_root(text: bytes) -> str | None:
    """Local name of the root element, skipping the XML declaration, comments, PIs and a
    DOCTYPE (whose internal subset may itself contain '<' and '>')."""
    i = 0
    while True:
        i = text.find(b"<", i)
        if i < 0:
            return None
        if text.startswith(b"<?", i):
            end, step = text.find(b"?>", i), 2
        elif text.startswith(b"<!--", i):
            end, step = text.find(b"-->", i), 3
        elif text.startswith(b"<!", i):
            end, bracket = text.find(b">", i), text.find(b"[", i)
            if bracket >= 0 and (end < 0 or bracket < end):
                subset_end = text.find(b"]", bracket)
                end = text.find(b">", subset_end) if subset_end >= 0 else -1
            step = 1
        else:
            m = _XML_NAME.match(text, i + 1)
            return m.group().decode("ascii").rpartition(":")[2] if m else None
        if end < 0:
            return None  # an unclosed prolog construct within the sniffed bytes
        i = end + step


def _json_kind(obj: object) -> tuple[str | None, str]:
    if not isinstance(obj, dict):
        return None, "JSON lines that are not objects"
    if "paper" in obj:
        return "hf-daily", ""
    if "_id" in obj:
        if "title" in obj:
            return "beir", ""
        return None, "BEIR-style lines without 'title' (a queries file, not a corpus)"
    if "versions" in obj or "authors_parsed" in obj or "update_date" in obj:
        return "arxiv-snapshot", ""
    if "id" in obj and "title" in obj:
        return "paperfeed", ""
    keys = ", ".join(sorted(obj)[:8])
    return None, f"JSON objects with keys ({keys}) that match no known format"


def _sniff(head: bytes, complete: bool) -> tuple[str | None, str]:
    """(format, "") or (None, why not)."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        return None, "the file is empty"
    first = text[:1]
    if first == b"<":
        root = _xml_root(text)
        if root == "feed":
            return "arxiv-atom", ""
        if root == "OAI-PMH":
            return "arxiv-oai", ""
        return (
            None,
            f"XML whose root is <{root}>, not an Atom <feed> or <OAI-PMH>"
            if root
            else "XML without a root element in its first bytes",
        )
    if first == b"[":
        return "hf-daily", ""
    if first == b"{":
        lines = text.split(b"\n")
        if not complete:
            lines = lines[:-1] or lines  # the last one may be cut by the sniff limit
        why = "no JSON object on its first lines"
        for line in lines[:_SNIFF_LINES]:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            fmt, why = _json_kind(obj)
            if fmt:
                return fmt, ""
            break
        try:  # one object spread over many lines (a pretty-printed single HF item)
            return _json_kind(orjson.loads(text))
        except orjson.JSONDecodeError:
            if b'"paper"' in text:
                return "hf-daily", ""
        return None, why
    return None, f"it starts with {text[:16]!r}, which is neither XML nor JSON"


def detect_format(path: str | Path) -> str:
    """Name the format of a file (one of FORMATS) from its first bytes.

    Raises SourceError when the file is missing, a directory, or of no known format.
    """
    where, p = str(path), Path(path)
    _check_file(p, where)
    head = _head(p, where)
    fmt, why = _sniff(head, complete=len(head) < _SNIFF_BYTES)
    if fmt is None:
        raise SourceError(f"cannot tell the format of {where}: {why}; use --format")
    return fmt


class _Gunzip(io.RawIOBase):
    """Incremental gunzip whose reads hand out every byte decompressed before a fault.

    GzipFile under a large buffer loses the last buffer-full when the file is cut short,
    so records that were intact before the cut would vanish; here a read returns what it
    has and only the next one raises EOFError (truncated) or zlib.error (corrupt).
    Multi-member files and trailing zero padding are read like gzip(1) does.
    """

    _CHUNK = 256 * 1024

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "rb")
        self._inflater: zlib._Decompress | None = None  # None between members
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()
        super().close()

    def _inflate(self, data: bytes) -> bytes:
        parts = []
        while data:
            if self._inflater is None:
                if not data.strip(b"\0"):
                    break  # zero padding after the last member
                self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            parts.append(self._inflater.decompress(data))
            if not self._inflater.eof:
                break
            data = self._inflater.unused_data  # the next member, if any
            self._inflater = None
        return b"".join(parts)

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._pos >= len(self._buf):
            chunk = self._file.read(self._CHUNK)
            if not chunk:
                if self._inflater is not None:
                    raise EOFError("the file ends in the middle of the compressed data")
                return 0
            self._buf, self._pos = self._inflate(chunk), 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = memoryview(self._buf)[self._pos : self._pos + n]
        self._pos += n
        return n


def _open(path: Path, lines: bool) -> BinaryIO:
    """The file's content, un-gzipped when it starts with the gzip magic. ``lines``: the
    caller iterates lines, so buffer; XML and HF readers do their own sized reads."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == _GZIP_MAGIC:
        raw = _Gunzip(path)
        return io.BufferedReader(raw, _READ_BUFFER) if lines else raw  # type: ignore[return-value]
    return open(path, "rb", buffering=_READ_BUFFER)


def _read(path: Path, where: str, fmt: str) -> Iterator[Paper | Rejected]:
    try:
        with _open(path, lines=fmt in _LINE_FORMATS) as stream:
            yield from _PARSERS[fmt](stream, where, path)
    except EOFError as exc:
        yield Rejected(where, f"truncated gzip: {exc}; the records before the cut were read")
    except zlib.error as exc:
        yield Rejected(where, f"corrupt gzip: {exc}; the records before the damage were read")
    except OSError as exc:
        yield Rejected(where, f"read error: {exc.strerror or exc}")


def iter_file(path: str | Path, fmt: str | None = None) -> Iterator[Paper | Rejected]:
    """Papers and Rejected records of one file, in file order.

    The format is detected unless ``fmt`` (one of FORMATS) forces it; a forced format that
    contradicts what the file plainly is, is an error rather than a flood of rejections.
    Checks run now, so SourceError is raised by this call, before any record is read.
    """
    where, p = str(path), Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"{where}: unknown format {fmt!r}; formats are: {', '.join(FORMATS)}")
    _check_file(p, where)
    try:
        detected: str | None = detect_format(p)
    except SourceError:
        if fmt is None:
            raise
        detected = None  # unrecognisable, but the user says what it is: trust them
    if fmt is not None and detected is not None and detected != fmt:
        raise SourceError(f"{where}: format {fmt!r} was forced, but the file is {detected!r}")
    return _read(p, where, fmt or detected)  # type: ignore[arg-type]
