"""PostgreSQL's faster way to add many papers: COPY instead of row-by-row INSERTs.

The shared upsert (sql_papers.py) decides what is new, changed or unchanged; only the writing
of new papers and their author, category and listing rows is replaced here. COPY streams a
batch in one round trip per table, where executemany sends one statement per row.
"""

from __future__ import annotations

from .base import PaperRow

__all__ = ["PgPapersMixin"]

# Below this many rows the statements are cheaper than setting up a COPY.
_COPY_MIN_ROWS = 32


class PgPapersMixin:
    def _insert(self, conn, rows: list[PaperRow], now: str, rev: int) -> None:
        if len(rows) < _COPY_MIN_ROWS:
            return super()._insert(conn, rows, now, rev)
        # We hold the writer lock (see postgres.py), so the next free keys are ours.
        first = conn.execute("SELECT coalesce(max(pk), 0) + 1 FROM papers").fetchone()[0]
        items = list(enumerate(rows, first))
        _copy(
            conn,
            "papers (id, version, title, abstract, authors, categories, primary_category, "
            "published, updated, doi, journal_ref, comments, links, sources, content_hash, pk, "
            "added_at, rev)",
            (r[:15] + (pk, now, rev) for pk, r in items),
        )
        self._write_side_tables(conn, items)
        self._write_listings(conn, [(pk, r) for pk, r in items if r.listed_on])

    def _write_side_tables(self, conn, items: list[tuple[int, PaperRow]]) -> None:
        if len(items) < _COPY_MIN_ROWS:
            return super()._write_side_tables(conn, items)
        _copy(
            conn,
            "paper_authors (paper_pk, pos, key, name)",
            (
                (pk, i, key, name)
                for pk, r in items
                for i, (key, name) in enumerate(zip(r.author_keys, r.author_names))
            ),
        )
        # A record may name a category twice; the table holds each once per paper (the
        # shared code's INSERT OR IGNORE).
        _copy(
            conn,
            "paper_categories (category, paper_pk)",
            ((c, pk) for pk, r in items for c in dict.fromkeys(r.categories.split())),
        )


def _copy(conn, target: str, rows) -> None:
    with conn.raw.cursor() as cur:
        with cur.copy(f"COPY {target} FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)
