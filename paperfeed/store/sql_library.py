"""SQLite queries for what readers keep: the library (saved papers, notes, tags), ratings,
votes by reader, follows, saved searches, personal API and private-feed tokens, and the
cached "For you" models.

Mixed into ``SQLiteStore`` like the other feature mixins. Every method takes the reader's
id and touches only that reader's rows: a paper key or token id of another reader matches
nothing, so one reader can never read or change another's data through these methods.
Papers are named by their base id (callers normalise); an unknown id raises NotFoundError.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson

from ..errors import InputError, NotFoundError
from ..models import ApiToken, Follow, LibraryItem, SavedSearch, User
from .base import FeedRow

__all__ = ["LibraryMixin", "MAX_TAGS", "MAX_NOTE", "clean_tag"]

MAX_TAGS = 20  # per saved paper
MAX_NOTE = 10_000  # characters
_MAX_TAG_LEN = 40


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def clean_tag(tag: str) -> str:
    """A tag as stored: trimmed, inner spaces collapsed, lower-cased; InputError when empty,
    too long or holding characters that would make a poor URL segment."""
    t = " ".join((tag or "").split()).lower()
    if not t:
        raise InputError("a tag cannot be empty")
    if len(t) > _MAX_TAG_LEN:
        raise InputError(f"a tag has at most {_MAX_TAG_LEN} characters: {t[:60]!r}")
    if any(c in t for c in "/\\?#%<>\"'") or not t.isprintable():
        raise InputError(f"a tag cannot contain / \\ ? # % < > or quotes: {t!r}")
    return t


class LibraryMixin:
    # --- helpers -----------------------------------------------------------------------------
    def _paper_pk(self, conn, paper_id: str) -> int:
        row = conn.execute("SELECT pk FROM papers WHERE id = ?", (paper_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no paper with id {paper_id[:60]!r}")
        return row[0]

    @staticmethod
    def _bump_library(conn, user_id: int) -> None:
        conn.execute(
            "INSERT INTO reader_state (user_id, lib_rev) VALUES (?, 1) "
            "ON CONFLICT (user_id) DO UPDATE SET lib_rev = reader_state.lib_rev + 1",
            (int(user_id),),
        )

    @staticmethod
    def _bump_counter(conn, name: str) -> None:
        conn.execute(
            "INSERT INTO counters (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = counters.value + 1",
            (name,),
        )

    def counter(self, name: str) -> int:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0

    # --- library -------------------------------------------------------------------------------
    def save_paper(self, user_id: int, paper_id: str, note: str | None = None,
                   tags: list[str] | None = None) -> bool:  # fmt: skip
        """Save a paper (with an optional note and tags added to any it has); True if new."""
        clean = [clean_tag(t) for t in (tags or [])]
        if note is not None and len(note) > MAX_NOTE:
            raise InputError(f"a note has at most {MAX_NOTE} characters")
        with self._write() as conn:
            pk = self._paper_pk(conn, paper_id)
            cur = conn.execute(
                "INSERT OR IGNORE INTO library (user_id, paper_pk, saved_at, note) "
                "VALUES (?, ?, ?, ?)",
                (int(user_id), pk, _now(), note or ""),
            )
            if note is not None and cur.rowcount == 0:
                conn.execute(
                    "UPDATE library SET note = ? WHERE user_id = ? AND paper_pk = ?",
                    (note, int(user_id), pk),
                )
            self._add_tags(conn, int(user_id), pk, clean)
            self._bump_library(conn, user_id)
            return cur.rowcount == 1

    def _add_tags(self, conn, user_id: int, pk: int, tags: list[str]) -> None:
        if not tags:
            return
        have = conn.execute(
            "SELECT count(*) FROM library_tags WHERE user_id = ? AND paper_pk = ?", (user_id, pk)
        ).fetchone()[0]
        if have + len(set(tags)) > MAX_TAGS:
            raise InputError(f"a saved paper has at most {MAX_TAGS} tags")
        conn.executemany(
            "INSERT OR IGNORE INTO library_tags (user_id, paper_pk, tag) VALUES (?, ?, ?)",
            [(user_id, pk, t) for t in tags],
        )

    def unsave_paper(self, user_id: int, paper_id: str) -> bool:
        """Remove a paper (its note and tags go with it); False if it was not saved."""
        with self._write() as conn:
            pk = self._paper_pk(conn, paper_id)
            cur = conn.execute(
                "DELETE FROM library WHERE user_id = ? AND paper_pk = ?", (int(user_id), pk)
            )
            if cur.rowcount:
                self._bump_library(conn, user_id)
            return cur.rowcount == 1

    def set_note(self, user_id: int, paper_id: str, note: str) -> None:
        if len(note) > MAX_NOTE:
            raise InputError(f"a note has at most {MAX_NOTE} characters")
        with self._write() as conn:
            pk = self._paper_pk(conn, paper_id)
            cur = conn.execute(
                "UPDATE library SET note = ? WHERE user_id = ? AND paper_pk = ?",
                (note, int(user_id), pk),
            )
            if cur.rowcount == 0:
                raise NotFoundError("save the paper first: it is not in your library")

    def set_tags(self, user_id: int, paper_id: str, tags: list[str]) -> list[str]:
        """Replace a saved paper's tags; returns them as stored."""
        clean = sorted({clean_tag(t) for t in tags})
        if len(clean) > MAX_TAGS:
            raise InputError(f"a saved paper has at most {MAX_TAGS} tags")
        with self._write() as conn:
            pk = self._paper_pk(conn, paper_id)
            if not conn.execute(
                "SELECT 1 FROM library WHERE user_id = ? AND paper_pk = ?", (int(user_id), pk)
            ).fetchone():
                raise NotFoundError("save the paper first: it is not in your library")
            conn.execute(
                "DELETE FROM library_tags WHERE user_id = ? AND paper_pk = ?", (int(user_id), pk)
            )
            self._add_tags(conn, int(user_id), pk, clean)
            self._bump_library(conn, user_id)
        return clean

    def library(self, user_id: int, tag: str | None = None) -> list[LibraryItem]:
        """The reader's saved papers, newest saved first (only those tagged ``tag``)."""
        sql = (
            "SELECT l.paper_pk, p.id, p.title, l.saved_at, l.note FROM library l "
            "JOIN papers p ON p.pk = l.paper_pk WHERE l.user_id = ?"
        )
        args: list = [int(user_id)]
        if tag is not None:
            sql += (
                " AND EXISTS (SELECT 1 FROM library_tags t WHERE t.user_id = l.user_id "
                "AND t.paper_pk = l.paper_pk AND t.tag = ?)"
            )
            args.append(tag)
        sql += " ORDER BY l.saved_at DESC, l.paper_pk DESC"
        with self._read() as conn:
            rows = conn.execute(sql, args).fetchall()
            tags: dict[int, list[str]] = {}
            for pk, t in conn.execute(
                "SELECT paper_pk, tag FROM library_tags WHERE user_id = ? ORDER BY tag",
                (int(user_id),),
            ):
                tags.setdefault(pk, []).append(t)
        return [LibraryItem(pk, pid, title, at, note, tags.get(pk, [])) for pk, pid, title, at, note in rows]

    def library_pks(self, user_id: int) -> dict[int, list[str]]:
        """pk -> tags of every saved paper (cheap: for marking cards and training models)."""
        with self._read() as conn:
            out: dict[int, list[str]] = {
                r[0]: [] for r in conn.execute(
                    "SELECT paper_pk FROM library WHERE user_id = ?", (int(user_id),)
                )
            }  # fmt: skip
            for pk, t in conn.execute(
                "SELECT paper_pk, tag FROM library_tags WHERE user_id = ?", (int(user_id),)
            ):
                out.setdefault(pk, []).append(t)
        return out

    def list_tags(self, user_id: int) -> list[tuple[str, int]]:
        """(tag, papers) of the reader's tags, by name."""
        with self._read() as conn:
            return [
                (t, n)
                for t, n in conn.execute(
                    "SELECT tag, count(*) FROM library_tags WHERE user_id = ? GROUP BY tag "
                    "ORDER BY tag",
                    (int(user_id),),
                )
            ]

    def library_rev(self, user_id: int) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT lib_rev FROM reader_state WHERE user_id = ?", (int(user_id),)
            ).fetchone()
        return row[0] if row else 0

    # --- ratings -------------------------------------------------------------------------------
    def rate_paper(self, user_id: int, paper_id: str, value: int) -> None:
        """+1 "more like this", -1 "not for me", 0 takes the rating back."""
        if value not in (-1, 0, 1):
            raise InputError("a rating is 1 (more like this), -1 (not for me) or 0 (none)")
        with self._write() as conn:
            pk = self._paper_pk(conn, paper_id)
            if value == 0:
                conn.execute(
                    "DELETE FROM ratings WHERE user_id = ? AND paper_pk = ?", (int(user_id), pk)
                )
            else:
                conn.execute(
                    "INSERT INTO ratings (user_id, paper_pk, value, rated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (user_id, paper_pk) DO UPDATE SET value = excluded.value, "
                    "rated_at = excluded.rated_at",
                    (int(user_id), pk, value, _now()),
                )
            self._bump_library(conn, user_id)

    def ratings(self, user_id: int) -> dict[int, int]:
        """pk -> +1 / -1 of every paper the reader rated."""
        with self._read() as conn:
            return dict(
                conn.execute(
                    "SELECT paper_pk, value FROM ratings WHERE user_id = ?", (int(user_id),)
                ).fetchall()
            )

    # --- votes by reader -----------------------------------------------------------------------
    def toggle_vote(self, user_id: int, paper_id: str) -> bool:
        """Vote for a paper, or take the vote back; True when the reader now votes for it."""
        with self._write() as conn:
            pk = self._paper_pk(conn, paper_id)
            cur = conn.execute(
                "DELETE FROM votes WHERE paper_pk = ? AND user_id = ?", (pk, int(user_id))
            )
            voted = cur.rowcount == 0
            if voted:
                conn.execute(
                    "INSERT INTO votes (paper_pk, user_id, created_at) VALUES (?, ?, ?)",
                    (pk, int(user_id), _now()),
                )
            self._bump_counter(conn, "votes")
            return voted

    def user_votes(self, user_id: int, pks: list[int] | None = None) -> set[int]:
        """The papers (of ``pks``, or all) the reader voted for."""
        with self._read() as conn:
            if pks is None:
                rows = conn.execute(
                    "SELECT paper_pk FROM votes WHERE user_id = ?", (int(user_id),)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT paper_pk FROM votes WHERE user_id = ? AND paper_pk IN "
                    "(SELECT CAST(value AS BIGINT) FROM json_each(?))",
                    (int(user_id), orjson.dumps(list(pks)).decode()),
                ).fetchall()
        return {r[0] for r in rows}

    # --- follows -------------------------------------------------------------------------------
    def follow(self, user_id: int, kind: str, key: str, label: str) -> bool:
        if kind not in ("author", "category"):
            raise InputError("one follows an author or a category")
        if not key.strip() or len(key) > 300 or len(label) > 300:
            raise InputError("an author name or category is 1 to 300 characters")
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO follows (user_id, kind, key, label, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (int(user_id), kind, key, label, _now()),
            )
            return cur.rowcount == 1

    def unfollow(self, user_id: int, kind: str, key: str) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM follows WHERE user_id = ? AND kind = ? AND key = ?",
                (int(user_id), kind, key),
            )
            return cur.rowcount == 1

    def list_follows(self, user_id: int) -> list[Follow]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT kind, key, label, created_at FROM follows WHERE user_id = ? "
                "ORDER BY kind, label",
                (int(user_id),),
            ).fetchall()
        return [Follow(*r) for r in rows]

    # --- saved searches ------------------------------------------------------------------------
    def add_saved_search(self, user_id: int, query: str) -> SavedSearch:
        q = " ".join((query or "").split())
        if not q or len(q) > 500:
            raise InputError("a saved search is 1 to 500 characters")
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO saved_searches (user_id, query, created_at) VALUES (?, ?, ?)",
                (int(user_id), q, _now()),
            )
            row = conn.execute(
                "SELECT id, query, created_at FROM saved_searches WHERE user_id = ? AND query = ?",
                (int(user_id), q),
            ).fetchone()
        return SavedSearch(*row)

    def delete_saved_search(self, user_id: int, search_id: int) -> bool:
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM saved_searches WHERE id = ? AND user_id = ?",
                (int(search_id), int(user_id)),
            )
            return cur.rowcount == 1

    def list_saved_searches(self, user_id: int) -> list[SavedSearch]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, query, created_at FROM saved_searches WHERE user_id = ? ORDER BY id",
                (int(user_id),),
            ).fetchall()
        return [SavedSearch(*r) for r in rows]

    # --- API and private-feed tokens ---------------------------------------------------------
    def create_api_token(self, user_id: int, kind: str, value: str, label: str = "") -> ApiToken:
        """Store a token by its hash (the value itself is shown to the reader once)."""
        now = _now()
        with self._write() as conn:
            token_id = conn.execute(
                "INSERT INTO api_tokens (user_id, kind, token_hash, label, created_at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (int(user_id), kind, _hash(value), label[:100], now),
            ).fetchone()[0]
        return ApiToken(token_id, kind, label[:100], now)

    def api_token_user(self, kind: str, value: str) -> User | None:
        """The reader a token belongs to (and note its use), or None when unknown/revoked."""
        if not value or len(value) > 200:
            return None
        h = _hash(value)
        with self._read() as conn:
            row = conn.execute(
                "SELECT u.id, u.email, u.name, u.created_at, u.last_login_at, t.last_used_at "
                "FROM api_tokens t JOIN users u ON u.id = t.user_id "
                "WHERE t.token_hash = ? AND t.kind = ?",
                (h, kind),
            ).fetchone()
        if row is None:
            return None
        now = _now()
        if (row[5] or "")[:16] != now[:16]:  # at most one write a minute per token
            with self._write() as conn:
                conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?", (now, h))
        return User(*row[:5])

    def list_api_tokens(self, user_id: int, kind: str | None = None) -> list[ApiToken]:
        sql = "SELECT id, kind, label, created_at, last_used_at FROM api_tokens WHERE user_id = ?"
        args: list = [int(user_id)]
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
        return [ApiToken(*r) for r in rows]

    def revoke_api_token(self, user_id: int, token_id: int) -> bool:
        """Delete one of the reader's tokens; False when it is not theirs (or gone)."""
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM api_tokens WHERE id = ? AND user_id = ?", (int(token_id), int(user_id))
            )
            return cur.rowcount == 1

    def revoke_api_tokens(self, user_id: int, kind: str) -> int:
        with self._write() as conn:
            return conn.execute(
                "DELETE FROM api_tokens WHERE user_id = ? AND kind = ?", (int(user_id), kind)
            ).rowcount

    # --- "For you" models ------------------------------------------------------------------
    def get_reader_models(self, user_id: int) -> list[tuple[str, str, int, bytes, list[int]]]:
        """(interest, model_id, lib_rev, weights, positive pks) of the reader's cached models."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT interest, model_id, lib_rev, weights, positives FROM reader_models "
                "WHERE user_id = ? ORDER BY interest",
                (int(user_id),),
            ).fetchall()
        return [(i, m, r, w, orjson.loads(p)) for i, m, r, w, p in rows]

    def put_reader_models(
        self, user_id: int, models: list[tuple[str, str, int, bytes, list[int]]]
    ) -> None:
        """Replace the reader's cached models with ``models`` (same tuples as get_...)."""
        now = _now()
        with self._write() as conn:
            conn.execute("DELETE FROM reader_models WHERE user_id = ?", (int(user_id),))
            conn.executemany(
                "INSERT INTO reader_models (user_id, interest, model_id, lib_rev, weights, "
                "positives, trained_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (int(user_id), i, m, r, w, orjson.dumps([int(x) for x in p]).decode(), now)
                    for i, m, r, w, p in models
                ],
            )

    # --- papers for readers: windows, authors, categories, DOIs -----------------------------
    def window_pks(self, since: str, until: str | None = None) -> list[int]:
        """Papers that appeared on or after ``since`` (published, listed by Hugging Face or
        submitted here) and before ``until`` (ISO dates or times)."""
        end = until or "9999-12-31"
        with self._read() as conn:
            rows = conn.execute(
                "SELECT pk FROM papers WHERE published >= :s AND published < :e "
                "UNION SELECT paper_pk FROM hf_listings WHERE day >= :s AND day < :e "
                "UNION SELECT paper_pk FROM submissions WHERE submitted_at >= :s "
                "AND submitted_at < :e",
                {"s": since, "e": end},
            ).fetchall()
        return sorted(r[0] for r in rows)

    def papers_by_authors(self, keys: list[str], pks: list[int] | None = None) -> dict[int, list[str]]:
        """pk -> the given author keys among its authors (only papers of ``pks`` if given)."""
        if not keys:
            return {}
        sql = "SELECT paper_pk, key FROM paper_authors WHERE key IN (SELECT value FROM json_each(?))"
        args = [orjson.dumps(list(keys)).decode()]
        out: dict[int, list[str]] = {}
        with self._read() as conn:
            for pk, key in conn.execute(sql, args):
                out.setdefault(pk, []).append(key)
        if pks is not None:
            wanted = set(pks)
            out = {pk: v for pk, v in out.items() if pk in wanted}
        return out

    def papers_in_categories(self, categories: list[str], pks: list[int]) -> dict[int, list[str]]:
        """pk -> which of ``categories`` each paper of ``pks`` is in (exact or whole archive:
        ``cs`` matches cs.LG)."""
        if not categories or not pks:
            return {}
        out: dict[int, list[str]] = {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT paper_pk, category FROM paper_categories WHERE paper_pk IN "
                "(SELECT CAST(value AS BIGINT) FROM json_each(?))",
                (orjson.dumps(list(pks)).decode(),),
            ).fetchall()
        for pk, cat in rows:
            for c in categories:
                if cat == c or cat.startswith(c + "."):
                    if c not in out.setdefault(pk, []):
                        out[pk].append(c)
        return out

    def author_entries(self, key: str, limit: int, offset: int = 0) -> tuple[list[FeedRow], int]:
        """An author's papers (by folded name), newest published first, and how many."""
        from .sql_feed import _VOTES

        with self._read() as conn:
            rows = conn.execute(
                "SELECT pk, substr(pub, 1, 10), pub, " + _VOTES.format(pk="pk") + " FROM ("
                "SELECT DISTINCT p.pk AS pk, coalesce(p.published, '') AS pub "
                "FROM paper_authors a JOIN papers p ON p.pk = a.paper_pk WHERE a.key = ? "
                "ORDER BY pub DESC, pk DESC LIMIT ? OFFSET ?) AS page ORDER BY pub DESC, pk DESC",
                (key, limit, offset),
            ).fetchall()
            total = conn.execute(
                "SELECT count(DISTINCT paper_pk) FROM paper_authors WHERE key = ?", (key,)
            ).fetchone()[0]
        return [FeedRow(*r) for r in rows], total

    def author_name(self, key: str) -> str | None:
        """The most common spelling of an author's name for a folded key, or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT name FROM paper_authors WHERE key = ? GROUP BY name "
                "ORDER BY count(*) DESC, name LIMIT 1",
                (key,),
            ).fetchone()
        return row[0] if row else None

    def ids_by_doi(self, dois: list[str]) -> dict[str, str]:
        """lower-cased DOI -> paper id for the DOIs stored."""
        if not dois:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT lower(doi), id FROM papers WHERE doi IS NOT NULL AND lower(doi) IN "
                "(SELECT lower(value) FROM json_each(?))",
                (orjson.dumps(list(dois)).decode(),),
            ).fetchall()
        return dict(rows)

    # --- privacy ---------------------------------------------------------------------------------
    def export_user(self, user_id: int) -> dict:
        """Everything stored about a reader, as plain JSON values (tokens as metadata only:
        their values are never stored)."""
        u = self.get_user(user_id)
        if u is None:
            raise NotFoundError(f"no reader with id {user_id}")
        uid = int(user_id)
        with self._read() as conn:
            q = conn.execute

            def ids(sql: str) -> list:
                return [list(r) for r in q(sql, (uid,)).fetchall()]

            out = {
                "user": {"id": u.id, "email": u.email, "name": u.name,
                         "created_at": u.created_at, "last_login_at": u.last_login_at},
                "votes": [
                    {"id": pid, "at": at}
                    for pid, at in ids(
                        "SELECT p.id, v.created_at FROM votes v JOIN papers p ON p.pk = v.paper_pk "
                        "WHERE v.user_id = ? ORDER BY v.created_at"
                    )
                ],
                "ratings": [
                    {"id": pid, "value": v, "at": at}
                    for pid, v, at in ids(
                        "SELECT p.id, r.value, r.rated_at FROM ratings r "
                        "JOIN papers p ON p.pk = r.paper_pk WHERE r.user_id = ? ORDER BY r.rated_at"
                    )
                ],
                "shown": [
                    {"id": pid, "at": at, "via": via}
                    for pid, at, via in ids(
                        "SELECT p.id, s.shown_at, s.via FROM shown_papers s "
                        "JOIN papers p ON p.pk = s.paper_pk WHERE s.user_id = ? ORDER BY s.shown_at"
                    )
                ],
                "submissions": [
                    {"id": pid, "at": at}
                    for pid, at in ids(
                        "SELECT p.id, s.submitted_at FROM submissions s "
                        "JOIN papers p ON p.pk = s.paper_pk WHERE s.user_id = ?"
                    )
                ],
                "sessions": [
                    {"created_at": c, "expires_at": e}
                    for c, e in ids("SELECT created_at, expires_at FROM sessions WHERE user_id = ?")
                ],
            }  # fmt: skip
        out["library"] = [
            {"id": it.paper_id, "title": it.title, "saved_at": it.saved_at, "note": it.note,
             "tags": it.tags}
            for it in self.library(uid)
        ]  # fmt: skip
        out["follows"] = [
            {"kind": f.kind, "key": f.key, "label": f.label, "created_at": f.created_at}
            for f in self.list_follows(uid)
        ]
        out["saved_searches"] = [
            {"query": s.query, "created_at": s.created_at} for s in self.list_saved_searches(uid)
        ]
        out["tokens"] = [
            {"kind": t.kind, "label": t.label, "created_at": t.created_at,
             "last_used_at": t.last_used_at}
            for t in self.list_api_tokens(uid)
        ]  # fmt: skip
        return out
