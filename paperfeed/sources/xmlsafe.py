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

__all__ = ["REFUSED", "UnsafeXMLError", "ParseError", "iter_elements", "local_name", "syntax_error"]

REFUSED = "XML entity declarations are refused (possible XXE / billion-laughs payload)"


class UnsafeXMLError(PaperfeedError):
    """The document declares entities or references external ones; nothing of it is read."""


def local_name(tag: str) -> str:
    """``{namespace}name`` -> ``name``: some feeds put the same element in other namespaces."""
    return tag.rpartition("}")[2]


class _LineTracker:
    """A TreeBuilder stand-in that notes the line where each wanted element starts.

    iterparse reads 16 KiB at a time, so by the time it reports an element the parser is
    further on; only a callback made during parsing sees the element's own line.
    """

    def __init__(self, tags: Collection[str]) -> None:
        self._builder = TreeBuilder()
        self._tags = tags
        self.parser: DefusedXMLParser | None = None
        self.lines: dict[Element, int] = {}
        self.data = self._builder.data  # hot: bound once, not per call

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        elem = self._builder.start(tag, attrs)
        if tag in self._tags and self.parser is not None:
            self.lines[elem] = self.parser.parser.CurrentLineNumber
        return elem

    def end(self, tag: str) -> Element:
        return self._builder.end(tag)

    def close(self) -> Element:
        return self._builder.close()


def iter_elements(source: BinaryIO | bytes, tags: Collection[str]) -> Iterator[tuple[Element, int]]:
    """Yield ``(element, start line)`` for each complete element whose qualified tag is in
    ``tags``, in document order, then drop it from the tree so memory stays flat.

    Raises UnsafeXMLError (message ``REFUSED``) on entity declarations or external
    references, and ParseError on malformed XML after yielding everything before the fault.
    """
    if isinstance(source, (bytes, bytearray)):
        source = BytesIO(source)
    tracker = _LineTracker(frozenset(tags))
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
