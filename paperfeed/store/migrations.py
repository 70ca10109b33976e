"""Schema migrations for the SQLite store: named, applied in order, each in one transaction,
and recorded in ``schema_migrations`` so a database is upgraded exactly once per step.

Add a step by appending ``(name, sql)`` to ``MIGRATIONS``; never edit a step that has shipped.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

__all__ = ["MIGRATIONS", "DEFERRED_INDEXES", "apply_migrations", "applied_migrations"]

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
-- Keyed by (key, paper) so "papers by this author" is one range scan and the import writes
-- one B-tree per author row, not a table plus an index.
CREATE TABLE paper_authors (
    key TEXT NOT NULL,
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    pos INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (key, paper_pk, pos)
) WITHOUT ROWID;

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

# Authors clustered by paper instead of by name. An import then appends author rows instead
# of inserting them all over a name-ordered B-tree (with arXiv's long tail of names, nearly
# every batch touched every leaf page), and the by-name index can be built in one sorted pass
# after a bulk import (see SQLiteStore.bulk_import). "Papers by this author" is one range
# scan of that index.
_AUTHORS_BY_PAPER = """
CREATE TABLE paper_authors_by_paper (
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    pos INTEGER NOT NULL,            -- 0-based place in the paper's author list
    key TEXT NOT NULL,               -- the folded name (store.base.author_key)
    name TEXT NOT NULL,
    PRIMARY KEY (paper_pk, pos)
) WITHOUT ROWID;
INSERT INTO paper_authors_by_paper (paper_pk, pos, key, name)
    SELECT paper_pk, pos, key, name FROM paper_authors ORDER BY paper_pk, pos;
DROP TABLE paper_authors;
ALTER TABLE paper_authors_by_paper RENAME TO paper_authors;
CREATE INDEX paper_authors_key ON paper_authors(key);
"""

# Harvest checkpoints: one row per resumable harvest. A page's papers and the row's new token
# are written in one transaction, so the row always says exactly where to go on.
_HARVEST_STATE = """
CREATE TABLE harvest_state (
    name TEXT PRIMARY KEY,           -- e.g. arxiv-oai:cs:arXiv (incremental) or with a window
    params TEXT NOT NULL DEFAULT '{}',      -- JSON: what was asked for (set, format, ...)
    token TEXT,                      -- resumptionToken for the next page; NULL: start or done
    window_from TEXT,                -- YYYY-MM-DD
    window_until TEXT,
    pages INTEGER NOT NULL DEFAULT 0,
    records INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0,    -- 1 only once the server sent an empty token
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

# Harvest freshness. ``withdrawn``: the source deleted the record (OAI-PMH
# ``<header status="deleted">``); the paper stays stored but leaves the listings. The partial
# index holds only withdrawn papers, so listings exclude them with a lookup in a tiny index.
# ``oai_datestamp``: the header datestamp of the latest OAI-PMH record applied to the paper, so
# a correction (newer datestamp, same version) wins and an older copy never rolls it back.
# ``harvest_sources``: per source (an arXiv set, hf-daily, arxiv-api) when it last succeeded
# and last failed, and why, for `harvest status` and the site's footer.
_HARVEST_FRESHNESS = """
ALTER TABLE papers ADD COLUMN withdrawn INTEGER NOT NULL DEFAULT 0;
ALTER TABLE papers ADD COLUMN oai_datestamp TEXT;
CREATE INDEX papers_withdrawn ON papers(pk) WHERE withdrawn = 1;
CREATE TABLE harvest_sources (
    source TEXT PRIMARY KEY,         -- arxiv-oai:<set>, hf-daily, arxiv-api
    last_success_at TEXT,            -- ISO 8601 UTC of the last harvest that completed
    last_failure_at TEXT,            -- ... and of the last one that failed
    last_error TEXT                  -- why that one failed
);
"""

# Web: this site's own votes (user accounts come later; a user votes once per paper), papers
# submitted by id (they join the list of the day they were submitted), and subscription
# requests recorded as pending until the digest feature confirms and sends them.
_WEB = """
CREATE TABLE votes (
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    user_id INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (paper_pk, user_id)
);
CREATE INDEX votes_created ON votes(created_at);

CREATE TABLE submissions (
    paper_pk INTEGER PRIMARY KEY REFERENCES papers(pk) ON DELETE CASCADE,
    submitted_at TEXT NOT NULL,      -- ISO 8601 UTC; the paper is listed on this day
    via TEXT NOT NULL DEFAULT ''     -- arxiv-api (fetched) or local (already stored)
);
CREATE INDEX submissions_at ON submissions(submitted_at);

CREATE TABLE subscriptions (
    email TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',  -- the digest feature confirms and activates
    source TEXT NOT NULL DEFAULT 'web'
);
"""

# Hugging Face's own fields of a listing (AI summary and keywords, GitHub repository and stars,
# project page, organisation) as one JSON object: they are shown, never queried, and change
# with each listing like the upvotes beside them.
_HF_FIELDS = """
ALTER TABLE hf_listings ADD COLUMN fields TEXT NOT NULL DEFAULT '{}';
"""

# Papers that are not listable (store.base.is_listable: withdrawn, no date, no authors, or a
# namespaced id without a DOI). Few or none in an arXiv database, so the index is tiny and an import of
# listable papers adds nothing to it; it lets a category count subtract them without reading
# every paper row of the category. The condition is sql_feed.LISTABLE, spelled out here
# because a shipped step never changes.
_UNLISTED_INDEX = """
CREATE INDEX papers_unlisted ON papers(pk) WHERE NOT (withdrawn = 0 AND published IS NOT NULL
    AND published <> '' AND authors <> '[]' AND (instr(id, ':') = 0 OR doi IS NOT NULL));
"""

# Search: stored vectors per embedding model (the source the vector indexes are rebuilt
# from), and checkpoints of resumable indexing. ``seq`` orders writes per model so a vector
# index beside the database can follow new rows incrementally; ``text_hash`` lets a paper
# whose embedded text did not change keep its vector when other metadata changes.
_EMBEDDINGS = """
CREATE TABLE embedding_models (
    id INTEGER PRIMARY KEY,
    model_id TEXT NOT NULL UNIQUE,   -- model + backend + settings, as the embedder names it
    dim INTEGER NOT NULL
);
CREATE TABLE embeddings (
    model INTEGER NOT NULL REFERENCES embedding_models(id) ON DELETE CASCADE,
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    embedded_rev INTEGER NOT NULL,   -- the paper's rev when it was embedded
    text_hash BLOB NOT NULL,
    vector BLOB NOT NULL,            -- float32 little-endian, L2-normalised
    PRIMARY KEY (model, paper_pk)
);
CREATE INDEX embeddings_seq ON embeddings(model, seq);
CREATE TABLE search_checkpoints (
    name TEXT PRIMARY KEY,           -- e.g. embed:<model_id>
    value INTEGER NOT NULL
);
"""

# Readers: one identity per email address (a digest subscriber is a reader too). Sessions and
# API tokens are stored as SHA-256 hashes, so a copy of the database signs nobody in. Signed
# links (sign-in, confirm, unsubscribe) carry a random nonce; ``used_tokens`` makes the
# single-use ones single-use. ``throttle`` holds the recent hits of every rate limit
# (sign-in mails, subscriptions, submissions) so limits hold across worker processes.
# ``shown_papers`` records what a reader has been sent, so no paper reaches them twice.
_READERS = """
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,   -- store.base.normalize_email form
    name TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_login_at TEXT
);
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,        -- sha256 hex of the cookie value
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE used_tokens (
    nonce TEXT PRIMARY KEY,
    purpose TEXT NOT NULL,
    used_at TEXT NOT NULL,
    expires_at TEXT NOT NULL         -- the row may be purged after this
);
CREATE TABLE throttle (
    key TEXT NOT NULL,               -- e.g. login:addr:<email>, login:ip:<ip>
    at REAL NOT NULL                 -- unix time of the hit
);
CREATE INDEX throttle_key ON throttle(key, at);
CREATE TABLE shown_papers (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    shown_at TEXT NOT NULL,
    via TEXT NOT NULL DEFAULT 'digest',
    PRIMARY KEY (user_id, paper_pk)
) WITHOUT ROWID;
ALTER TABLE submissions ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE SET NULL;
"""

# Digests. A subscription is a reader's (users, one identity per address): pending until the
# confirmation link's page POSTs, then active until unsubscribed. ``seen_pk``: papers with
# keys up to it were already "new" for an earlier digest, so a day with no new papers sends
# nothing. ``outbox``: one row per (digest, reader), written with the composed message BEFORE
# anything is sent; a sender claims a row by moving it from queued to sending in one guarded
# UPDATE, and marks it sent only once the SMTP server accepted it. A row left "sending" is a
# mail whose fate is unknown (the sender died while the server answered): reported, never
# resent on its own. The pending addresses of the old ``subscriptions`` table move here.
_DIGEST = """
CREATE TABLE digest_subscriptions (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    status TEXT NOT NULL DEFAULT 'pending',   -- pending | active | unsubscribed
    source TEXT NOT NULL DEFAULT 'web',       -- web | api | cli | account
    frequency TEXT NOT NULL DEFAULT 'daily',  -- daily | weekly
    weekday INTEGER NOT NULL DEFAULT 0,       -- weekly: 0 Monday .. 6 Sunday
    send_hour INTEGER NOT NULL DEFAULT 6,     -- not before this hour, the reader's time
    timezone TEXT NOT NULL DEFAULT 'UTC',
    max_papers INTEGER NOT NULL DEFAULT 10,
    min_score REAL,                           -- NULL: no threshold
    sections TEXT NOT NULL DEFAULT 'trending follows searches foryou',
    created_at TEXT NOT NULL,
    confirmed_at TEXT,
    unsubscribed_at TEXT,
    last_digest_on TEXT,                      -- the reader's local date of the last digest
    last_digest_at TEXT,
    seen_pk INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX digest_subscriptions_status ON digest_subscriptions(status);
CREATE TABLE digests (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    forced INTEGER NOT NULL DEFAULT 0,
    max_pk INTEGER NOT NULL DEFAULT 0         -- newest paper key when it was composed
);
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    digest_id INTEGER NOT NULL REFERENCES digests(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    message BLOB NOT NULL,                    -- the composed mail; every try sends these bytes
    paper_pks TEXT NOT NULL DEFAULT '[]',     -- JSON: recorded in shown_papers when claimed
    status TEXT NOT NULL DEFAULT 'queued',    -- queued | sending | sent | failed | cancelled
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,  -- unix time
    claimed_by TEXT,                          -- host:pid of the sender that claimed it
    claimed_at REAL,
    sent_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (digest_id, user_id)
);
CREATE INDEX outbox_queue ON outbox(status, attempts, id);  -- the claim order: one index step
CREATE INDEX outbox_user ON outbox(user_id, status);
INSERT OR IGNORE INTO users (email, created_at) SELECT email, created_at FROM subscriptions;
INSERT OR IGNORE INTO digest_subscriptions (user_id, status, source, created_at)
    SELECT u.id, 'pending', s.source, s.created_at
    FROM subscriptions s JOIN users u ON u.email = s.email;
DROP TABLE subscriptions;
"""

# Readers' own data: the library (saved papers with a note), tags on saved papers, ratings
# ("more like this" +1, "not for me" -1), follows (authors by folded name, categories), saved
# searches, personal API tokens and private-feed tokens (stored as SHA-256 hashes), and the
# per-reader "For you" models. ``reader_state.lib_rev`` is bumped on every change that
# could change a model (save, unsave, tags, ratings), so a cached model is retrained only
# when its reader's library moved. ``counters`` holds cheap change counters for caches: a
# vote taken back changes ``votes`` even though ``max(rowid)`` of votes may not change.
# Every table is keyed on user_id with ON DELETE CASCADE: deleting the reader deletes it all.
_LIBRARY = """
CREATE TABLE library (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    saved_at TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, paper_pk)
) WITHOUT ROWID;
CREATE TABLE library_tags (
    user_id INTEGER NOT NULL,
    paper_pk INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_pk, tag),
    FOREIGN KEY (user_id, paper_pk) REFERENCES library(user_id, paper_pk) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE ratings (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    paper_pk INTEGER NOT NULL REFERENCES papers(pk) ON DELETE CASCADE,
    value INTEGER NOT NULL CHECK (value IN (-1, 1)),
    rated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, paper_pk)
) WITHOUT ROWID;
CREATE TABLE follows (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('author', 'category')),
    key TEXT NOT NULL,               -- author_key() of the name, or the category
    label TEXT NOT NULL,             -- the name as the reader saw it
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, kind, key)
) WITHOUT ROWID;
CREATE TABLE saved_searches (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    query TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, query)
);
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('api', 'feed')),
    token_hash TEXT NOT NULL UNIQUE, -- sha256 hex of the token
    label TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE TABLE reader_state (
    user_id INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    lib_rev INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE reader_models (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    interest TEXT NOT NULL,          -- a tag, or '' for everything untagged
    model_id TEXT NOT NULL,          -- the embedding model the weights are for
    lib_rev INTEGER NOT NULL,        -- reader_state.lib_rev when trained
    weights BLOB NOT NULL,           -- float32 coefficients, then the intercept
    positives TEXT NOT NULL,         -- JSON list of the positive paper keys (for reasons)
    trained_at TEXT NOT NULL,
    PRIMARY KEY (user_id, interest)
) WITHOUT ROWID;
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE INDEX votes_user ON votes(user_id);
-- Reference-manager imports look papers up by DOI (case-insensitive, as DOIs are).
CREATE INDEX papers_doi ON papers(lower(doi)) WHERE doi IS NOT NULL;
"""

# `paperfeed copy` (store/copy.py): where a copy INTO this database stands, so one killed
# midway goes on from its last committed batch. One row per copied table (its last key in
# the table's key order, as JSON) and one row named '' for the copy as a whole (which source;
# done once every table matched the source's counts and the papers' checksum).
_COPY_PROGRESS = """
CREATE TABLE copy_progress (
    tbl TEXT PRIMARY KEY,            -- a copied table, or '' for the copy as a whole
    source TEXT NOT NULL,            -- the database copied from (path, or URL without password)
    last_key TEXT,                   -- JSON: key of the last row copied; NULL: none yet
    rows INTEGER NOT NULL DEFAULT 0, -- rows copied so far
    done INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
"""

MIGRATIONS: list[tuple[str, str]] = [
    ("0001_papers", _PAPERS),
    ("0002_paper_authors_by_paper", _AUTHORS_BY_PAPER),
    # --- search (vectors) migrations: append below, names "01xx_..." ---
    ("0101_embeddings", _EMBEDDINGS),
    # --- harvest (checkpoints) migrations: append below, names "02xx_..." ---
    ("0201_harvest_state", _HARVEST_STATE),
    ("0202_harvest_withdrawn_datestamps_sources", _HARVEST_FRESHNESS),
    # --- web (votes, submissions, pending subscriptions) migrations: append below, "03xx_..." ---
    ("0301_web_votes_submissions_subscriptions", _WEB),
    ("0302_hf_listing_fields", _HF_FIELDS),
    ("0303_papers_unlisted_index", _UNLISTED_INDEX),
    # --- readers (accounts, library, follows, saved searches) migrations: "04xx_..." ---
    ("0401_readers_users_sessions_tokens", _READERS),
    ("0402_readers_library_follows_tokens", _LIBRARY),
    # --- digest (subscriptions, digests, outbox) migrations: "05xx_..." ---
    ("0501_digest_subscriptions_outbox", _DIGEST),
    # --- store (copy between databases) migrations: "06xx_..." ---
    ("0601_copy_progress", _COPY_PROGRESS),
]


# Indexes a bulk import may drop and build again at its end (SQLiteStore.bulk_import): name
# and the statement that makes it, exactly as the migrations above made it.
DEFERRED_INDEXES: list[tuple[str, str]] = [
    ("paper_authors_key", "CREATE INDEX IF NOT EXISTS paper_authors_key ON paper_authors(key)"),
    # Half of all snapshot records carry a DOI: inserting each lower(doi) into a B-tree in
    # random order cost ~10% of a bulk import; one sorted build at the end is far cheaper.
    (
        "papers_doi",
        "CREATE INDEX IF NOT EXISTS papers_doi ON papers(lower(doi)) WHERE doi IS NOT NULL",
    ),
]


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    _ensure_table(conn)
    return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]


def apply_migrations(
    conn: sqlite3.Connection, migrations: list[tuple[str, str]] | None = None
) -> list[str]:
    """Apply every pending step (of ``migrations``, by default all); returns the names applied
    now. Safe to call concurrently: each step runs under BEGIN IMMEDIATE and re-checks whether
    another process applied it."""
    done = set(applied_migrations(conn))
    applied = []
    # Feature steps are numbered by feature (01xx search, 02xx harvest ...); apply in name order.
    for name, sql in sorted(MIGRATIONS if migrations is None else migrations):
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
