"""Outgoing mail: one transport for everything paperfeed sends (sign-in links,
confirmations, digests). SMTP when ``smtp_host`` is set, else a local Maildir outbox, so the
embedded default shows the whole flow offline. Composing and the send queue live with the
features that send (``readers``, ``digest``); this package only delivers."""

from .transport import MailError, Transport, deliver, maildir_path, sign_dkim, sign_dkim_bytes

__all__ = ["MailError", "Transport", "deliver", "maildir_path", "sign_dkim", "sign_dkim_bytes"]
