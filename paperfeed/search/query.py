"""The query language people know from arXiv, parsed into plain clauses.

Supported: bare words, ``"exact phrases"``, field prefixes ``ti:`` ``abs:`` ``au:`` ``cat:``
``id:`` ``all:`` (on a word or a phrase), ``-excluded`` / ``+required``, and the operators
``AND``, ``OR``, ``NOT`` / ``ANDNOT`` (upper case, as on arXiv), with Lucene's classic
meaning: words are optional and rank by BM25, ``a AND b`` makes both required, ``NOT a``
excludes. Parentheses are ignored (no grouping).

The parser never fails: an unbalanced quote runs to the end of the text, a lone operator is
dropped, an unknown ``prefix:`` is an ordinary word. The result is turned into a search
engine query programmatically (keyword.py); user text never reaches a query parser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Clause", "ParsedQuery", "parse_query", "FIELDS", "MAX_QUERY_CHARS", "MAX_CLAUSES"]

# Field prefixes and the canonical field they search.
FIELDS = {
    "all": "all",
    "ti": "ti",
    "title": "ti",
    "abs": "abs",
    "abstract": "abs",
    "au": "au",
    "author": "au",
    "cat": "cat",
    "id": "id",
}
# Text beyond this is ignored: no ranking benefits from 10 kB of query, and it bounds the work.
MAX_QUERY_CHARS = 2000
MAX_CLAUSES = 64

SHOULD, MUST, MUST_NOT = "should", "must", "must_not"
_OPERATORS = {"AND", "OR", "NOT", "ANDNOT"}
_SPACE = set(" \t\r\n\f\v()[]{}")


@dataclass(slots=True)
class Clause:
    field: str  # one of FIELDS' values
    text: str  # a word or a phrase, as typed (analysis happens in the index)
    phrase: bool = False
    occur: str = SHOULD


@dataclass(slots=True)
class ParsedQuery:
    raw: str
    clauses: list[Clause] = field(default_factory=list)

    @property
    def positive(self) -> list[Clause]:
        return [c for c in self.clauses if c.occur != MUST_NOT]

    @property
    def free_text(self) -> str:
        """The words to embed for semantic search: positive title/abstract/any-field text."""
        return " ".join(c.text for c in self.positive if c.field in ("all", "ti", "abs")).strip()

    @property
    def is_plain(self) -> bool:
        """True when the query is only free words and phrases (no fields, no operators)."""
        return all(c.field == "all" and c.occur == SHOULD for c in self.clauses)


def _tokens(text: str) -> list[tuple[str, str, str, bool]]:
    """Split into (sign, field, text, quoted). ``sign`` is '', '-' or '+'."""
    out = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in _SPACE:
            i += 1
            continue
        sign = ""
        if text[i] in "-+" and i + 1 < n and text[i + 1] not in _SPACE:
            sign = text[i]
            i += 1
        fld = ""
        j = i
        while j < n and (text[j].isalpha()) and j - i < 10:
            j += 1
        if j < n and text[j] == ":" and text[i:j].lower() in FIELDS and j + 1 < n:
            if text[j + 1] not in _SPACE:
                fld = FIELDS[text[i:j].lower()]
                i = j + 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                end = n  # unbalanced quote: the phrase runs to the end
            out.append((sign, fld, text[i + 1 : end], True))
            i = end + 1
            continue
        j = i
        while j < n and text[j] not in _SPACE and text[j] != '"':
            j += 1
        out.append((sign, fld, text[i:j], False))
        i = j
    return out


def parse_query(text: str) -> ParsedQuery:
    """Parse any text; never raises."""
    if not isinstance(text, str):
        text = str(text or "")
    raw = text[:MAX_QUERY_CHARS]
    # Lone surrogates (from bad decoding) would break encoders downstream.
    raw = raw.encode("utf-8", "replace").decode("utf-8")
    pq = ParsedQuery(raw=raw)
    pending = None  # operator waiting for its right-hand clause
    for sign, fld, word, quoted in _tokens(raw):
        if not quoted and not fld and not sign and word in _OPERATORS:
            if word == "AND" and pq.clauses and pq.clauses[-1].occur == SHOULD:
                pq.clauses[-1].occur = MUST
            pending = word
            continue
        if not word.strip():
            pending = None
            continue
        if sign == "-" or pending in ("NOT", "ANDNOT"):
            occur = MUST_NOT
        elif sign == "+" or pending == "AND":
            occur = MUST
        else:
            occur = SHOULD
        pending = None
        clause = Clause(field=fld or "all", text=word.strip(), phrase=quoted, occur=occur)
        if not any(_same(clause, c) for c in pq.clauses):
            pq.clauses.append(clause)
        if len(pq.clauses) >= MAX_CLAUSES:
            break
    return pq


def _same(a: Clause, b: Clause) -> bool:
    return (a.field, a.text.lower(), a.phrase, a.occur) == (b.field, b.text.lower(), b.phrase, b.occur)
