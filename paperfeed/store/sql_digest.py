"""SQLite queries for email digests: subscriptions and preferences, digest runs, and the
outbox state machine (queued -> sending -> sent | failed | cancelled).

Why the outbox looks like this: a digest mail is composed once and stored before anything is
sent, so a crash can lose no subscriber and a retry sends the same bytes with the same
Message-ID. A sender claims one row at a time with a guarded UPDATE inside BEGIN IMMEDIATE,
so two sender processes can never claim the same row; the reader's subscription is checked in
that same transaction, so an unsubscribe takes effect before the next send.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson

from ..models import DIGEST_SECTIONS, OutboxRow, Subscription, User
from .base import normalize_email

__all__ = ["DigestMixin"]

_SUB_COLS = (
    "s.user_id, u.email, s.status, s.source, s.frequency, s.weekday, s.send_hour, s.timezone, "
    "s.max_papers, s.min_score, s.sections, s.created_at, s.confirmed_at, s.last_digest_on, "
    "s.last_digest_at, s.seen_pk"
)
# Preferences a reader may change (constant column names: never built from input).
_PREF_COLS = frozenset(
    {"frequency", "weekday", "send_hour", "timezone", "max_papers", "min_score", "sections"}
)
_OUTBOX_COLS = "id, digest_id, user_id, email, message_id, message, paper_pks, attempts"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(row) -> Subscription:
    sections = tuple(x for x in row[10].split() if x in DIGEST_SECTIONS)
    return Subscription(*row[:10], sections, *row[11:])


def _outbox(row) -> OutboxRow:
    return OutboxRow(*row[:5], bytes(row[5]), orjson.loads(row[6]), row[7])


class DigestMixin:
    # --- subscriptions ---------------------------------------------------------------------
    def subscribe(self, email: str, source: str = "web") -> tuple[User, str | None]:
        """Ask for a digest for ``email`` (a reader is created when new): the reader and the
        subscription's status before this request (None: there was none). New and
        unsubscribed addresses become pending; pending and active ones are left as they are."""
        address = normalize_email(email)
        now = _now()
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO users (email, created_at) VALUES (?, ?)", (address, now)
            )
            uid, stored, name, created, last_login = conn.execute(
                "SELECT id, email, name, created_at, last_login_at FROM users WHERE email = ?",
                (address,),
            ).fetchone()
            row = conn.execute(
                "SELECT status FROM digest_subscriptions WHERE user_id = ?", (uid,)
            ).fetchone()
            before = row[0] if row else None
            if before is None:
                conn.execute(
                    "INSERT INTO digest_subscriptions (user_id, status, source, created_at) "
                    "VALUES (?, 'pending', ?, ?)",
                    (uid, source, now),
                )
            elif before == "unsubscribed":
                conn.execute(
                    "UPDATE digest_subscriptions SET status = 'pending', source = ? "
                    "WHERE user_id = ?",
                    (source, uid),
                )
        return User(uid, stored, name, created, last_login), before

    def get_subscription(self, user_id: int) -> Subscription | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_SUB_COLS} FROM digest_subscriptions s JOIN users u ON u.id = s.user_id "
                "WHERE s.user_id = ?",
                (int(user_id),),
            ).fetchone()
        return _sub(row) if row else None

    def list_subscriptions(self, status: str | None = "active") -> list[Subscription]:
        sql = f"SELECT {_SUB_COLS} FROM digest_subscriptions s JOIN users u ON u.id = s.user_id"
        args: tuple = ()
        if status is not None:
            sql += " WHERE s.status = ?"
            args = (status,)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY s.user_id", args).fetchall()
        return [_sub(r) for r in rows]

    def confirm_subscription(self, user_id: int) -> bool:
        """Make a pending subscription active; False when it was not pending. Papers already
        stored count as seen: the first digest brings what is new from now on (and what is
        trending)."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE digest_subscriptions SET status = 'active', confirmed_at = ?, "
                "unsubscribed_at = NULL, seen_pk = (SELECT coalesce(max(pk), 0) FROM papers) "
                "WHERE user_id = ? AND status = 'pending'",
                (_now(), int(user_id)),
            )
            return cur.rowcount == 1

    def activate_subscription(self, user_id: int, source: str = "account") -> None:
        """Subscribe a reader who proved the address already (signed in): active at once."""
        now = _now()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO digest_subscriptions (user_id, status, source, created_at, "
                "confirmed_at, seen_pk) VALUES (?, 'active', ?, ?, ?, "
                "(SELECT coalesce(max(pk), 0) FROM papers)) "
                "ON CONFLICT (user_id) DO UPDATE SET status = 'active', confirmed_at = "
                "excluded.confirmed_at, unsubscribed_at = NULL WHERE status != 'active'",
                (int(user_id), source, now, now),
            )

    def unsubscribe(self, user_id: int) -> bool:
        """Stop a reader's digests; False when they were not subscribed. Mails queued for
        them and not yet claimed are cancelled in the same transaction."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE digest_subscriptions SET status = 'unsubscribed', unsubscribed_at = ? "
                "WHERE user_id = ? AND status != 'unsubscribed'",
                (_now(), int(user_id)),
            )
            conn.execute(
                "UPDATE outbox SET status = 'cancelled', last_error = 'unsubscribed' "
                "WHERE user_id = ? AND status = 'queued'",
                (int(user_id),),
            )
            return cur.rowcount == 1

    def set_digest_prefs(self, user_id: int, **prefs) -> None:
        """Change preferences (validated by the caller: digest.prefs)."""
        unknown = set(prefs) - _PREF_COLS
        if unknown:
            raise ValueError(f"unknown digest preferences: {sorted(unknown)}")
        if "sections" in prefs and not isinstance(prefs["sections"], str):
            prefs["sections"] = " ".join(prefs["sections"])
        if not prefs:
            return
        cols = sorted(prefs)
        with self._write() as conn:
            conn.execute(
                f"UPDATE digest_subscriptions SET {', '.join(c + ' = ?' for c in cols)} "
                "WHERE user_id = ?",
                (*[prefs[c] for c in cols], int(user_id)),
            )

    # --- composing ---------------------------------------------------------------------------
    def max_paper_pk(self) -> int:
        with self._read() as conn:
            return conn.execute("SELECT coalesce(max(pk), 0) FROM papers").fetchone()[0]

    def new_paper_pks(self, after_pk: int, limit: int) -> list[int]:
        """Keys of papers stored after ``after_pk``, newest first (withdrawn ones left out)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT pk FROM papers WHERE pk > ? AND withdrawn = 0 ORDER BY pk DESC LIMIT ?",
                (int(after_pk), int(limit)),
            ).fetchall()
        return [r[0] for r in rows]

    def users_with_open_mail(self, claimed_after: float = 0.0) -> set[int]:
        """Readers with a digest mail queued, or in flight and claimed after ``claimed_after``
        (they get no second one meanwhile). A mail left uncertain by a dead sender does not
        hold a reader's later digests back: its papers are already recorded as shown."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT user_id FROM outbox WHERE status = 'queued' "
                "OR (status = 'sending' AND claimed_at > ?)",
                (float(claimed_after),),
            ).fetchall()
        return {r[0] for r in rows}

    def create_digest(self, forced: bool, max_pk: int) -> int:
        with self._write() as conn:
            return conn.execute(
                "INSERT INTO digests (created_at, forced, max_pk) VALUES (?, ?, ?) RETURNING id",
                (_now(), int(bool(forced)), int(max_pk)),
            ).fetchone()[0]

    def queue_digest_mail(self, digest_id: int, seen_pk: int, rows: list[tuple]) -> int:
        """Store composed mails, one per reader, and move each reader's schedule on, in ONE
        transaction. ``rows``: (user_id, email, message_id, message bytes, paper keys, the
        reader's local date). Returns how many rows were new."""
        now = _now()
        added = 0
        with self._write() as conn:
            for uid, email, mid, message, pks, local_day in rows:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO outbox (digest_id, user_id, email, message_id, "
                    "message, paper_pks, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (digest_id, uid, email, mid, message, orjson.dumps(pks).decode(), now),
                )
                added += cur.rowcount
                conn.execute(
                    "UPDATE digest_subscriptions SET last_digest_on = ?, last_digest_at = ?, "
                    "seen_pk = max(seen_pk, ?) WHERE user_id = ?",
                    (local_day, now, int(seen_pk), uid),
                )
        return added

    def mark_digest_checked(self, user_ids: list[int], seen_pk: int) -> None:
        """Readers whose digest came out empty: the papers up to ``seen_pk`` were looked at."""
        with self._write() as conn:
            conn.executemany(
                "UPDATE digest_subscriptions SET seen_pk = max(seen_pk, ?) WHERE user_id = ?",
                [(int(seen_pk), int(u)) for u in user_ids],
            )

    # --- sending -------------------------------------------------------------------------------
    def claim_outbox(self, worker: str, now: float | None = None) -> OutboxRow | None:
        """Claim the next queued mail that is due, or None. In one transaction: a row whose
        reader is no longer subscribed is cancelled instead; the claimed row moves to
        'sending' only if still 'queued' (the guard), and its papers are recorded as shown
        (before the send: a paper is never offered twice, even if the send is uncertain)."""
        now = time.time() if now is None else now
        with self._write() as conn:
            while True:
                row = conn.execute(
                    f"SELECT {', '.join('o.' + c for c in _OUTBOX_COLS.split(', '))}, s.status "
                    "FROM outbox o LEFT JOIN digest_subscriptions s ON s.user_id = o.user_id "
                    "WHERE o.status = 'queued' AND o.next_attempt_at <= ? "
                    "ORDER BY o.attempts, o.id LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                if row[-1] != "active":
                    conn.execute(
                        "UPDATE outbox SET status = 'cancelled', last_error = 'unsubscribed' "
                        "WHERE id = ? AND status = 'queued'",
                        (row[0],),
                    )
                    continue
                cur = conn.execute(
                    "UPDATE outbox SET status = 'sending', claimed_by = ?, claimed_at = ?, "
                    "attempts = attempts + 1 WHERE id = ? AND status = 'queued'",
                    (worker, now, row[0]),
                )
                if cur.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; be safe anyway
                    continue
                got = _outbox(row[:-1])
                conn.executemany(
                    "INSERT OR IGNORE INTO shown_papers (user_id, paper_pk, shown_at, via) "
                    "SELECT ?, ?, ?, 'digest' WHERE EXISTS (SELECT 1 FROM papers WHERE pk = ?)",
                    [(got.user_id, pk, _now(), pk) for pk in got.paper_pks],
                )
                got.attempts += 1
                return got

    def outbox_sent(self, row_id: int) -> None:
        """The SMTP server accepted the mail."""
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL "
                "WHERE id = ? AND status = 'sending'",
                (_now(), int(row_id)),
            )

    def outbox_failed(self, row_id: int, error: str) -> None:
        """Refused for good (a 5xx for this recipient)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ? "
                "AND status = 'sending'",
                (error[:500], int(row_id)),
            )

    def outbox_retry(self, row_id: int, error: str, next_attempt_at: float, max_attempts: int) -> str:
        """A transient failure: back to 'queued' for a later try, or 'failed' after
        ``max_attempts`` tries. Returns the new status."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT attempts FROM outbox WHERE id = ? AND status = 'sending'", (int(row_id),)
            ).fetchone()
            if row is None:
                return "gone"
            status = "failed" if row[0] >= max_attempts else "queued"
            conn.execute(
                "UPDATE outbox SET status = ?, last_error = ?, next_attempt_at = ?, "
                "claimed_by = NULL, claimed_at = NULL WHERE id = ?",
                (status, error[:500], float(next_attempt_at), int(row_id)),
            )
            return status

    def requeue_outbox(self, row_ids: list[int]) -> int:
        """Put mails whose fate was uncertain back in the queue (an administrator decided
        they were not delivered). Returns how many moved."""
        with self._write() as conn:
            n = 0
            for rid in row_ids:
                n += conn.execute(
                    "UPDATE outbox SET status = 'queued', next_attempt_at = 0, claimed_by = NULL, "
                    "claimed_at = NULL WHERE id = ? AND status = 'sending'",
                    (int(rid),),
                ).rowcount
            return n

    def outbox_counts(self) -> list[dict]:
        """Per digest: {"digest", "created_at", "forced", "counts": {status: n}}, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT d.id, d.created_at, d.forced, o.status, count(o.id) FROM digests d "
                "LEFT JOIN outbox o ON o.digest_id = d.id GROUP BY d.id, o.status "
                "ORDER BY d.id DESC"
            ).fetchall()
        out: dict[int, dict] = {}
        for did, created, forced, status, n in rows:
            d = out.setdefault(
                did, {"digest": did, "created_at": created, "forced": bool(forced), "counts": {}}
            )
            if status is not None:
                d["counts"][status] = n
        return list(out.values())

    def outbox_in_flight(self) -> list[dict]:
        """Rows marked sending: {"id", "digest", "email", "claimed_by", "claimed_at"}."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, digest_id, email, claimed_by, claimed_at FROM outbox "
                "WHERE status = 'sending' ORDER BY id"
            ).fetchall()
        keys = ("id", "digest", "email", "claimed_by", "claimed_at")
        return [dict(zip(keys, r)) for r in rows]

    def outbox_rows(self, user_id: int | None = None, limit: int = 100) -> list[dict]:
        """Recent outbox rows (newest first) without their messages, for reports and tests."""
        sql = (
            "SELECT id, digest_id, user_id, email, message_id, status, attempts, last_error, "
            "sent_at FROM outbox"
        )
        args: tuple = ()
        if user_id is not None:
            sql += " WHERE user_id = ?"
            args = (int(user_id),)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, int(limit))).fetchall()
        keys = ("id", "digest", "user_id", "email", "message_id", "status", "attempts",
                "last_error", "sent_at")  # fmt: skip
        return [dict(zip(keys, r)) for r in rows]
