"""BEIR ``corpus.jsonl`` lines ``{"_id", "title", "text"}`` -> Papers.

Used to load retrieval benchmarks (SciFact ...) next to real feeds, so ids are namespaced
by the dataset folder ("scifact:4983") and can never collide with arXiv ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from ..models import Paper, Rejected
from .limits import DEFAULT_LIMITS, Limits, Overlong, overlong_why, problem
from .text import clean

__all__ = ["parse_beir", "beir_record", "namespace_for", "SOURCE"]

SOURCE = "beir"
_NOT_NS = re.compile(r"[^a-z0-9_.-]+")
_TITLE_FROM_TEXT = 100  # characters of text used as a title when a corpus has none


def namespace_for(path: str | Path) -> str:
    """The id namespace of a corpus file: its folder's name, lowercased and sanitized."""
    name = Path(path).absolute().parent.name.lower()
    return _NOT_NS.sub("-", name).strip("-.") or "beir"


def beir_record(d: object, namespace: str) -> Paper:
    if not isinstance(d, dict):
        raise ValueError("line is not a JSON object")
    doc_id = d.get("_id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)) or not str(doc_id).strip():
        raise ValueError("missing '_id'")
    doc_id = str(doc_id).strip()
    text = clean(d.get("text")) if isinstance(d.get("text"), str) else ""
    title = clean(d.get("title")) if isinstance(d.get("title"), str) else ""
    if not title:
        # Several BEIR corpora leave titles empty; the text's opening words stand in, cut at
        # a word boundary, rather than losing the document from the evaluation.
        if not text:
            raise ValueError(f"{namespace}:{doc_id}: missing title and text")
        title = (
            text
            if len(text) <= _TITLE_FROM_TEXT
            else text[:_TITLE_FROM_TEXT].rsplit(" ", 1)[0] + "…"
        )
    return Paper(id=f"{namespace}:{doc_id}", title=title, abstract=text or "", source=SOURCE)


def parse_beir(
    lines: Iterable[bytes | Overlong],
    where: str,
    namespace: str,
    limits: Limits = DEFAULT_LIMITS,
) -> Iterator[Paper | Rejected]:
    """Yield a Paper per line, or a Rejected at ``where:LINE``."""
    for lineno, line in enumerate(lines, 1):
        if type(line) is Overlong:
            yield Rejected(f"{where}:{lineno}", overlong_why(line, limits))
            continue
        if not line or line.isspace():
            continue
        try:
            d = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield Rejected(f"{where}:{lineno}", f"malformed JSON: {exc}")
            continue
        try:
            p = beir_record(d, namespace)
            why = problem(p, limits)
        except (ValueError, TypeError, AttributeError) as exc:
            why = str(exc)
        except Exception as exc:  # noqa: BLE001 - any fault of one record rejects only it
            why = f"unreadable record: {type(exc).__name__}: {exc}"
        if why is None:
            yield p
        else:
            yield Rejected(f"{where}:{lineno}", why)
