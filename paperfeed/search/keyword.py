"""The keyword index: a tantivy (Lucene-like, BM25) index kept beside the database.

Why tantivy and not SQLite FTS5: at a million papers FTS5 answers multi-word OR queries in
tens to hundreds of milliseconds, tantivy in about one. The index is derived: it can be
deleted and rebuilt from the database at any time, and it follows the store's ``rev`` so
updates are incremental (state.json records the last revision indexed).

Every query is built from parsed clauses with tantivy's query constructors, so nothing a
user types is interpreted by a query parser.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import tantivy

from ..ids import parse_arxiv_id
from ..store import StoredPaper
from .query import MUST, MUST_NOT, SHOULD, Clause, ParsedQuery
from .text import category_terms, day_number, title_key

__all__ = ["KeywordIndex", "Filters", "FieldWeights"]

SCHEMA_VERSION = 1

_OCCUR = {
    SHOULD: tantivy.Occur.Should,
    MUST: tantivy.Occur.Must,
    MUST_NOT: tantivy.Occur.MustNot,
}


def _analyzer(stem: bool) -> tantivy.TextAnalyzer:
    b = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
    )
    if stem:
        # Stop words are dropped: they carry little BM25 weight and make OR queries at a
        # million papers visit nearly every document.
        b = b.filter(tantivy.Filter.stopword("english")).filter(tantivy.Filter.stemmer("english"))
    return b.build()


_LOWER_RAW = (
    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).filter(tantivy.Filter.lowercase()).build()
)
EN = _analyzer(stem=True)
NAMES = _analyzer(stem=False)


def _schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_unsigned_field("pk", stored=True, indexed=True, fast=True)
    sb.add_text_field("id", tokenizer_name="raw", index_option="basic")
    sb.add_text_field("title", tokenizer_name="pf_en")
    sb.add_text_field("abstract", tokenizer_name="pf_en")
    # title + abstract as one field: one BM25 over the whole text ranks better than a sum of
    # per-field scores (measured on SciFact); ``title`` adds a boost on top.
    sb.add_text_field("body", tokenizer_name="pf_en")
    sb.add_text_field("authors", tokenizer_name="pf_names")
    sb.add_text_field("cats", tokenizer_name="pf_lower", index_option="basic")
    sb.add_text_field("title_key", tokenizer_name="raw", index_option="basic")
    sb.add_integer_field("day", indexed=True, fast=True)
    return sb.build()


@dataclass(slots=True)
class Filters:
    category: str | None = None
    since: int | None = None  # YYYYMMDD, inclusive
    until: int | None = None
    author: str | None = None

    def __bool__(self) -> bool:
        return bool(self.category or self.since or self.until or self.author)


@dataclass(slots=True)
class FieldWeights:
    """Boosts of the fields a free word is looked up in (tuned on SciFact train)."""

    body: float = 1.0
    title: float = 0.25
    authors: float = 0.5


class KeywordIndex:
    """One tantivy index directory. Readers may share an instance across threads.

    The methods engine.py calls (``ranked_query`` ... ``by_id``) are the keyword side's
    interface: store/pg_search.py's PgKeywordIndex answers the same from PostgreSQL."""

    #: Papers reach this index by ``add``/``commit`` (sync_keyword), not with the row.
    in_store = False

    def __init__(self, path: str | Path, weights: FieldWeights | None = None):
        self.path = Path(path)
        self.weights = weights or FieldWeights()
        self.path.mkdir(parents=True, exist_ok=True)
        self.schema = _schema()
        state = self.state()
        if state.get("schema") != SCHEMA_VERSION or not state.get("gen"):
            # A new index, or one from another schema version: (re)built rather than misread.
            for f in self.path.iterdir():
                if f.is_file():
                    f.unlink()
            state = {"schema": SCHEMA_VERSION, "rev": 0, "gen": uuid.uuid4().hex}
            self._write_state(state)
        # Identifies this index's files: a reader notices when the folder was deleted and
        # rebuilt under it (``stale``) and reopens it.
        self.gen = state["gen"]
        self.index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        self.index.register_tokenizer("pf_en", EN)
        self.index.register_tokenizer("pf_names", NAMES)
        self.index.register_tokenizer("pf_lower", _LOWER_RAW)
        self._writer = None
        self._lock = threading.Lock()

    # --- state ---------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.path / "paperfeed-state.json"

    def state(self) -> dict:
        try:
            return json.loads(self._state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    @property
    def rev(self) -> int:
        return int(self.state().get("rev", 0))

    def stale(self) -> bool:
        return self.state().get("gen") != self.gen

    def _write_state(self, state: dict) -> None:
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self._state_file)

    # --- writing -------------------------------------------------------------------------
    def add(self, papers: Iterable[StoredPaper], threads: int = 2) -> int:
        """Add or replace papers (by pk). Visible to searchers after ``commit``. ``threads``
        (and a memory budget to match) applies when this starts a writer."""
        if self._writer is None:
            heap = 256_000_000 if threads > 1 else 64_000_000
            self._writer = self.index.writer(heap_size=heap, num_threads=threads)
        w = self._writer
        papers = list(papers)
        if papers:
            # Replace: delete the older documents of these papers first (a delete applies to
            # documents added before it). By query: tantivy-py's delete_documents_by_term
            # makes an i64 term for a Python int, which never matches this u64 field, so
            # every re-indexed paper used to stay in the index twice.
            w.delete_documents_by_query(
                tantivy.Query.term_set_query(self.schema, "pk", [sp.pk for sp in papers])
            )
        n = 0
        for sp in papers:
            p = sp.paper
            doc = tantivy.Document()
            doc.add_unsigned("pk", sp.pk)
            doc.add_text("id", p.id)
            doc.add_text("title", p.title or "")
            doc.add_text("abstract", p.abstract or "")
            doc.add_text("body", f"{p.title or ''}\n{p.abstract or ''}")
            for a in p.authors:
                doc.add_text("authors", a)
            for c in category_terms(p.categories):
                doc.add_text("cats", c)
            doc.add_text("title_key", title_key(p.title or ""))
            doc.add_integer("day", day_number(p.published) or 0)
            w.add_document(doc)
            n += 1
        return n

    def commit(self, rev: int) -> None:
        """Make added papers visible and record that everything up to ``rev`` is indexed."""
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None
        self._write_state({"schema": SCHEMA_VERSION, "rev": rev, "gen": self.gen})
        self.index.reload()

    def rollback(self) -> None:
        if self._writer is not None:
            self._writer.rollback()
            self._writer = None

    def reload(self) -> None:
        self.index.reload()

    def num_docs(self) -> int:
        return self.index.searcher().num_docs

    # --- query building ------------------------------------------------------------------
    def _terms(self, field: str, text: str, analyzer: tantivy.TextAnalyzer) -> list:
        toks = list(dict.fromkeys(analyzer.analyze(text)))
        return [tantivy.Query.term_query(self.schema, field, t) for t in toks]

    def _phrase(self, field: str, text: str) -> tantivy.Query | None:
        """Phrase over an analysed field, keeping the positions of dropped stop words so
        "attention is all you need" matches the same text in the index."""
        analyzer = NAMES if field == "authors" else EN
        words = []
        pos = 0
        for raw_tok in NAMES.analyze(text):
            toks = analyzer.analyze(raw_tok)
            if toks:
                words.append((pos, toks[0]))
            pos += 1
        if not words:
            return None
        if len(words) == 1:
            return tantivy.Query.term_query(self.schema, field, words[0][1])
        base = words[0][0]
        return tantivy.Query.phrase_query(self.schema, field, [(p - base, t) for p, t in words])

    def _author(self, text: str) -> tantivy.Query | None:
        """Every name part must appear (any order), so "Hinton", "Geoffrey Hinton" and
        "Hinton, G" all find Geoffrey E. Hinton. A lone initial is ignored when a longer
        part is given: initials match too many names to narrow anything."""
        toks = list(dict.fromkeys(NAMES.analyze(text)))
        long_ = [t for t in toks if len(t) > 1]
        toks = long_ or toks
        if not toks:
            return None
        qs = [tantivy.Query.term_query(self.schema, "authors", t) for t in toks]
        if len(qs) == 1:
            return qs[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in qs])

    def _any_field(self, c: Clause) -> tantivy.Query | None:
        w = self.weights
        subs = []
        for fld, boost, analyzer in (
            ("body", w.body, EN),
            ("title", w.title, EN),
            ("authors", w.authors, NAMES),
        ):
            if boost <= 0:
                continue
            if c.phrase:
                q = self._phrase(fld, c.text)
                qs = [q] if q is not None else []
            else:
                qs = self._terms(fld, c.text, analyzer)
            if not qs:
                continue
            q = qs[0] if len(qs) == 1 else tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, x) for x in qs]
            )
            subs.append(q if boost == 1.0 else tantivy.Query.boost_query(q, boost))
        if not subs:
            return None
        return subs[0] if len(subs) == 1 else tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, x) for x in subs]
        )

    def _flat_terms(self, c: Clause) -> list[tantivy.Query]:
        if c.field == "ti":
            return self._terms("title", c.text, EN)
        if c.field == "abs":
            return self._terms("abstract", c.text, EN)
        w = self.weights
        out: list[tantivy.Query] = []
        for fld, boost, analyzer in (
            ("body", w.body, EN),
            ("title", w.title, EN),
            ("authors", w.authors, NAMES),
        ):
            if boost > 0:
                qs = self._terms(fld, c.text, analyzer)
                out.extend(qs if boost == 1.0 else [tantivy.Query.boost_query(q, boost) for q in qs])
        return out

    def clause_query(self, c: Clause) -> tantivy.Query | None:
        if c.field == "all":
            return self._any_field(c)
        if c.field in ("ti", "abs"):
            fld = "title" if c.field == "ti" else "abstract"
            if c.phrase:
                return self._phrase(fld, c.text)
            qs = self._terms(fld, c.text, EN)
            if not qs:
                return None
            return qs[0] if len(qs) == 1 else tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, x) for x in qs]
            )
        if c.field == "au":
            return self._author(c.text)
        if c.field == "cat":
            return tantivy.Query.term_query(self.schema, "cats", c.text.strip().lower())
        if c.field == "id":
            parsed = parse_arxiv_id(c.text)
            return tantivy.Query.term_query(self.schema, "id", parsed[0] if parsed else c.text)
        return None

    def text_query(self, pq: ParsedQuery) -> tantivy.Query | None:
        """The ranked part of a query; None when it has no free words to rank by (only
        field restrictions such as ``cat:`` or ``au:``, or nothing searchable at all).

        Optional field clauses (``cat:cs.LG``, ``au:hinton``) restrict rather than rank,
        as on arXiv: at least one of them must match."""
        parts, structured = [], []
        ranked = False
        for c in pq.clauses:
            if c.occur == SHOULD and c.field in ("all", "ti", "abs") and not c.phrase:
                # Optional words go in flat, one term query per field: tantivy then prunes
                # with block-max WAND, about 3x faster at a million papers than nesting a
                # per-word group (the scores are the same sums).
                flat = self._flat_terms(c)
                parts.extend((tantivy.Occur.Should, q) for q in flat)
                ranked = ranked or bool(flat)
                continue
            q = self.clause_query(c)
            if q is None:
                continue
            if c.occur == SHOULD and c.field in ("au", "cat", "id"):
                structured.append((tantivy.Occur.Should, q))
                continue
            parts.append((_OCCUR[c.occur], q))
            ranked = ranked or (c.occur != MUST_NOT and c.field in ("all", "ti", "abs"))
        if not ranked:
            return None
        if structured:
            parts.append((tantivy.Occur.Must, tantivy.Query.boolean_query(structured)))
        return tantivy.Query.boolean_query(parts)

    def ranked_query(self, pq: ParsedQuery, filters: Filters) -> tantivy.Query | None:
        """``text_query`` within the filters: what a ranked search runs."""
        tq = self.text_query(pq)
        if tq is None:
            return None
        fq = self.filter_query(filters)
        if fq is None:
            return tq
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, tq), (tantivy.Occur.Must, fq)])

    def constraint_query(self, pq: ParsedQuery, filters: Filters) -> tantivy.Query | None:
        """What a result must satisfy whatever ranks it: the filters, required and excluded
        clauses, and field clauses such as ``cat:`` and ``au:`` (at least one of them).
        Used to keep semantic results consistent with the query's syntax."""
        parts = []
        structured = []
        for c in pq.clauses:
            q = self.clause_query(c)
            if q is None:
                continue
            if c.occur == MUST:
                parts.append((tantivy.Occur.Must, q))
            elif c.occur == MUST_NOT:
                parts.append((tantivy.Occur.MustNot, q))
            elif c.field in ("au", "cat", "id"):
                structured.append((tantivy.Occur.Should, q))
        if structured:
            parts.append((tantivy.Occur.Must, tantivy.Query.boolean_query(structured)))
        f = self.filter_query(filters)
        if f is not None:
            parts.append((tantivy.Occur.Must, f))
        if not parts:
            return None
        if all(o == tantivy.Occur.MustNot for o, _ in parts):
            parts.append((tantivy.Occur.Must, tantivy.Query.all_query()))
        return tantivy.Query.boolean_query(parts)

    def filter_query(self, filters: Filters) -> tantivy.Query | None:
        parts = []
        if filters.category:
            parts.append(
                tantivy.Query.term_query(self.schema, "cats", filters.category.strip().lower())
            )
        if filters.since or filters.until:
            parts.append(
                tantivy.Query.range_query(
                    self.schema, "day", tantivy.FieldType.Integer,
                    filters.since or 1, filters.until or 99991231,
                )
            )
        if filters.author:
            q = self._author(filters.author)
            # An author filter with no usable name part matches nothing rather than all.
            parts.append(q if q is not None else tantivy.Query.empty_query())
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in parts])

    # --- searching -----------------------------------------------------------------------
    def _pks(self, searcher, hits) -> list[int]:
        if not hits:
            return []
        return searcher.fast_field_values("pk", [a for _, a in hits])

    def search(
        self, query: tantivy.Query, limit: int, offset: int = 0, count: bool | str = False
    ) -> tuple[list[tuple[int, float]], int | None]:
        """(pk, score) best first, and the number of matches when ``count`` (True, or
        "estimate": good enough for "about N"; tantivy's exact count is as cheap)."""
        searcher = self.index.searcher()
        res = searcher.search(query, limit=max(1, limit), count=bool(count), offset=offset)
        hits = res.hits[:limit]
        pks = self._pks(searcher, hits)
        return [(pk, float(s)) for pk, (s, _) in zip(pks, hits)], (res.count if count else None)

    def newest(
        self, query: tantivy.Query, limit: int, offset: int = 0
    ) -> tuple[list[tuple[int, float]], int]:
        """Matches ordered by date, newest first (for a query that is only filters)."""
        searcher = self.index.searcher()
        res = searcher.search(
            query, limit=max(1, limit), count=True, offset=offset, order_by_field="day"
        )
        hits = res.hits[:limit]
        pks = self._pks(searcher, hits)
        return [(pk, 0.0) for pk in pks], res.count

    def count(self, query: tantivy.Query) -> int:
        return self.index.searcher().search(query, limit=1, count=True).count

    def matching_pks(self, query: tantivy.Query, limit: int) -> list[int]:
        searcher = self.index.searcher()
        res = searcher.search(query, limit=max(1, limit), count=False)
        return self._pks(searcher, res.hits)

    def restrict(self, query: tantivy.Query, pks: list[int]) -> tantivy.Query:
        """``query`` limited to the given papers, scored by ``query`` alone."""
        ids = tantivy.Query.const_score_query(
            tantivy.Query.term_set_query(self.schema, "pk", list(pks)), 0.0
        )
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, ids)])

    def exact_title(self, text: str) -> list[int]:
        key = title_key(text)
        if len(key) < 4:
            return []
        return self.matching_pks(tantivy.Query.term_query(self.schema, "title_key", key), 10)

    def by_id(self, paper_id: str) -> list[int]:
        return self.matching_pks(tantivy.Query.term_query(self.schema, "id", paper_id), 1)
