"""SQLite queries for the web app: listings by day, trending, votes, submissions.

Mixed into ``SQLiteStore``: methods use ``conn`` (reads, under ``self._lock``) and
``self._write()`` (one BEGIN IMMEDIATE transaction). Declare each public method on the
``Store`` interface in base.py too, so a PostgreSQL backend can implement the same.

Which day a paper belongs to (the daily, weekly and monthly pages, the daily feed):

* a paper Hugging Face listed is shown on the day(s) HF listed it, not on its arXiv date,
  because that is the day the community saw and voted on it (and HF lists papers a few days
  after arXiv does, so showing both would list it twice);
* any other paper is shown on the UTC day of its first version (``published``);
* a paper submitted here by id is also shown on the day it was submitted.

A paper the source withdrew (an OAI-PMH deletion, ``papers.withdrawn``) is left out of every
listing; its own page still opens and says so.

Within one range a paper appears once, on its latest day in the range. Votes are this site's
own votes plus the paper's Hugging Face upvotes (the highest count seen: HF counts only grow).

Only *listable* papers are listed (``LISTABLE``, the SQL twin of ``base.is_listable``): a record
a reader can open and place, with a date, at least one author and an arXiv id or a DOI. A
benchmark document or a title scraped from a listing page stays searchable by id but does not
crowd listings, trending or feeds.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import orjson

from ..errors import NotFoundError
from .base import FeedRow

__all__ = ["FeedMixin", "LISTABLE"]

# base.is_listable in SQL, over the ``papers`` row aliased ``p``. Namespaced ids (``seed:64``,
# ``scifact:4983``) hold a colon; arXiv ids never do.
LISTABLE = (
    "(p.withdrawn = 0 AND p.published IS NOT NULL AND p.published <> '' AND p.authors <> '[]' "
    "AND (instr(p.id, ':') = 0 OR p.doi IS NOT NULL))"
)

# Every paper listed in [:start, :end), once, with its day and the moment it appeared.
# Each row's ``at`` begins with its ``day`` (``day`` is ``at``'s first ten characters, or all of
# it), so ``max(at)`` is the moment of a row on the latest day: no bare column in the GROUP BY
# (an SQLite rule PostgreSQL refuses).
# ``{only}`` narrows each branch to some papers (trending candidates) before grouping.
_LISTED = """
WITH listed(pk, day, at) AS (
    SELECT paper_pk, day, day FROM hf_listings
     WHERE day >= :start AND day < :end {only_hf}
    UNION ALL
    SELECT pk, substr(published, 1, 10), published FROM papers
     WHERE published >= :start AND published < :end {only_papers}
       AND NOT EXISTS (SELECT 1 FROM hf_listings h WHERE h.paper_pk = papers.pk)
    UNION ALL
    SELECT paper_pk, substr(submitted_at, 1, 10), submitted_at FROM submissions
     WHERE submitted_at >= :start AND submitted_at < :end {only_hf}
),
one AS (
    SELECT l.pk AS pk, max(l.day) AS day, max(l.at) AS at FROM listed l
      JOIN papers p ON p.pk = l.pk WHERE {listable} GROUP BY l.pk
)
"""
_ALL = _LISTED.format(only_hf="", only_papers="", listable=LISTABLE)
# Papers that can have votes in the window: listed by HF with upvotes, voted on since the
# window began, or submitted in it. Far fewer than all the papers of the window.
_CANDIDATES = "WITH cand(pk) AS (" + (
    "SELECT paper_pk FROM hf_listings WHERE day >= :start AND day < :end AND upvotes > 0 "
    "UNION SELECT paper_pk FROM votes WHERE created_at >= :start "
    "UNION SELECT paper_pk FROM submissions WHERE submitted_at >= :start"
) + "), " + _LISTED.format(
    only_hf="AND paper_pk IN (SELECT pk FROM cand)",
    only_papers="AND pk IN (SELECT pk FROM cand)",
    listable=LISTABLE,
).replace("WITH listed", "listed", 1)

_VOTES = (
    "(SELECT count(*) FROM votes v WHERE v.paper_pk = {pk}) + "
    "coalesce((SELECT max(upvotes) FROM hf_listings h WHERE h.paper_pk = {pk}), 0)"
)
_EXCLUDE = "WHERE pk NOT IN (SELECT CAST(value AS BIGINT) FROM json_each(:exclude))"
_RECENT = "day DESC, at DESC, pk DESC"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_day(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()


class FeedMixin:
    # --- listings ------------------------------------------------------------------------
    def feed_entries(
        self,
        start_day: str,
        end_day: str,
        limit: int,
        offset: int = 0,
        order: str = "votes",
        exclude: list[int] | None = None,
    ) -> tuple[list[FeedRow], int]:
        where = _EXCLUDE if exclude else ""
        args = {
            "start": start_day,
            "end": end_day,
            "limit": limit,
            "offset": offset,
            "exclude": orjson.dumps(list(exclude or [])).decode(),
        }
        if order == "votes":  # votes are the sort key: count them for every paper
            sql = (
                f"{_ALL} SELECT pk, day, at, {_VOTES.format(pk='pk')} AS votes FROM one {where} "
                f"ORDER BY votes DESC, {_RECENT} LIMIT :limit OFFSET :offset"
            )
        elif order == "recent":  # take the page first, then count votes for it only
            sql = (
                f"{_ALL} SELECT pk, day, at, {_VOTES.format(pk='pk')} FROM ("
                f"SELECT pk, day, at FROM one {where} ORDER BY {_RECENT} "
                f"LIMIT :limit OFFSET :offset) page ORDER BY {_RECENT}"
            )
        else:
            raise ValueError(f"unknown order {order!r}")
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
            if offset == 0 and len(rows) < limit:
                total = len(rows)  # the page holds everything: no need to count
            else:
                total = conn.execute(f"{_ALL} SELECT count(*) FROM one {where}", args).fetchone()[0]
        return [FeedRow(*r) for r in rows], total

    def trending_candidates(self, start_day: str, end_day: str) -> list[FeedRow]:
        with self._read() as conn:
            rows = conn.execute(
                f"{_CANDIDATES} SELECT pk, day, at, votes FROM ("
                f"SELECT pk, day, at, {_VOTES.format(pk='pk')} AS votes FROM one) c WHERE votes > 0",
                {"start": start_day, "end": end_day},
            ).fetchall()
        return [FeedRow(*r) for r in rows]

    # A day with papers next to a given day: each query walks one index and stops at the
    # first row (ORDER BY ... LIMIT 1), so this stays cheap on any number of papers.
    _PREV = (
        "SELECT h.day FROM hf_listings h JOIN papers p ON p.pk = h.paper_pk "
        f"WHERE h.day < :d AND {LISTABLE} ORDER BY h.day DESC LIMIT 1",
        "SELECT substr(p.published, 1, 10) FROM papers p WHERE p.published < :d "
        f"AND NOT EXISTS (SELECT 1 FROM hf_listings h WHERE h.paper_pk = p.pk) AND {LISTABLE} "
        "ORDER BY p.published DESC LIMIT 1",
        "SELECT substr(s.submitted_at, 1, 10) FROM submissions s JOIN papers p ON p.pk = s.paper_pk "
        f"WHERE s.submitted_at < :d AND {LISTABLE} ORDER BY s.submitted_at DESC LIMIT 1",
    )
    _NEXT = (
        "SELECT h.day FROM hf_listings h JOIN papers p ON p.pk = h.paper_pk "
        f"WHERE h.day >= :d AND {LISTABLE} ORDER BY h.day LIMIT 1",
        "SELECT substr(p.published, 1, 10) FROM papers p WHERE p.published >= :d "
        f"AND NOT EXISTS (SELECT 1 FROM hf_listings h WHERE h.paper_pk = p.pk) AND {LISTABLE} "
        "ORDER BY p.published LIMIT 1",
        "SELECT substr(s.submitted_at, 1, 10) FROM submissions s JOIN papers p ON p.pk = s.paper_pk "
        f"WHERE s.submitted_at >= :d AND {LISTABLE} ORDER BY s.submitted_at LIMIT 1",
    )

    @staticmethod
    def _adjacent(conn, queries: tuple[str, ...], day: str, pick) -> str | None:
        found = []
        for q in queries:
            row = conn.execute(q, {"d": day}).fetchone()
            # A day is ten characters (YYYY-MM-DD); anything else is a malformed date.
            if row and row[0] and len(row[0]) == 10:
                found.append(row[0])
        return pick(found) if found else None

    def feed_day_bounds(self, day: str) -> tuple[str | None, str | None]:
        after = _next_day(day) if day < "9999-12-31" else "9999-12-31"
        with self._read() as conn:
            return (
                self._adjacent(conn, self._PREV, day, max),
                self._adjacent(conn, self._NEXT, after, min),
            )

    def feed_version(self) -> tuple:
        with self._read() as conn:
            return conn.execute(
                "SELECT (SELECT max(rev) FROM papers), "
                "(SELECT max(submitted_at) FROM submissions), "
                # Bumped on every vote and every vote taken back (add_vote here,
                # toggle_vote in store/sql_library.py).
                "(SELECT value FROM counters WHERE name = 'votes')"
            ).fetchone()

    def feed_recent_days(self, before_day: str, n: int) -> list[str]:
        days: list[str] = []
        with self._read() as conn:
            day = before_day
            while len(days) < n:
                prev = self._adjacent(conn, self._PREV, day, max)
                if prev is None:
                    break
                days.append(prev)
                day = prev
        return days

    @staticmethod
    def _category_where(category: str) -> tuple[str, tuple]:
        """A category (``cs.LG``, ``hep-th``) or a whole archive (``cs``: every ``cs.*``), as a
        condition on ``paper_categories c``. The archive is a range of the primary key
        (``'.'`` sorts just before ``'/'``), so both walk the index."""
        if "." in category:
            return "c.category = ?", (category,)
        return "(c.category = ? OR (c.category > ? AND c.category < ?))", (
            category, category + ".", category + "/",
        )  # fmt: skip

    # Walk the papers by date and keep those of the category (their ``categories`` text holds
    # it, or for an archive one of its categories) when the category is common enough that a
    # page fills after a few rows; else sort the category's own rows.
    _WALK_SHARE = 50  # walk when the category holds at least 1 paper in 50

    def category_entries(
        self, category: str, limit: int, offset: int = 0
    ) -> tuple[list[FeedRow], int]:
        where, args = self._category_where(category)
        # The same test on the papers row: its ``categories`` text holds the category, or for
        # an archive one of its categories (" cs." or the bare " cs ").
        cats = "(' ' || p.categories || ' ')"
        if "." in category:
            has, has_args = f"instr({cats}, ?) > 0", (f" {category} ",)
        else:
            has = f"(instr({cats}, ?) > 0 OR instr({cats}, ?) > 0)"
            has_args = (f" {category}.", f" {category} ")
        with self._read() as conn:
            c = conn
            # Exact count from the category index alone: its papers, less the (few) unlisted
            # ones, found through the partial index papers_unlisted.
            n = c.execute(f"SELECT count(DISTINCT c.paper_pk) FROM paper_categories c WHERE {where}",
                          args).fetchone()[0]  # fmt: skip
            unlisted = c.execute(
                f"SELECT count(*) FROM papers p INDEXED BY papers_unlisted WHERE NOT {LISTABLE} "
                f"AND {has}",
                has_args,
            ).fetchone()[0]
            stored = c.execute("SELECT coalesce(max(pk), 0) FROM papers").fetchone()[0]
            if n and n * self._WALK_SHARE >= stored:
                page = (
                    "SELECT p.pk AS pk, p.published AS pub FROM papers p INDEXED BY papers_published "
                    f"WHERE p.published IS NOT NULL AND {has} AND {LISTABLE} "
                    "ORDER BY p.published DESC, p.pk DESC LIMIT ? OFFSET ?"
                )
                page_args = has_args + (limit, offset)
            else:
                # A paper of two categories of one archive is listed once.
                page = (
                    "SELECT DISTINCT p.pk AS pk, p.published AS pub FROM paper_categories c "
                    f"JOIN papers p ON p.pk = c.paper_pk WHERE {where} AND {LISTABLE} "
                    "ORDER BY pub DESC, pk DESC LIMIT ? OFFSET ?"
                )
                page_args = args + (limit, offset)
            # The page first, then the votes of its papers only.
            rows = c.execute(
                "SELECT pk, substr(pub, 1, 10), pub, " + _VOTES.format(pk="pk") + f" FROM ({page}) page "
                "ORDER BY pub DESC, pk DESC",
                page_args,
            ).fetchall()
        return [FeedRow(*r) for r in rows], n - unlisted

    def has_category(self, category: str) -> bool:
        where, args = self._category_where(category)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT 1 FROM paper_categories c WHERE {where} LIMIT 1", args
            ).fetchone()
        return row is not None

    def feed_count(self, start_day: str, end_day: str) -> int:
        with self._read() as conn:
            return conn.execute(
                f"{_ALL} SELECT count(*) FROM one", {"start": start_day, "end": end_day}
            ).fetchone()[0]

    def listable_pks(self, pks: list[int]) -> set[int]:
        if not pks:
            return set()
        with self._read() as conn:
            rows = conn.execute(
                "SELECT p.pk FROM papers p WHERE p.pk IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) "
                f"AND {LISTABLE}",
                (orjson.dumps(list(pks)).decode(),),
            ).fetchall()
        return {r[0] for r in rows}

    def list_paper_pks(
        self, limit: int, before_pk: int | None = None, category: str | None = None
    ) -> list[int]:
        before = before_pk if before_pk is not None else 2**63 - 1
        with self._read() as conn:
            if category:
                rows = conn.execute(
                    "SELECT paper_pk FROM paper_categories WHERE category = ? AND paper_pk < ? "
                    "AND paper_pk NOT IN (SELECT pk FROM papers WHERE withdrawn = 1) ORDER BY paper_pk DESC LIMIT ?",
                    (category, before, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT pk FROM papers WHERE pk < ? AND withdrawn = 0 "
                    "ORDER BY pk DESC LIMIT ?",
                    (before, limit),
                ).fetchall()
        return [r[0] for r in rows]

    # --- votes -----------------------------------------------------------------------------
    def vote_counts(self, pks: list[int]) -> dict[int, int]:
        if not pks:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT CAST(value AS BIGINT), " + _VOTES.format(pk="CAST(value AS BIGINT)")
                + " FROM json_each(?)",
                (orjson.dumps(list(pks)).decode(),),
            ).fetchall()
        return dict(rows)

    def _pk_of(self, conn, paper_id: str) -> int:
        row = conn.execute("SELECT pk FROM papers WHERE id = ?", (paper_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no paper with id {paper_id!r}")
        return row[0]

    def add_vote(self, paper_id: str, user_id: int) -> bool:
        with self._write() as conn:
            pk = self._pk_of(conn, paper_id)
            cur = conn.execute(
                "INSERT OR IGNORE INTO votes (paper_pk, user_id, created_at) VALUES (?, ?, ?)",
                (pk, int(user_id), _now()),
            )
            if cur.rowcount == 1:
                self._bump_counter(conn, "votes")  # feed_version's signal of a new vote
            return cur.rowcount == 1

    # --- submissions -----------------------------------------------------------------
    def add_submission(
        self, paper_id: str, via: str, user_id: int | None = None
    ) -> tuple[str, bool]:
        with self._write() as conn:
            pk = self._pk_of(conn, paper_id)
            cur = conn.execute(
                "INSERT OR IGNORE INTO submissions (paper_pk, submitted_at, via, user_id) "
                "VALUES (?, ?, ?, ?)",
                (pk, _now(), via, user_id),
            )
            at = conn.execute(
                "SELECT submitted_at FROM submissions WHERE paper_pk = ?", (pk,)
            ).fetchone()[0]
            return at, cur.rowcount == 1
