"""The papers themselves, in SQL both backends speak: upserts (merge, content hash, side
tables, Hugging Face listings), reads and counts. Mixed into ``SQLiteStore`` and
``PostgresStore``; each gives ``self._read()`` (a connection to query) and ``self._write()``
(one transaction, writers serialised: SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock),
so "the next free pk" below is safe to compute in the transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import orjson

from ..models import Paper
from .base import (
    PaperRow,
    StoredPaper,
    UpsertResult,
    content_hash,
    dedupe_rows,
    merge_papers,
    prepare_paper,
)

__all__ = ["PapersMixin", "PAPER_COLS"]

PAPER_COLS = (
    "pk, id, version, title, abstract, authors, categories, primary_category, published, "
    "updated, doi, journal_ref, comments, links, sources, added_at, rev, withdrawn"
)
_COLS = PAPER_COLS


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PapersMixin:
    # --- papers --------------------------------------------------------------------------
    def upsert_rows(self, rows: list[PaperRow]) -> UpsertResult:
        if not rows:
            return UpsertResult()
        batch = dedupe_rows(rows)
        with self._write() as conn:
            return self._upsert_in_txn(conn, batch)

    def _upsert_in_txn(
        self,
        conn,
        batch: dict[str, PaperRow],
        prefer: dict[str, bool] | None = None,
    ) -> UpsertResult:
        """The body of upsert_rows, for callers that add their own writes to the same
        transaction (a harvest page and its checkpoint land together or not at all).
        ``prefer``: paper id -> merge_papers' ``prefer_new`` (OAI-PMH datestamps decide)."""
        result = UpsertResult()
        existing = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT id, pk, content_hash, sources FROM papers "
                "WHERE id IN (SELECT value FROM json_each(?))",
                (orjson.dumps(list(batch)).decode(),),
            )
        }
        rev = conn.execute("SELECT coalesce(max(rev), 0) + 1 FROM papers").fetchone()[0]
        inserts, updates, listings = [], [], []
        for pid, r in batch.items():
            ex = existing.get(pid)
            if ex is None:
                inserts.append(r)
                result.added += 1
                continue
            pk, old_hash, old_sources = ex
            sources = old_sources.split()
            if r.source and r.source not in sources:
                sources = sorted(sources + [r.source])
            own = [r.source] if r.source else []
            h = r.content_hash if sources == own else content_hash(r.to_paper(), sources)
            changed = False
            if h != old_hash:
                # Slow path: the incoming record differs from what is stored; merge them
                # and write only if the merged record differs from the stored one.
                old = self._row_to_paper(
                    conn.execute(f"SELECT {_COLS} FROM papers WHERE pk = ?", (pk,)).fetchone()
                )
                merged = merge_papers(old.paper, r.to_paper(), (prefer or {}).get(pid))
                h = content_hash(merged, sources)
                if h != old_hash:
                    updates.append((pk, prepare_paper(merged), sources, h, old.paper))
                    changed = True
            if r.listed_on and self._listing_changed(conn, pk, r):
                listings.append((pk, r))
                changed = True
            if changed:
                result.updated += 1
            else:
                result.unchanged += 1
        if inserts:
            self._insert(conn, inserts, _now(), rev)
        for pk, merged, sources, h, old_paper in updates:
            self._update(conn, pk, merged, sources, h, rev, old_paper)
        self._write_listings(conn, listings)
        return result

    @staticmethod
    def _listing_changed(conn, pk: int, r: PaperRow) -> bool:
        row = conn.execute(
            "SELECT upvotes, num_comments, fields FROM hf_listings WHERE paper_pk = ? AND day = ?",
            (pk, r.listed_on),
        ).fetchone()
        return row != (r.upvotes or 0, r.num_comments or 0, r.hf)

    @staticmethod
    def _write_listings(conn, listings: list[tuple[int, PaperRow]]) -> None:
        if listings:
            conn.executemany(
                "INSERT INTO hf_listings (paper_pk, day, upvotes, num_comments, fields) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (paper_pk, day) DO UPDATE SET "
                "upvotes = excluded.upvotes, num_comments = excluded.num_comments, "
                "fields = excluded.fields",
                [(pk, r.listed_on, r.upvotes or 0, r.num_comments or 0, r.hf) for pk, r in listings],
            )

    def _insert(self, conn, rows: list[PaperRow], now: str, rev: int) -> None:
        # We hold the write lock, so the next free keys are ours: no read-back query needed.
        first = conn.execute("SELECT coalesce(max(pk), 0) + 1 FROM papers").fetchone()[0]
        tail = (now, rev)
        # A PaperRow starts with the papers columns in this statement's order; a new paper's
        # ``sources`` is its own source.
        conn.executemany(
            "INSERT INTO papers (id, version, title, abstract, authors, categories, "
            "primary_category, published, updated, doi, journal_ref, comments, links, sources, "
            "content_hash, pk, added_at, rev) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [r[:15] + (pk,) + tail for pk, r in enumerate(rows, first)],
        )
        items = list(enumerate(rows, first))
        self._write_side_tables(conn, items)
        self._write_listings(conn, [(pk, r) for pk, r in items if r.listed_on])

    def _update(
        self, conn, pk: int, r: PaperRow, sources: list[str], h: bytes, rev: int, old: Paper
    ) -> None:
        conn.execute(
            "UPDATE papers SET version=?, title=?, abstract=?, authors=?, categories=?, "
            "primary_category=?, published=?, updated=?, doi=?, journal_ref=?, comments=?, "
            "links=?, sources=?, content_hash=?, rev=? WHERE pk=?",
            r[1:13] + (" ".join(sources), h, rev, pk),
        )
        # The side tables are keyed by name/category first: delete by the old record's values.
        conn.execute("DELETE FROM paper_authors WHERE paper_pk = ?", (pk,))
        conn.executemany(
            "DELETE FROM paper_categories WHERE category = ? AND paper_pk = ?",
            [(c, pk) for c in set(old.categories)],
        )
        self._write_side_tables(conn, [(pk, r)])

    @staticmethod
    def _write_side_tables(conn, items: list[tuple[int, PaperRow]]) -> None:
        conn.executemany(
            "INSERT INTO paper_authors (paper_pk, pos, key, name) VALUES (?, ?, ?, ?)",
            [
                (pk, i, key, name)
                for pk, r in items
                for i, (key, name) in enumerate(zip(r.author_keys, r.author_names))
            ],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO paper_categories (category, paper_pk) VALUES (?, ?)",
            [(c, pk) for pk, r in items for c in r.categories.split()],
        )

    # --- reading -------------------------------------------------------------------------
    @staticmethod
    def _row_to_paper(row) -> StoredPaper:
        (pk, pid, version, title, abstract, authors, cats, primary, published, updated, doi,
         jref, comments, links, sources, added_at, rev, withdrawn) = row  # fmt: skip
        paper = Paper(
            id=pid,
            title=title,
            abstract=abstract,
            authors=orjson.loads(authors),
            categories=cats.split(),
            primary_category=primary,
            version=version,
            published=published,
            updated=updated,
            doi=doi,
            journal_ref=jref,
            comments=comments,
            links=orjson.loads(links),
            source=sources.split()[0] if sources else "",
        )
        return StoredPaper(
            pk=pk, paper=paper, sources=sources.split(), added_at=added_at, rev=rev,
            withdrawn=bool(withdrawn),
        )  # fmt: skip

    @staticmethod
    def _with_listings(conn, papers: dict[int, StoredPaper]) -> dict[int, StoredPaper]:
        if papers:
            for pk, day, up, nc, hf in conn.execute(
                "SELECT paper_pk, day, upvotes, num_comments, fields FROM hf_listings "
                "WHERE paper_pk IN (SELECT CAST(value AS BIGINT) FROM json_each(?)) ORDER BY day",
                (orjson.dumps(list(papers)).decode(),),
            ):
                papers[pk].listings.append(
                    {"day": day, "upvotes": up, "num_comments": nc, "fields": orjson.loads(hf)}
                )
        return papers

    def get_paper(self, paper_id: str) -> StoredPaper | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLS} FROM papers WHERE id = ?", (paper_id,)).fetchone()
            if row is None:
                return None
            sp = self._row_to_paper(row)
            return self._with_listings(conn, {sp.pk: sp})[sp.pk]

    def get_papers_by_pk(self, pks: list[int]) -> dict[int, StoredPaper]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_COLS} FROM papers WHERE pk IN (SELECT CAST(value AS BIGINT) FROM json_each(?))",
                (orjson.dumps(list(pks)).decode(),),
            ).fetchall()
            return self._with_listings(conn, {r[0]: self._row_to_paper(r) for r in rows})

    def iter_changed(self, since_rev: int, batch: int = 1000) -> Iterator[list[StoredPaper]]:
        # Row-value paging: (rev, pk) strictly after (since_rev, +inf) means rev > since_rev.
        last_rev, last_pk = since_rev, 2**63 - 1
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    f"SELECT {_COLS} FROM papers WHERE (rev, pk) > (?, ?) ORDER BY rev, pk LIMIT ?",
                    (last_rev, last_pk, batch),
                ).fetchall()
            if not rows:
                return
            out = [self._row_to_paper(r) for r in rows]
            last_rev, last_pk = out[-1].rev, out[-1].pk
            yield out

    def max_rev(self) -> int:
        with self._read() as conn:
            return conn.execute("SELECT coalesce(max(rev), 0) FROM papers").fetchone()[0]

    def stats(self) -> dict:
        with self._read() as conn:
            c = conn
            total = c.execute("SELECT count(*) FROM papers").fetchone()[0]
            by_cat = dict(
                c.execute(
                    "SELECT category, count(*) FROM paper_categories GROUP BY category "
                    "ORDER BY count(*) DESC, category"
                ).fetchall()
            )
            by_primary: dict[str, int] = {}
            for prim, n in c.execute(
                "SELECT primary_category, count(*) FROM papers GROUP BY primary_category"
            ):
                arch = (prim or "(none)").split(".")[0]
                by_primary[arch] = by_primary.get(arch, 0) + n
            by_source: dict[str, int] = {}
            for sources, n in c.execute("SELECT sources, count(*) FROM papers GROUP BY sources"):
                for s in sources.split() or ["(unknown)"]:
                    by_source[s] = by_source.get(s, 0) + n
            listed = c.execute("SELECT count(DISTINCT paper_pk) FROM hf_listings").fetchone()[0]
        return {
            "papers": total,
            "by_primary_archive": dict(sorted(by_primary.items(), key=lambda kv: (-kv[1], kv[0]))),
            "by_category": by_cat,
            "by_source": dict(sorted(by_source.items(), key=lambda kv: (-kv[1], kv[0]))),
            "hf_listed": listed,
        }

