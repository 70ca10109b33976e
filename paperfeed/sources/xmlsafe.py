"""Streaming XML that refuses entity tricks, with the line each record starts on.

Every XML input (arXiv API pages, OAI-PMH pages, files users import) goes through here, so
the defence against XXE and billion-laughs payloads lives in one place: defusedxml's parser
raises as soon as the document declares an entity or references an external one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from io import BytesIO
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, iterparse

from ..errors import PaperfeedError

__all__ = [
    "REFUSED",
    "UnsafeXMLError",
    "ParseError",
    "iter_elements",
    "local_name",
    "oversize_of",
    "OversizeTagError",
    "syntax_error",
]

REFUSED = "XML entity declarations are refused (possible XXE / billion-laughs payload)"


class UnsafeXMLError(PaperfeedError):
    """The document declares entities or references external ones; nothing of it is read."""


def local_name(tag: str) -> str:
    """``{namespace}name`` -> ``name``: some feeds put the same element in other namespaces."""
    return tag.rpartition("}")[2]


# An element costs memory beyond its text; counting each as this many bytes bounds how many
# one record may hold (a legitimate author list of thousands stays far below the cap).
_ELEMENT_COST = 64
# The attribute an oversized record carries instead of its children (see oversize_of).
_OVERSIZE = "{urn:paperfeed}oversize"


class _TagGuard:
    """Reads the document for iterparse and stops it when one tag (or a comment or CDATA
    section) runs on past ``max_bytes``: expat holds a whole start tag, attributes and all,
    before it reports any of it, so a huge attribute value could not be capped later. A
    legitimate record is far smaller than the cap, so only a hostile document trips this.
    """

    def __init__(self, source: BinaryIO, max_bytes: int) -> None:
        self._source = source
        self._max = max_bytes
        self._run = 0  # bytes since the last "<" that no ">" has closed yet
        self._inside = False

    def read(self, n: int = -1) -> bytes:
        chunk = self._source.read(n)
        lt, gt = chunk.rfind(b"<"), chunk.rfind(b">")
        if lt > gt:
            self._inside, self._run = True, len(chunk) - lt
        elif gt >= 0:
            self._inside, self._run = False, 0
        elif self._inside:
            self._run += len(chunk)
        if self._run > self._max:
            raise OversizeTagError(
                f"a tag, comment or CDATA section runs on past max_record_bytes "
                f"({self._max:,} bytes); the rest of the document is not read"
            )
        return chunk


class OversizeTagError(PaperfeedError):
    """One tag of the document is longer than the record cap; reading stops there."""


def oversize_of(elem: Element) -> int | None:
    """The bytes read of a record that went over iter_elements' ``max_bytes`` (its content was
    dropped as it was read), or None for a record within the cap."""
    v = elem.get(_OVERSIZE)
    return int(v) if v is not None else None


class _LineTracker:
    """A TreeBuilder stand-in that notes the line where each wanted element starts, and keeps
    memory bounded: a wanted element (a record) that grows past ``max_bytes`` of text and
    elements keeps none of it, and text outside records is capped the same way.

    iterparse reads 16 KiB at a time, so by the time it reports an element the parser is
    further on; only a callback made during parsing sees the element's own line.
    """

    def __init__(self, tags: Collection[str], max_bytes: int) -> None:
        self._builder = TreeBuilder()
        self._tags = tags
        self._max = max_bytes
        self.parser: DefusedXMLParser | None = None
        self.lines: dict[Element, int] = {}
        self._record: Element | None = None  # the wanted element being read
        self._inside: list[Element] = []  # its open descendants
        self._size = 0  # bytes of the record so far (or of loose text outside one)
        self._over = False

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        if self._record is None:
            self._size = 0  # loose text outside records is counted per run
            elem = self._builder.start(tag, attrs)
            if tag in self._tags:
                self._record, self._over = elem, False
                if self.parser is not None:
                    self.lines[elem] = self.parser.parser.CurrentLineNumber
            return elem
        self._size += _ELEMENT_COST + len(tag) + sum(len(k) + len(v) for k, v in attrs.items())
        if self._size > self._max:
            self._over = True
        elem = self._builder.start(tag, attrs)
        self._inside.append(elem)
        return elem

    def end(self, tag: str) -> Element:
        elem = self._builder.end(tag)
        if elem is self._record:
            if self._over:
                elem.clear()
                elem.set(_OVERSIZE, str(self._size))
            self._record = None
            self._size = 0
        elif self._record is not None:
            self._inside.pop()
            if self._over:  # drop it at once: an oversized record keeps nothing
                parent = self._inside[-1] if self._inside else self._record
                if len(parent) and parent[-1] is elem:
                    del parent[-1]
        else:
            self._size = 0
        return elem

    def data(self, text: str) -> None:
        self._size += len(text)
        if self._size > self._max:
            self._over = self._record is not None
            return  # beyond the cap: not kept (outside a record, it is only whitespace)
        self._builder.data(text)

    def close(self) -> Element:
        return self._builder.close()


def iter_elements(
    source: BinaryIO | bytes, tags: Collection[str], max_bytes: int = 4 << 20
) -> Iterator[tuple[Element, int]]:
    """Yield ``(element, start line)`` for each complete element whose qualified tag is in
    ``tags``, in document order, then drop it from the tree so memory stays flat.

    An element that grows past ``max_bytes`` (text, plus a fixed cost per child element) is
    yielded empty, marked for ``oversize_of``; text outside wanted elements is capped too.
    Raises UnsafeXMLError (message ``REFUSED``) on entity declarations or external
    references, and ParseError on malformed XML after yielding everything before the fault.
    """
    if isinstance(source, (bytes, bytearray)):
        source = BytesIO(source)
    source = _TagGuard(source, max_bytes)  # type: ignore[assignment]
    tracker = _LineTracker(frozenset(tags), max_bytes)
    # DOCTYPEs without entities are harmless and some servers send them, so only entities
    # and external references are forbidden (the defusedxml defaults).
    parser = DefusedXMLParser(target=tracker, forbid_dtd=False)
    tracker.parser = parser
    stack: list[Element] = []
    try:
        for event, elem in iterparse(source, events=("start", "end"), parser=parser):
            if event == "start":
                stack.append(elem)
                continue
            stack.pop()
            if elem.tag in tags:
                yield elem, tracker.lines.pop(elem, 0)
                if stack:
                    stack[-1].remove(elem)
    except DefusedXmlException as exc:
        raise UnsafeXMLError(REFUSED) from exc


def syntax_error(exc: ParseError) -> tuple[int | None, str]:
    """(line, readable message) for a ParseError, for Rejected records."""
    pos = getattr(exc, "position", None)
    line = pos[0] if pos else None
    return line, f"XML syntax error: {exc}"
