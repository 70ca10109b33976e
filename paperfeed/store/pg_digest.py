"""PostgreSQL's outbox: digest senders on many processes (and machines) claim rows through row
locks, not through the one writer lock every shared write takes.

Why: on SQLite a claim is a guarded UPDATE under BEGIN IMMEDIATE, and senders take turns. On
PostgreSQL the same would make every sender wait on the writer lock that imports, harvests and
web writes hold too. Here a claim locks one due row with ``FOR UPDATE SKIP LOCKED``: a second
sender skips the row the first one holds and takes the next, so N senders claim N different
rows at once and never the same one. The semantics are SQLite's (sql_digest.claim_outbox):

* the row is re-checked once locked (READ COMMITTED re-evaluates the WHERE clause on the
  newest version of a row it waited for; the guarded UPDATE checks ``status`` again anyway);
* the reader's subscription is read inside the claim's transaction: the latest committed
  status. An unsubscribe that commits first wins (the row is cancelled, never sent); one that
  commits after the claim finds the row 'sending' and leaves it, exactly as if it had come
  a moment later on SQLite;
* the claimed papers are recorded in ``shown_papers`` in the same transaction, before any
  byte goes to the SMTP server.

The transitions after a claim (sent, failed, retry, requeue) touch only the claimed row, with
a guard on its status, so they need no writer lock either: each is one row-locking statement
(retry locks its row first, then decides).

Queueing stays on the writer lock (it is one process's batch); it is here only because the
shared statements use SQLite's two-argument ``max()``, which PostgreSQL spells GREATEST.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import orjson

from ..models import OutboxRow
from .sql_digest import _OUTBOX_COLS, _outbox

__all__ = ["PgDigestMixin"]

# A claim that PostgreSQL chose as a deadlock victim (it inserts shown_papers rows, which a
# web request may be inserting for the same reader) rolled back whole: it is simply retried.
_DEADLOCK_RETRIES = 5


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PgDigestMixin:
    # --- queueing: SQLite's two-argument max() is GREATEST() here ---------------------------
    def queue_digest_mail(self, digest_id: int, seen_pk: int, rows: list[tuple]) -> int:
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
                    "seen_pk = GREATEST(seen_pk, ?) WHERE user_id = ?",
                    (local_day, now, int(seen_pk), uid),
                )
        return added

    def mark_digest_checked(self, user_ids: list[int], seen_pk: int) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE digest_subscriptions SET seen_pk = GREATEST(seen_pk, ?) WHERE user_id = ?",
                [(int(seen_pk), int(u)) for u in user_ids],
            )

    # --- sending -------------------------------------------------------------------------
    def claim_outbox(self, worker: str, now: float | None = None) -> OutboxRow | None:
        from psycopg import errors

        now = time.time() if now is None else now
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                return self._claim_once(worker, now)
            except errors.DeadlockDetected:
                if attempt == _DEADLOCK_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        return None  # unreachable

    def _claim_once(self, worker: str, now: float) -> OutboxRow | None:
        with self._transaction() as conn:
            while True:
                row = conn.execute(
                    f"SELECT {_OUTBOX_COLS} FROM outbox "
                    "WHERE status = 'queued' AND next_attempt_at <= ? "
                    "ORDER BY attempts, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                sub = conn.execute(
                    "SELECT status FROM digest_subscriptions WHERE user_id = ?", (row[2],)
                ).fetchone()
                if sub is None or sub[0] != "active":
                    conn.execute(
                        "UPDATE outbox SET status = 'cancelled', last_error = 'unsubscribed' "
                        "WHERE id = ? AND status = 'queued'",
                        (row[0],),
                    )
                    continue  # the row stays locked (and cancelled) until we commit
                cur = conn.execute(
                    "UPDATE outbox SET status = 'sending', claimed_by = ?, claimed_at = ?, "
                    "attempts = attempts + 1 WHERE id = ? AND status = 'queued'",
                    (worker, now, row[0]),
                )
                if cur.rowcount != 1:  # we hold the row lock: cannot happen; be safe anyway
                    continue
                got = _outbox(row)
                shown = _now()
                # Sorted: two transactions inserting one reader's papers lock them in the same
                # order, which keeps deadlocks between claims impossible.
                conn.executemany(
                    "INSERT INTO shown_papers (user_id, paper_pk, shown_at, via) "
                    "SELECT ?, ?, ?, 'digest' WHERE EXISTS (SELECT 1 FROM papers WHERE pk = ?) "
                    "ON CONFLICT DO NOTHING",
                    [(got.user_id, pk, shown, pk) for pk in sorted(set(got.paper_pks))],
                )
                got.attempts += 1
                return got

    def outbox_sent(self, row_id: int) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, last_error = NULL "
                "WHERE id = ? AND status = 'sending'",
                (_now(), int(row_id)),
            )

    def outbox_failed(self, row_id: int, error: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE outbox SET status = 'failed', last_error = ? WHERE id = ? "
                "AND status = 'sending'",
                (error[:500], int(row_id)),
            )

    def outbox_retry(self, row_id: int, error: str, next_attempt_at: float, max_attempts: int) -> str:
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT attempts FROM outbox WHERE id = ? AND status = 'sending' FOR UPDATE",
                (int(row_id),),
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
        with self._transaction() as conn:
            n = 0
            for rid in sorted(set(int(r) for r in row_ids)):
                n += conn.execute(
                    "UPDATE outbox SET status = 'queued', next_attempt_at = 0, claimed_by = NULL, "
                    "claimed_at = NULL WHERE id = ? AND status = 'sending'",
                    (rid,),
                ).rowcount
            return n
