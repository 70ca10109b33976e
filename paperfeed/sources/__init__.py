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
from typing import Any, BinaryIO

import orjson

from ..errors import SourceError
from ..models import Paper, Rejected
from .atom import parse_atom
from .beir import namespace_for, parse_beir
from .hf import parse_hf
from .limits import DEFAULT_LIMITS, Limits, bounded_lines
from .oai import parse_oai
from .paperfeed_jsonl import parse_paperfeed
from .snapshot import parse_snapshot

__all__ = ["FORMATS", "Limits", "DEFAULT_LIMITS", "detect_format", "iter_file", "SourceError"]

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
# (stream, where, path, limits); line formats get bounded_lines over the stream.
_Parser = Callable[[Any, str, Path, Limits], Iterator["Paper | Rejected"]]
_PARSERS: dict[str, _Parser] = {
    "arxiv-snapshot": lambda f, where, path, lim: parse_snapshot(f, where, lim),
    "arxiv-atom": lambda f, where, path, lim: parse_atom(f, where, limits=lim),
    "arxiv-oai": lambda f, where, path, lim: parse_oai(f, where, limits=lim),
    "hf-daily": lambda f, where, path, lim: parse_hf(f, where, lim),
    "beir": lambda f, where, path, lim: parse_beir(f, where, namespace_for(path), lim),
    "paperfeed": lambda f, where, path, lim: parse_paperfeed(f, where, lim),
}


def _check_file(path: Path, where: str) -> None:
    if not path.exists():
        raise SourceError(f"{where}: no such file")
    if path.is_dir():
        raise SourceError(f"{where}: is a directory, not a file")
    if not path.is_file():
        # A pipe would be read twice (sniffed, then opened again) and a device may never end.
        raise SourceError(f"{where}: not a regular file (a pipe or device); save it to a file")


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
            if not complete and b"\n" not in text and b'"submitter":' in text[:4096]:
                # One snapshot line longer than the sniffed bytes (thousands of authors, or
                # a hostile one): its opening keys still say what it is.
                return "arxiv-snapshot", ""
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

    A read returns what was decoded before the damage, and only the next one raises:
    EOFError when the file is cut short, zlib.error naming the byte where it is corrupt.
    zlib drops the output of a call that fails, so the state is copied before each call and,
    on a failure, the same input is fed again in ever smaller pieces up to the bad byte.
    Output per read is capped (max_length), so a gzip bomb never inflates more than one
    buffer at a time. Multi-member files and trailing zero padding are read like gzip(1).
    """

    _CHUNK = 64 * 1024  # compressed bytes read from the file at a time

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = open(path, "rb")
        self._inflater: zlib._Decompress | None = None  # None between members
        self._in = b""  # compressed input not yet fed to the inflater
        self._offset = 0  # file offset of self._in[0]
        self._salvaged = b""  # decoded before a fault, still to hand out
        self._fault: Exception | None = None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()
        super().close()

    def _feed(self, limit: int) -> bytes:
        """Decompress up to ``limit`` bytes from self._in; may return b"" (header bytes)."""
        if self._inflater is None:
            if not self._in.strip(b"\0"):
                self._offset += len(self._in)  # zero padding after the last member
                self._in = b""
                return b""
            self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        z = self._inflater
        saved = z.copy()
        try:
            out = z.decompress(self._in, limit)
        except zlib.error as exc:
            self._salvage(saved, exc)
            return b""
        self._advance(z)
        return out

    def _advance(self, z: zlib._Decompress) -> None:
        if z.eof:  # end of a member; what follows may be the next one
            rest = z.unused_data
            self._inflater = None
        else:
            rest = z.unconsumed_tail
        self._offset += len(self._in) - len(rest)
        self._in = rest

    def _salvage(self, z: zlib._Decompress, exc: zlib.error) -> None:
        """Feed the input that failed again a piece at a time, keeping the output of every
        piece before the bad one, and note where decoding broke."""
        parts, data, pos, step = [], self._in, 0, 1024
        while pos < len(data) and step:
            saved = z.copy()
            try:
                parts.append(z.decompress(data[pos : pos + step]))
                if z.eof:
                    break  # the fault lies past this member's end (e.g. its trailer)
                pos += step
            except zlib.error as e:
                z, exc, step = saved, e, step // 4  # retry that piece in smaller ones
        self._salvaged = b"".join(parts)
        self._fault = zlib.error(f"broken at byte {self._offset + pos:,}: {exc}")
        self._in = b""

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            if self._salvaged:
                out, self._salvaged = self._salvaged[: len(b)], self._salvaged[len(b) :]
                break
            if self._fault is not None:
                raise self._fault
            if not self._in:
                self._in = self._file.read(self._CHUNK)
                if not self._in:
                    z = self._inflater
                    if z is None:
                        return 0
                    out = z.decompress(b"", len(b))  # output zlib may still hold
                    if z.eof:
                        self._inflater = None
                    if out:
                        break
                    if self._inflater is not None:
                        raise EOFError(f"file cut off at byte {self._offset:,}")
                    continue
            out = self._feed(len(b))
            if out:
                break
        n = len(out)
        b[:n] = out
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


def _read(path: Path, where: str, fmt: str, limits: Limits) -> Iterator[Paper | Rejected]:
    lines = fmt in _LINE_FORMATS
    try:
        with _open(path, lines=lines) as stream:
            src = bounded_lines(stream, limits.max_record_bytes) if lines else stream
            yield from _PARSERS[fmt](src, where, path, limits)
    except EOFError as exc:
        yield Rejected(where, f"truncated gzip: {exc}; the records before the cut were read")
    except zlib.error as exc:
        yield Rejected(where, f"corrupt gzip: {exc}; the records before the damage were read")
    except OSError as exc:
        yield Rejected(where, f"read error: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - a parser's bug must not end the whole import
        # Parsers reject bad records one by one; this is the last guard, for a fault that
        # stops the reader itself. What was read before it stands; the next file is read.
        yield Rejected(where, f"reading stopped: {type(exc).__name__}: {exc}")


def iter_file(
    path: str | Path, fmt: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> Iterator[Paper | Rejected]:
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
    return _read(p, where, fmt or detected, limits)  # type: ignore[arg-type]
