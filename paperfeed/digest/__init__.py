"""Email digests: subscribe with double opt-in, preferences, compose and render each reader's
digest (papers picked for them, each paper at most once), and send through an outbox that
loses nobody and mails nobody twice. ``send_due_digests`` is what ``paperfeed run`` calls."""

from .send import digest_status, queue_due, send_due_digests, send_queued

__all__ = ["send_due_digests", "queue_due", "send_queued", "digest_status"]
