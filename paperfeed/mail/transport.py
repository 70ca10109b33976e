"""Deliver a composed ``EmailMessage``: to an SMTP server, or into a Maildir.

``Transport`` keeps one SMTP connection open across many messages (a digest run sends
thousands) and tells the caller, per message, whether a failure is permanent (a 5xx for that
recipient: do not retry) or transient (4xx, a dropped connection: retry later).
"""

from __future__ import annotations

import mailbox
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

from ..config import Settings
from ..errors import PaperfeedError

__all__ = ["MailError", "Transport", "deliver", "maildir_path", "sign_dkim", "sign_dkim_bytes"]

# Headers DKIM signs. The two List-Unsubscribe headers are in the list so a relay cannot strip
# or swap the one-click link without breaking the signature (Gmail and Yahoo require both).
DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
    b"list-unsubscribe", b"list-unsubscribe-post", b"list-id",
)  # fmt: skip


class MailError(PaperfeedError):
    """A message could not be delivered. ``permanent``: the server refused it for good (5xx),
    so retrying the same message would fail again; otherwise try again later."""

    def __init__(self, message: str, permanent: bool = False, code: int | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.code = code


def maildir_path(settings: Settings) -> Path:
    if settings.outbox_dir:
        return Path(settings.outbox_dir).expanduser()
    db = str(settings.db)
    if "://" in db:
        # A server database has no "beside": the working folder, which differs per process
        # and machine (the setting's help says so; production sets smtp_host anyway).
        return Path("paperfeed.maildir")
    return Path(db + ".maildir") if not db.endswith(".db") else Path(db[:-3] + ".maildir")


def _dkim_signature(settings: Settings, raw: bytes, headers) -> bytes | None:
    """The DKIM-Signature header line for ``raw`` (its header names in ``headers``), or None
    when no key is configured."""
    if not settings.dkim_key_file:
        return None
    import dkim

    try:
        key = Path(settings.dkim_key_file).expanduser().read_bytes()
    except OSError as e:
        raise MailError(f"cannot read dkim_key_file {settings.dkim_key_file}: {e.strerror}")
    if not (settings.dkim_selector and settings.dkim_domain):
        raise MailError("DKIM needs dkim_selector and dkim_domain as well as dkim_key_file")
    present = {h.lower().encode() for h in headers}
    return dkim.sign(
        raw,
        settings.dkim_selector.encode(),
        settings.dkim_domain.encode(),
        key,
        include_headers=[h for h in DKIM_HEADERS if h in present],
    )


def sign_dkim(settings: Settings, msg: EmailMessage) -> EmailMessage:
    """Add a DKIM-Signature when a key is configured (dkimpy); the message unchanged otherwise."""
    sig = _dkim_signature(settings, msg.as_bytes(), msg.keys())
    if sig is None:
        return msg
    name, _, value = sig.decode().partition(":")
    # Prepend: a signature goes above the headers it covers.
    msg._headers.insert(0, (name, msg.policy.header_fetch_parse(name, value.strip())))  # noqa: SLF001
    return msg


def sign_dkim_bytes(settings: Settings, raw: bytes) -> bytes:
    """``raw`` with a DKIM-Signature on top when a key is configured (else unchanged): for
    mail stored as bytes (the digest outbox), so every try sends the bytes that were stored."""
    if not settings.dkim_key_file:
        return raw
    from email.parser import BytesHeaderParser

    sig = _dkim_signature(settings, raw, BytesHeaderParser().parsebytes(raw).keys())
    return sig + raw


class Transport:
    """``with Transport(settings) as t: t.send(msg)``. Opens the SMTP connection lazily and
    reopens it after a drop; with no ``smtp_host`` every message goes to the Maildir."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._maildir: mailbox.Maildir | None = None

    @property
    def kind(self) -> str:
        return "smtp" if self.settings.smtp_host else "maildir"

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._smtp = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.smtp_security == "tls":
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                    context=ssl.create_default_context(),
                )  # fmt: skip
            else:
                conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
                if s.smtp_security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                conn.login(s.smtp_user, s.smtp_password)
        except smtplib.SMTPAuthenticationError as e:
            raise MailError(f"SMTP login refused: {e.smtp_code} {_text(e.smtp_error)}",
                            permanent=False, code=e.smtp_code) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
            raise MailError(f"cannot connect to SMTP {s.smtp_host}:{s.smtp_port}: {e}") from None
        return conn

    def send(self, msg: EmailMessage) -> str:
        """Deliver one message; returns where it went ("smtp" or the Maildir key). Raises
        MailError (``permanent`` for a 5xx refusal of this message)."""
        msg = sign_dkim(self.settings, msg)
        return self._deliver(msg, lambda smtp: smtp.send_message(msg))

    def send_bytes(self, raw: bytes, sender: str, recipients: list[str]) -> str:
        """Deliver a mail already composed as bytes (CRLF line ends), exactly as given plus a
        DKIM signature when configured; errors as for ``send``."""
        raw = sign_dkim_bytes(self.settings, raw)
        return self._deliver(raw, lambda smtp: smtp.sendmail(sender, recipients, raw))

    def _deliver(self, mail, smtp_send) -> str:
        """Into the Maildir (no smtp_host), or through ``smtp_send(connection)`` with SMTP's
        answers sorted into permanent and transient MailErrors."""
        if not self.settings.smtp_host:
            if self._maildir is None:
                path = maildir_path(self.settings)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._maildir = mailbox.Maildir(str(path), create=True)
            return self._maildir.add(mail)
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            refused = smtp_send(self._smtp)
        except smtplib.SMTPRecipientsRefused as e:
            code, text = next(iter(e.recipients.values()))
            raise MailError(f"recipient refused: {code} {_text(text)}",
                            permanent=500 <= code < 600, code=code) from None
        except smtplib.SMTPResponseException as e:
            if e.smtp_code == 421 or not 500 <= e.smtp_code < 600:
                self._drop()
            raise MailError(f"SMTP {e.smtp_code} {_text(e.smtp_error)}",
                            permanent=500 <= e.smtp_code < 600, code=e.smtp_code) from None
        except (smtplib.SMTPException, OSError) as e:
            self._drop()
            raise MailError(f"SMTP connection lost: {e}") from None
        if refused:
            code, text = next(iter(refused.values()))
            raise MailError(f"recipient refused: {code} {_text(text)}",
                            permanent=500 <= code < 600, code=code)
        return "smtp"

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            except OSError:
                pass
            self._smtp = None


def deliver(settings: Settings, msg: EmailMessage) -> str:
    """Send one message now (sign-in links, confirmations): see ``Transport.send``."""
    with Transport(settings) as t:
        return t.send(msg)


def _text(b) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)
