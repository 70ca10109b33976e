"""The one mail transport: a real SMTP server on loopback (aiosmtpd), the Maildir default,
DKIM verified with dkimpy's own verify."""

from __future__ import annotations

import mailbox
import re
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from paperfeed.config import load_settings
from paperfeed.mail import MailError, Transport, deliver


class Collect(MessageHandler):
    def __init__(self):
        super().__init__()
        self.got = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def handle_message(self, message):
        self.got.append(message)


@pytest.fixture
def smtp():
    import socket

    with socket.socket() as probe:  # aiosmtpd needs a port up front (it connects to check)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    h = Collect()
    c = Controller(h, hostname="127.0.0.1", port=port)
    c.start()
    yield h, port
    c.stop()


def _msg(to="reader@example.org"):
    m = EmailMessage()
    m["From"] = "paperfeed@example.org"
    m["To"] = to
    m["Subject"] = "Hello"
    m["List-Unsubscribe"] = "<https://papers.example.org/unsubscribe/t>"
    m["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    m.set_content("Body text\n")
    return m


def test_maildir_is_the_default(tmp_path):
    s = load_settings(env={"PAPERFEED_DB": str(tmp_path / "p.db")})
    deliver(s, _msg())
    box = mailbox.Maildir(str(tmp_path / "p.maildir"), create=False)
    assert [m["Subject"] for m in box] == ["Hello"]


def test_smtp_delivery_and_refusals(smtp, tmp_path):
    h, port = smtp
    s = load_settings(env={"PAPERFEED_DB": str(tmp_path / "p.db"), "PAPERFEED_SMTP_HOST": "127.0.0.1",
                           "PAPERFEED_SMTP_PORT": str(port), "PAPERFEED_SMTP_SECURITY": "none"})
    h.refuse = {"gone@example.org": "550 no such user", "later@example.org": "451 try later"}
    with Transport(s) as t:
        assert t.send(_msg()) == "smtp"
        with pytest.raises(MailError) as perm:
            t.send(_msg("gone@example.org"))
        assert perm.value.permanent and perm.value.code == 550
        with pytest.raises(MailError) as temp:
            t.send(_msg("later@example.org"))
        assert not temp.value.permanent
        t.send(_msg("again@example.org"))  # the connection still works
    assert [m["To"] for m in h.got] == ["reader@example.org", "again@example.org"]


def test_smtp_down_is_a_transient_error(tmp_path):
    s = load_settings(env={"PAPERFEED_DB": str(tmp_path / "p.db"), "PAPERFEED_SMTP_HOST": "127.0.0.1",
                           "PAPERFEED_SMTP_PORT": "1", "PAPERFEED_SMTP_SECURITY": "none"})
    with pytest.raises(MailError) as e:
        deliver(s, _msg())
    assert not e.value.permanent


def test_dkim_signature_verifies_and_covers_list_unsubscribe(tmp_path):
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "dkim.pem").write_bytes(pem)
    s = load_settings(env={"PAPERFEED_DB": str(tmp_path / "p.db"),
                           "PAPERFEED_DKIM_KEY_FILE": str(tmp_path / "dkim.pem"),
                           "PAPERFEED_DKIM_SELECTOR": "pf", "PAPERFEED_DKIM_DOMAIN": "example.org"})
    deliver(s, _msg())
    raw = next(iter(mailbox.Maildir(str(tmp_path / "p.maildir")))).as_bytes()
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    sig = raw.split(b"DKIM-Signature:", 1)[1].split(b"\n\n", 1)[0].lower()
    h_tag = re.sub(rb"\s+", b"", sig.split(b"h=", 1)[1].split(b";", 1)[0])
    assert b"list-unsubscribe" in h_tag.split(b":") and b"list-unsubscribe-post" in h_tag.split(b":")
