"""Schema migrations for the SQLite store: named, applied in order, each in one transaction,
and recorded in ``schema_migrations`` so a database is upgraded exactly once per step.

Add a step by appending ``(name, sql)`` to ``MIGRATIONS``; never edit a step that has shipped.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

__all__ = ["MIGRATIONS", "apply_migrations", "applied_migrations"]

_PAPERS = """
CREATE TABLE papers (
    pk INTEGER PRIMARY KEY,          -- internal integer key (vector index labels use it)
    id TEXT NOT NULL UNIQUE,         -- base arXiv id or namespaced id, no version
    version INTEGER,                 -- latest version seen, NULL when unknown
    title TEXT NOT NULL,
    abstract TEXT NOT NULL DEFAULT '',
    authors TEXT NOT NULL DEFAULT '[]',     -- JSON array, in the paper's order
    categories TEXT NOT NULL DEFAULT '',    -- space separated, primary first
    primary_category TEXT,
    published TEXT,                  -- ISO 8601 UTC
    updated TEXT,
    doi TEXT,
    journal_ref TEXT,
    comments TEXT,
    links TEXT NOT NULL DEFAULT '{}',       -- JSON object
    sources TEXT NOT NULL DEFAULT '',       -- space separated set of importers
    content_hash BLOB NOT NULL,      -- lets a re-import skip unchanged records cheaply
    added_at TEXT NOT NULL,          -- when this site first stored it
    rev INTEGER NOT NULL             -- bumped on every change; indexers follow it
);
CREATE INDEX papers_rev ON papers(rev);
CREATE INDEX papers_published ON papers(published);

-- Authors in order; ``key`` is the folded name used to search and follow an author.
CREATE TABLE paper_authors (
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    pos INTEGER NOT NULL,
    name TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (paper_pk, pos)
) WITHOUT ROWID;
CREATE INDEX paper_authors_key ON paper_authors(key);

CREATE TABLE paper_categories (
    category TEXT NOT NULL,
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    PRIMARY KEY (category, paper_pk)
) WITHOUT ROWID;

-- Hugging Face Daily Papers listings: a trending signal, one row per paper and day listed.
CREATE TABLE hf_listings (
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    day TEXT NOT NULL,
    upvotes INTEGER NOT NULL DEFAULT 0,
    num_comments INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (paper_pk, day)
) WITHOUT ROWID;
CREATE INDEX hf_listings_day ON hf_listings(day);
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_papers", _PAPERS),
    # --- search (vectors) migrations: append below, names "01xx_..." ---
    # --- harvest (checkpoints) migrations: append below, names "02xx_..." ---
    # --- web (votes, submissions, pending subscriptions) migrations: append below, "03xx_..." ---
]


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    _ensure_table(conn)
    return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply every pending step; returns the names applied now. Safe to call concurrently:
    each step runs under BEGIN IMMEDIATE and re-checks whether another process applied it."""
    done = set(applied_migrations(conn))
    applied = []
    # Feature steps are numbered by feature (01xx search, 02xx harvest ...); apply in name order.
    for name, sql in sorted(MIGRATIONS):
        if name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            # executescript would COMMIT first; run statements one by one inside our transaction.
            for stmt in _statements(sql):
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (name, datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def _statements(sql: str) -> list[str]:
    out, buf = [], []
    for line in sql.splitlines():
        buf.append(line)
        if sqlite3.complete_statement("\n".join(buf)):
            stmt = "\n".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
    return out
