"""Keyword search inside PostgreSQL: the ``KeywordIndex`` interface search/engine.py uses,
answered from the ``papers.search_tsv`` column (migration pg_0002) and its GIN index.

Why in the database: on PostgreSQL no process may keep state another one needs. The
tsvector is written with the row, in the same transaction, so a paper is searchable the
moment it is committed, by every process, and there is nothing to build, follow or lose.

How it mirrors the tantivy index (search/keyword.py):

* Analysis. Query text goes through the very SQL the column is made with
  (``pf_search_text`` then ``to_tsvector``), so a query word and the same word in a paper
  always give the same lexeme: english stemming and stop words for titles and abstracts,
  'simple' (no stemming) for author names, accents folded on both. One round trip per new
  word, then cached (the analysis is a pure function of the word).
* Ranking. BM25's two halves: each query lexeme's ``ts_rank`` over the paper (field weights
  below, saturating in repeats, divided by 1 + log of the paper's length) times its IDF.
  ``ts_rank`` alone has no IDF, and on SciFact it cost 0.087 nDCG@10 (0.617 against 0.704
  with it). Document frequencies come from the planner's own statistics of the column
  (``pg_stats.most_common_elems``, kept by ANALYZE / autovacuum) for common lexemes, and
  from a capped count on the GIN index for the others (cheap: they are rare), cached a
  while per process. Nothing here is state another process needs: it is all re-derived.
* Candidates limited. An OR query of common words matches most papers, and ranking means
  reading each match's tsvector. So the papers ranked are those holding at least one of the
  query's rarest words, rarest first, until their document frequencies add up to
  ``CANDIDATE_BUDGET`` (a paper with none of them rarely beats one with a rare word: on
  SciFact train nDCG@10 is 0.7019 with the cut, 0.7016 ranking every match, at a fifth of
  the time), and never more than ``CANDIDATE_CAP``.
* Safety. User text never reaches tsquery syntax: every tsquery is written here from
  lexemes PostgreSQL produced, each quoted; everything else is a bound parameter. Each
  statement runs under ``SET LOCAL statement_timeout`` so a pathological query cannot hold
  a connection; hitting it is an ``InputError`` that says so.

Known differences from tantivy, by design or by necessity: PostgreSQL's english stop-word
list is Snowball's (127 words) where tantivy's is Lucene's (33); free words are required
(at least one) even beside a ``cat:``/``au:`` restriction, as on arXiv; result counts above
``COUNT_CAP`` are reported as "at least".
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from math import log
from typing import Iterable, Iterator

from ..errors import InputError
from ..ids import parse_arxiv_id

__all__ = ["PgSearchMixin", "PgKeywordIndex", "PgQuery", "AtLeast", "Estimate", "SEARCH_LOCK"]

# search/query.py's clause occurrences (plain strings: the store does not import search).
SHOULD, MUST, MUST_NOT = "should", "must", "must_not"
# Advisory lock of `paperfeed index` on PostgreSQL (one embedding run per database).
SEARCH_LOCK = 0x7066_0010
# ts_rank weights {D, C, B, A}: authors C, abstract B, title A. FieldWeights gives a title
# word body 1.0 + title 0.25, an abstract word 1.0, an author 0.5; ts_rank takes weights up
# to 1, so the same ratios scaled by 1/1.25.
_WEIGHTS = "'{0.1, 0.4, 0.8, 1.0}'::float4[]"
# Normalisation 1: divide by 1 + log(length), BM25's length term in spirit.
_NORM = 1
CANDIDATE_BUDGET = 500
CANDIDATE_CAP = 10_000
COUNT_CAP = 10_000  # matches counted exactly up to this many; beyond, "at least"
# ... and for a count that is only an estimate (a hybrid search's "about N"): under a filter,
# counting to 10,000 read most of the papers (130 ms of a 200 ms search at 100,000 papers).
ESTIMATE_CAP = 1_000
STATEMENT_TIMEOUT_MS = 5000
_STATS_TTL = 300.0  # seconds the column's statistics and common document frequencies are kept
_ZERO_DF_TTL = 5.0  # ... and "no paper has this word", which the next paper may change
_ANALYSIS_CACHE = 50_000


class AtLeast(int):
    """A count that stopped at a cap: the true number is this or more."""

    at_least = True


class Estimate(AtLeast):
    """Not a count: the planner's estimate of the matches (an estimated count went past its
    cap). Inexact like AtLeast, but not a lower bound."""


@dataclass(frozen=True, slots=True)
class Term:
    tsq: str  # tsquery text written here from quoted lexemes
    # (lexeme, weight label) whose document frequencies make its weight
    lexemes: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PgQuery:
    """A compiled query: SQL conditions on ``papers p`` (ANDed, with their parameters), the
    optional words (at least one must match when ``need_word``), the ranked terms, and an
    optional set of papers it is limited to."""

    conds: tuple[tuple[str, tuple], ...] = ()
    words: tuple[Term, ...] = ()
    need_word: bool = False
    rank: tuple[Term, ...] = ()
    pks: tuple[int, ...] | None = None

    def also(self, other: "PgQuery") -> "PgQuery":
        return PgQuery(
            self.conds + other.conds,
            self.words + other.words,
            self.need_word or other.need_word,
            self.rank + other.rank,
            self.pks if other.pks is None else other.pks,
        )


def _quote(lexeme: str) -> str:
    """A lexeme as a tsquery operand: quoted, its quotes and backslashes escaped."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _or(tsqs: Iterable[str]) -> str:
    return " | ".join(f"( {t} )" for t in tsqs)


def _match(terms: Iterable[Term]) -> tuple[str, tuple]:
    """Papers with any of the terms. Terms restricted to a field (weights, phrases) go in a
    tsquery of their own: the GIN index must have each of its matches rechecked against
    the paper's tsvector, and one weighted word in a shared tsquery made every match of
    every word be rechecked (a count over 5,000 papers went from 0.5 to 9 ms)."""
    plain = [t.tsq for t in terms if ":" not in t.tsq and "<" not in t.tsq]
    other = [t.tsq for t in terms if ":" in t.tsq or "<" in t.tsq]
    parts = [("p.search_tsv @@ %s::tsquery", _or(g)) for g in (plain, other) if g]
    if not parts:
        return "false", ()
    return " OR ".join(c for c, _ in parts), tuple(v for _, v in parts)


def _clean(text: str) -> str:
    """User text as PostgreSQL can take it: no NUL (text cannot hold one), no lone
    surrogates (they cannot be encoded)."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")


class _LRU:
    def __init__(self, size: int):
        self.size = size
        self.data: OrderedDict = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key, value) -> None:
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)


# (position, lexeme) of a text's english analysis and of its 'simple' (names) analysis.
_Analysis = tuple[tuple[tuple[int, str], ...], tuple[tuple[int, str], ...]]


class PgKeywordIndex:
    """The keyword side of search on a PostgresStore. Thread-safe; one per store."""

    #: The words are indexed with the row: never behind the store.
    in_store = True

    def __init__(self, store):
        self.store = store
        self._analysis = _LRU(_ANALYSIS_CACHE)
        self._df: dict[tuple[str, str], tuple[int, float]] = {}
        self._stats: tuple[float, int, dict[str, float]] | None = None
        self._lock = threading.Lock()

    # --- running statements ----------------------------------------------------------------
    @contextmanager
    def _timed(self) -> Iterator:
        """A connection whose statements stop after STATEMENT_TIMEOUT_MS."""
        import psycopg

        with self.store._read() as conn:
            raw = conn.raw
            try:
                if conn.writing:  # inside the caller's write: its transaction, its limits
                    yield raw
                    return
                with raw.transaction():
                    # No sequential scans: the planner prices reading a paper's tsvector far
                    # below its cost (it is TOASTed), and on SciFact scanned all 5,183 papers
                    # (23 ms) rather than fetch the 1,129 the GIN index named (2 ms).
                    raw.execute(
                        "SELECT set_config('statement_timeout', %s, true), "
                        "set_config('enable_seqscan', 'off', true)",
                        (f"{STATEMENT_TIMEOUT_MS}ms",),
                    )
                    yield raw
            except psycopg.errors.QueryCanceled:
                raise InputError(
                    f"the search took longer than {STATEMENT_TIMEOUT_MS / 1000:g} s and was "
                    "stopped: try fewer or rarer words, or a filter"
                ) from None

    def _rows(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        with self._timed() as raw:
            return raw.execute(sql, params).fetchall()

    def _lookup(self, sql: str, params: tuple | list = ()) -> list[tuple]:
        """A statement bounded by construction (an index probe, a capped count, the analysis
        of at most MAX_QUERY_CHARS): one round trip, without the timeout's transaction."""
        with self.store._read() as conn:
            return conn.raw.execute(sql, params).fetchall()

    # --- analysis ----------------------------------------------------------------------------
    def analyse(self, texts: Iterable[str]) -> dict[str, _Analysis]:
        """Each text's lexemes with their positions, as the papers' column has them."""
        texts = list(dict.fromkeys(_clean(t) for t in texts))
        out: dict[str, _Analysis] = {}
        todo = []
        for t in texts:
            got = self._analysis.get(t)
            if got is None:
                todo.append(t)
            else:
                out[t] = got
        if todo:
            found: dict[str, tuple[list, list]] = {t: ([], []) for t in todo}
            rows = self._lookup(
                "SELECT u.t, v.en, e.lexeme, e.positions FROM unnest(%s::text[]) AS u(t) "
                "CROSS JOIN (VALUES (true, 'english'::regconfig), (false, 'simple'::regconfig)) "
                "AS v(en, cfg) "
                "CROSS JOIN LATERAL unnest(to_tsvector(v.cfg, pf_search_text(u.t))) AS e",
                (todo,),
            )
            for t, en, lexeme, positions in rows:
                found[t][0 if en else 1].extend((p, lexeme) for p in positions or [1])
            for t, (en, names) in found.items():
                a = (tuple(sorted(en)), tuple(sorted(names)))
                self._analysis.put(t, a)
                out[t] = a
        return out

    def _lexemes(self, text: str, names: bool = False) -> list[str]:
        a = self.analyse([text])[_clean(text)][1 if names else 0]
        return list(dict.fromkeys(lex for _, lex in a))

    # --- clauses -----------------------------------------------------------------------------
    @staticmethod
    def _phrase(seq: tuple[tuple[int, str], ...], weight: str) -> str | None:
        """``'a':W <N> 'b':W ...``: N keeps the place of dropped stop words, so "attention
        is all you need" matches the same words in a paper."""
        if not seq:
            return None
        parts = [_quote(seq[0][1]) + weight]
        for (p0, _), (p1, lex) in zip(seq, seq[1:]):
            gap = min(max(1, p1 - p0), 16384)
            parts.append(("<->" if gap == 1 else f"<{gap}>") + " " + _quote(lex) + weight)
        return " ".join(parts)

    def _text_terms(self, field: str, text: str, phrase: bool) -> list[Term]:
        """The terms of a word or phrase clause on all fields, the title or the abstract."""
        en, names = self.analyse([text])[_clean(text)]
        if phrase:
            if field == "all":
                alts = [(self._phrase(en, ":AB"), en), (self._phrase(names, ":C"), names)]
            else:
                alts = [(self._phrase(en, ":A" if field == "ti" else ":B"), en)]
            alts = [(q, seq) for q, seq in alts if q]
            if not alts:
                return []
            # Weighed by the words of its first form (the stemmed one when it has any).
            w = "" if alts[0][1] is en else ":C"
            return [Term(_or(q for q, _ in alts),
                         tuple(dict.fromkeys((lex, w) for _, lex in alts[0][1])))]
        # Stemmed words are unweighted on all fields: the GIN index then answers exactly,
        # with no recheck of each paper, and the rank weights still tell the fields apart.
        # Names only in the authors (C): "in" is no stop word there, and "INs" in an
        # abstract stems to 'in' (on SciFact that cost 0.004 nDCG@10).
        weight = {"all": "", "ti": ":A", "abs": ":B"}[field]
        keys = [(lex, weight) for _, lex in en]
        if field == "all":
            stemmed = {lex for _, lex in en}
            keys += [(lex, ":C") for _, lex in names if lex not in stemmed]
        return [Term(_quote(lex) + w, ((lex, w),)) for lex, w in dict.fromkeys(keys)]

    def _author_tsq(self, text: str) -> str | None:
        """Every name part must appear (any order); a lone initial is ignored when a longer
        part is given, as search/keyword.py does."""
        toks = self._lexemes(text, names=True)
        toks = [t for t in toks if len(t) > 1] or toks
        if not toks:
            return None
        return " & ".join(_quote(t) + ":C" for t in toks)

    @staticmethod
    def _category_cond(value: str) -> tuple[str, tuple]:
        v = _clean(value).strip().lower()
        like = v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%"
        return (
            "p.pk IN (SELECT paper_pk FROM paper_categories "
            "WHERE lower(category) = %s OR lower(category) LIKE %s ESCAPE '\\')",
            (v, like),
        )

    def _clause(self, c) -> tuple[tuple[str, tuple], list[Term]] | None:
        """(condition, ranked terms) of one clause; None when nothing of it is searchable."""
        if c.field in ("all", "ti", "abs"):
            terms = self._text_terms(c.field, c.text, c.phrase)
            if not terms:
                return None
            return _match(terms), terms
        if c.field == "au":
            tsq = self._author_tsq(c.text)
            return (("p.search_tsv @@ %s::tsquery", (tsq,)), []) if tsq else None
        if c.field == "cat":
            return self._category_cond(c.text), []
        if c.field == "id":
            parsed = parse_arxiv_id(c.text)
            return ("p.id = %s", (_clean(parsed[0] if parsed else c.text),)), []
        return None

    # --- the KeywordIndex interface ----------------------------------------------------------
    def text_query(self, pq) -> PgQuery | None:
        """The ranked part of a query; None when it has no words to rank by."""
        self.analyse(c.text for c in pq.clauses)  # one round trip for all the new words
        conds: list[tuple[str, tuple]] = []
        words: list[Term] = []
        rank: list[Term] = []
        structured: list[tuple[str, tuple]] = []
        ranked = required = False
        for c in pq.clauses:
            got = self._clause(c)
            if got is None:
                continue
            cond, terms = got
            if c.occur == SHOULD and c.field in ("all", "ti", "abs"):
                words.extend(terms)
                rank.extend(terms)
                ranked = True
            elif c.occur == SHOULD:
                structured.append(cond)
            elif c.occur == MUST:
                conds.append(cond)
                if terms:
                    rank.extend(terms)
                    ranked = required = True
            else:
                conds.append((f"NOT ({cond[0]})", cond[1]))
        if not ranked:
            return None
        if structured:
            conds.append(_any(structured))
        return PgQuery(tuple(conds), tuple(words), not required, tuple(rank))

    def constraint_query(self, pq, filters) -> PgQuery | None:
        """What a result must satisfy whatever ranks it: filters, required and excluded
        clauses, and at least one of the field clauses (``cat:``, ``au:``, ``id:``)."""
        self.analyse([c.text for c in pq.clauses] + ([filters.author] if filters.author else []))
        conds: list[tuple[str, tuple]] = []
        structured: list[tuple[str, tuple]] = []
        for c in pq.clauses:
            got = self._clause(c)
            if got is None:
                continue
            cond = got[0]
            if c.occur == MUST:
                conds.append(cond)
            elif c.occur == MUST_NOT:
                conds.append((f"NOT ({cond[0]})", cond[1]))
            elif c.field in ("au", "cat", "id"):
                structured.append(cond)
        if structured:
            conds.append(_any(structured))
        f = self.filter_query(filters)
        if f is not None:
            conds.extend(f.conds)
        return PgQuery(tuple(conds)) if conds else None

    def filter_query(self, filters) -> PgQuery | None:
        conds: list[tuple[str, tuple]] = []
        if filters.category:
            conds.append(self._category_cond(filters.category))
        # Days as the tantivy index has them (search.text.day_number of ``published``),
        # compared as text: 20240517 -> '2024-05-17'; until is inclusive, so below the next
        # "day" ('2024-05-32' sorts after every time on the 31st and before June).
        if filters.since:
            conds.append(("p.published >= %s", (_day(filters.since),)))
        if filters.until:
            conds.append(("p.published < %s", (_day(filters.until + 1),)))
        if filters.author:
            tsq = self._author_tsq(filters.author)
            # An author filter with no usable name part matches nothing rather than all.
            conds.append(("p.search_tsv @@ %s::tsquery", (tsq,)) if tsq else ("false", ()))
        return PgQuery(tuple(conds)) if conds else None

    def ranked_query(self, pq, filters) -> PgQuery | None:
        tq = self.text_query(pq)
        if tq is None:
            return None
        fq = self.filter_query(filters)
        return tq if fq is None else tq.also(fq)

    def restrict(self, query: PgQuery, pks: list[int]) -> PgQuery:
        """``query`` limited to the given papers, scored by ``query`` alone."""
        return replace(query, pks=tuple(int(p) for p in pks))

    def _where(self, q: PgQuery, words: list[Term] | None = None) -> tuple[str, list]:
        conds = list(q.conds)
        if q.pks is not None:
            conds.append(("p.pk = ANY(%s::bigint[])", (list(q.pks),)))
        words = q.words if words is None else words
        if q.need_word:
            conds.append(_match(words))
        sql = " AND ".join(f"({c})" for c, _ in conds) or "true"
        return sql, [x for _, ps in conds for x in ps]

    def _count(self, raw, where: str, params: list, cap: int | None = None) -> int:
        cap = COUNT_CAP if cap is None else cap
        n = raw.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM papers p WHERE {where} LIMIT {cap + 1}) s",
            params,
        ).fetchone()[0]
        return AtLeast(cap) if n > cap else n

    def _estimate(self, raw, where: str, params: list) -> int:
        """Matches counted up to ESTIMATE_CAP; past it the planner's estimate (it is within
        ~15% on category-and-words queries at 100,000 papers, and costs one plan), so a
        hybrid page says "About 5,600" rather than a bare cap."""
        n = self._count(raw, where, params, ESTIMATE_CAP)
        if not getattr(n, "at_least", False):
            return n
        plan = raw.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM papers p WHERE {where}",
                           params).fetchone()[0]
        rows = int(plan[0]["Plan"]["Plan Rows"])
        return Estimate(min(max(rows, ESTIMATE_CAP + 1), COUNT_CAP))

    def search(
        self, query: PgQuery, limit: int, offset: int = 0, count: bool | str = False
    ) -> tuple[list[tuple[int, float]], int | None]:
        """(pk, score) best first, and the number of matches when ``count``: exact up to
        COUNT_CAP, or with ``count == "estimate"`` exact up to ESTIMATE_CAP and estimated
        beyond."""
        terms = list({t.tsq: t for t in query.rank}.values())
        df = self.doc_freqs({key for t in terms + list(query.words) for key in t.lexemes})
        n = max(self._stats_now()[1], 1)

        def idf(key: tuple[str, str]) -> float:
            d = min(df.get(key, 0), n)
            return log(1 + (n - d + 0.5) / (d + 0.5))

        # A term none of whose words any paper has cannot score: left out of the sum (a zero
        # count is kept only briefly, so a paper just added with a new word counts soon).
        scored = [(sum(idf(x) for x in t.lexemes), t) for t in terms
                  if any(df.get(x, 0) for x in t.lexemes)]
        words = list(query.words)
        if query.need_word and query.pks is None and words:
            # The rarest words, until their papers add up to the budget (at least one word).
            rarest = sorted(words, key=lambda t: (min(df.get(x, 0) for x in t.lexemes), t.tsq))
            words, total = [], 0
            for t in rarest:
                d = min(df.get(x, 0) for x in t.lexemes)
                if total and total + d > CANDIDATE_BUDGET:
                    break
                words.append(t)
                total += d
        where, params = self._where(query, words)
        score = " + ".join(
            f"%s * ts_rank({_WEIGHTS}, c.v, %s::tsquery, {_NORM})" for _ in scored
        ) or "0"
        sql = (
            f"SELECT c.pk, {score} AS score FROM ("
            # || '' makes one detoasted copy that every ts_rank then reads.
            f"SELECT p.pk, p.search_tsv || ''::tsvector AS v FROM papers p WHERE {where} "
            f"LIMIT {CANDIDATE_CAP}) c ORDER BY score DESC, c.pk LIMIT %s OFFSET %s"
        )
        sparams = [x for w, t in scored for x in (w, t.tsq)]
        with self._timed() as raw:
            rows = raw.execute(sql, sparams + params + [max(1, limit), max(0, offset)]).fetchall()
            total = None
            if count:
                total = self._known_many(query, df)
                if total is None:
                    tally = self._estimate if count == "estimate" else self._count
                    total = tally(raw, *self._where(query))
        return [(int(pk), float(s)) for pk, s in rows[:limit]], total

    @staticmethod
    def _known_many(query: PgQuery, df: dict[tuple[str, str], int]) -> int | None:
        """AtLeast(COUNT_CAP) when the statistics already say a query of nothing but optional
        words matches more: one of its words alone is in that many papers. Counting them
        was the dearest statement of such a search (32 ms of ~60 at 100,000 papers). The
        margin covers the sampling error of the column's statistics (under 2% there)."""
        if query.conds or query.pks is not None or not query.need_word:
            return None
        single = [df.get(t.lexemes[0], 0) for t in query.words if len(t.lexemes) == 1]
        if max(single, default=0) >= COUNT_CAP * 1.25:
            return AtLeast(COUNT_CAP)
        return None

    def newest(
        self, query: PgQuery, limit: int, offset: int = 0
    ) -> tuple[list[tuple[int, float]], int]:
        """Matches ordered by date, newest first (for a query that is only filters)."""
        where, params = self._where(query)
        with self._timed() as raw:
            rows = raw.execute(
                f"SELECT p.pk FROM papers p WHERE {where} "
                "ORDER BY p.published DESC NULLS LAST, p.pk DESC LIMIT %s OFFSET %s",
                params + [max(1, limit), max(0, offset)],
            ).fetchall()
            total = self._count(raw, where, params)
        return [(int(r[0]), 0.0) for r in rows[:limit]], total

    def count(self, query: PgQuery) -> int:
        where, params = self._where(query)
        with self._timed() as raw:
            return self._count(raw, where, params)

    def matching_pks(self, query: PgQuery, limit: int) -> list[int]:
        where, params = self._where(query)
        rows = self._rows(f"SELECT p.pk FROM papers p WHERE {where} LIMIT %s",
                          params + [max(1, int(limit))])
        return [int(r[0]) for r in rows]

    def exact_title(self, text: str) -> list[int]:
        if sum(ch.isalnum() for ch in text[:200]) < 4:  # title_key's "at least 4" in short
            return []
        rows = self._lookup(
            "SELECT pk FROM papers WHERE pf_title_key(title) = pf_title_key(%s) "
            "AND length(pf_title_key(%s)) >= 4 LIMIT 10",
            (_clean(text),) * 2,
        )
        return [int(r[0]) for r in rows]

    def by_id(self, paper_id: str) -> list[int]:
        rows = self._lookup("SELECT pk FROM papers WHERE id = %s", (_clean(paper_id),))
        return [int(r[0]) for r in rows]

    def num_docs(self) -> int:
        return self._rows("SELECT count(*) FROM papers")[0][0]

    # --- document frequencies ------------------------------------------------------------------
    def _stats_now(self) -> tuple[float, int, dict[str, float]]:
        """(when read, papers, {lexeme: fraction of papers}) from the column's statistics."""
        now = time.monotonic()
        st = self._stats
        if st is not None and now - st[0] < _STATS_TTL:
            return st
        rows = self._lookup(
            "SELECT c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs "
            "FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() "
            "AND s.tablename = 'papers' AND s.attname = 'search_tsv' "
            "WHERE c.oid = 'papers'::regclass"
        )
        reltuples, elems, freqs = rows[0] if rows else (-1, None, None)
        n = int(reltuples or 0)
        if n < 100_000:  # never analysed (-1), or small enough to count exactly
            n = self._lookup("SELECT count(*) FROM papers")[0][0]
        common = dict(zip(elems, freqs)) if elems and freqs else {}
        st = self._stats = (now, n, common)
        with self._lock:
            self._df.clear()
        return st

    def doc_freqs(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """How many papers have each (lexeme, weight label), e.g. ('cell', '') anywhere or
        ('hinton', ':C') among the authors: estimates for common lexemes, capped counts."""
        _, n, common = self._stats_now()
        now = time.monotonic()
        out: dict[tuple[str, str], int] = {}
        todo = []
        for key in keys:
            lex, weight = key
            if not weight and lex in common:  # the statistics do not tell weights apart
                out[key] = round(common[lex] * n)
                continue
            hit = self._df.get(key)
            if hit is not None and now - hit[1] < (_STATS_TTL if hit[0] else _ZERO_DF_TTL):
                out[key] = hit[0]
            else:
                todo.append(key)
        if todo:
            cap = max(1000, n // 100)
            rows = self._lookup(
                "SELECT q.t, (SELECT count(*) FROM (SELECT 1 FROM papers p WHERE "
                f"p.search_tsv @@ q.t::tsquery LIMIT {cap}) s) FROM unnest(%s::text[]) AS q(t)",
                ([_quote(lex) + w for lex, w in todo],),
            )
            with self._lock:
                if len(self._df) > 200_000:
                    self._df.clear()
                for (_, d), key in zip(rows, todo):
                    out[key] = d
                    # A paper added since changes a weight a little for a while, never
                    # whether it is found: matching is always live.
                    self._df[key] = (d, now)
        return out


def _any(conds: list[tuple[str, tuple]]) -> tuple[str, tuple]:
    return (
        " OR ".join(f"({c})" for c, _ in conds),
        tuple(x for _, ps in conds for x in ps),
    )


def _day(n: int) -> str:
    return f"{n // 10000:04d}-{n // 100 % 100:02d}-{n % 100:02d}"


class PgSearchMixin:
    """Search hooks of the Store interface, answered by PostgreSQL."""

    def keyword_index(self) -> PgKeywordIndex:
        ki = self.__dict__.get("_pf_keyword_index")
        if ki is None:
            ki = self._pf_keyword_index = PgKeywordIndex(self)
        return ki

    @contextmanager
    def search_writer_lock(self, wait: bool = False) -> Iterator[bool]:
        """One `paperfeed index` per database, across machines: a session advisory lock on a
        connection of its own, held for the run (released by the server if the process dies)."""
        with self.pool.connection() as raw:
            if wait:
                raw.execute("SELECT pg_advisory_lock(%s)", (SEARCH_LOCK,))
                got = True
            else:
                got = raw.execute("SELECT pg_try_advisory_lock(%s)", (SEARCH_LOCK,)).fetchone()[0]
            try:
                yield bool(got)
            finally:
                if got:
                    raw.execute("SELECT pg_advisory_unlock(%s)", (SEARCH_LOCK,))

    def pgvector_available(self) -> bool:
        """Whether the server could ``CREATE EXTENSION vector``. paperfeed does not use it
        yet: vectors are stored as float32 bytes and searched in each process's memory."""
        with self._read() as conn:
            return bool(conn.raw.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone())
