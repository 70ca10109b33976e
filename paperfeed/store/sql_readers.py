"""Readers' identity rows: users, sessions, single-use token nonces, rate-limit hits and the
papers each reader has been shown. The library, follows and saved searches build on these
(their own mixins); nothing here knows about the web or mail."""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

from ..errors import NotFoundError
from ..models import User
from .base import normalize_email

__all__ = ["ReadersMixin"]

_USER_COLS = "id, email, name, created_at, last_login_at"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _user(row) -> User:
    return User(*row)


class ReadersMixin:
    # --- users -----------------------------------------------------------------------------
    def get_or_create_user(self, email: str) -> tuple[User, bool]:
        """The reader with this address (compared case-insensitively), created when new."""
        address = normalize_email(email)
        with self._write() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO users (email, created_at) VALUES (?, ?)", (address, _now())
            )
            row = conn.execute(
                f"SELECT {_USER_COLS} FROM users WHERE email = ?", (address,)
            ).fetchone()
        return _user(row), cur.rowcount == 1

    def get_user(self, user_id: int) -> User | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLS} FROM users WHERE id = ?", (int(user_id),)
            ).fetchone()
        return _user(row) if row else None

    def find_user(self, email: str) -> User | None:
        address = normalize_email(email)
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLS} FROM users WHERE email = ?", (address,)
            ).fetchone()
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        with self._read() as conn:
            rows = conn.execute(f"SELECT {_USER_COLS} FROM users ORDER BY id").fetchall()
        return [_user(r) for r in rows]

    def set_user_name(self, user_id: int, name: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE users SET name = ? WHERE id = ?", (name, int(user_id)))

    def delete_user(self, user_id: int) -> None:
        """The reader and every row about them. Tables that reference users with ON DELETE
        CASCADE go with the row; ``votes`` predates accounts (no foreign key) and goes here.
        Feature mixins that add tables without a cascade must extend ``_user_tables``."""
        with self._write() as conn:
            row = conn.execute("SELECT email FROM users WHERE id = ?", (int(user_id),)).fetchone()
            if not row:
                raise NotFoundError(f"no reader with id {user_id}")
            for table in self._user_tables():
                conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (int(user_id),))
            self._forget_address(conn, int(user_id), row[0])
            conn.execute("DELETE FROM users WHERE id = ?", (int(user_id),))

    def _forget_address(self, conn, user_id: int, email: str) -> None:
        """Rows about the reader keyed on their address or id rather than on user_id: rate-limit
        hits (``<what>:addr:<email>``, ``<what>:user:<id>``). Digest subscriptions are keyed
        on user_id and go with the row."""
        conn.execute(
            "DELETE FROM throttle WHERE (instr(key, ':addr:') > 0 AND "
            "substr(key, instr(key, ':addr:') + 6) = lower(?)) OR key LIKE ?",
            (email, f"%:user:{int(user_id)}"),
        )

    def _user_tables(self) -> tuple[str, ...]:
        # Constant table names only (never input): rows keyed on user_id without a cascade.
        return ("votes",)

    # --- sessions --------------------------------------------------------------------------
    def create_session(self, user_id: int, secret_value: str, days: float) -> None:
        now = datetime.now(timezone.utc)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (_hash(secret_value), int(user_id), _iso(now), _iso(now + timedelta(days=days))),
            )
            conn.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (_iso(now), user_id))

    def session_user(self, secret_value: str) -> User | None:
        """The reader a session cookie belongs to, or None (unknown or expired)."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {', '.join('u.' + c for c in _USER_COLS.split(', '))} FROM sessions s "
                "JOIN users u ON u.id = s.user_id WHERE s.id_hash = ? AND s.expires_at > ?",
                (_hash(secret_value), _now()),
            ).fetchone()
        return _user(row) if row else None

    def delete_session(self, secret_value: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (_hash(secret_value),))

    def delete_sessions_of(self, user_id: int) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE user_id = ?", (int(user_id),))

    # --- single-use tokens -----------------------------------------------------------------
    def use_token(self, nonce: str, purpose: str, expires_at: float) -> bool:
        """Mark a token's nonce used; False when it already was (a replay). Expired rows are
        purged on the way, so the table stays as small as the links still valid."""
        now = time.time()
        with self._write() as conn:
            conn.execute("DELETE FROM used_tokens WHERE expires_at < ?", (_iso_ts(now),))
            cur = conn.execute(
                "INSERT OR IGNORE INTO used_tokens (nonce, purpose, used_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (nonce, purpose, _iso_ts(now), _iso_ts(expires_at)),
            )
            return cur.rowcount == 1

    def token_used(self, nonce: str) -> bool:
        with self._read() as conn:
            return bool(
                conn.execute("SELECT 1 FROM used_tokens WHERE nonce = ?", (nonce,)).fetchone()
            )

    # --- rate limits -----------------------------------------------------------------------
    def throttle_hit(self, key: str, limit: int, window_s: float) -> bool:
        """Record one hit on ``key`` if fewer than ``limit`` fell in the last ``window_s``
        seconds; False (and nothing recorded) when the limit is reached."""
        now = time.time()
        with self._write() as conn:
            conn.execute("DELETE FROM throttle WHERE key = ? AND at < ?", (key, now - window_s))
            n = conn.execute("SELECT count(*) FROM throttle WHERE key = ?", (key,)).fetchone()[0]
            if n >= limit:
                return False
            conn.execute("INSERT INTO throttle (key, at) VALUES (?, ?)", (key, now))
            return True

    # --- papers shown to a reader ----------------------------------------------------------
    def mark_shown(self, user_id: int, pks: list[int], via: str = "digest") -> None:
        now = _now()
        with self._write() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO shown_papers (user_id, paper_pk, shown_at, via) "
                "VALUES (?, ?, ?, ?)",
                [(int(user_id), int(pk), now, via) for pk in pks],
            )

    def shown_pks(self, user_id: int) -> set[int]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT paper_pk FROM shown_papers WHERE user_id = ?", (int(user_id),)
            ).fetchall()
        return {r[0] for r in rows}


def _iso_ts(ts: float) -> str:
    return _iso(datetime.fromtimestamp(ts, timezone.utc))
