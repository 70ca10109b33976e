"""What the readers tests share: signing a reader in through the real link flow, reading the
Maildir outbox, the CSRF token of a page, and a sample database with real embeddings."""

from __future__ import annotations

import mailbox
import re
from pathlib import Path
from urllib.parse import urlsplit

from paperfeed.config import Settings
from paperfeed.readers.signin import login_link
from paperfeed.search import update_index
from paperfeed.store import open_store
from tests.web_support import build_db, settings_for

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
_LINK = re.compile(r"(https?://\S+/login/confirm\?token=\S+)")


def csrf_of(client, path: str = "/login") -> str:
    """The CSRF token of a page's forms, for this client's cookie."""
    r = client.get(path)
    m = _CSRF.search(r.text)
    assert m, f"no csrf field on {path} ({r.status_code})"
    return m.group(1)


def local(url: str) -> str:
    """The path and query of a link (the test client talks to its own host)."""
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def mails(settings: Settings) -> list:
    """Every message in the Maildir outbox (no SMTP host in the tests), oldest first."""
    from paperfeed.mail import maildir_path

    path = maildir_path(settings)
    if not Path(path).exists():
        return []
    box = mailbox.Maildir(str(path), create=False)
    return sorted(box, key=lambda m: m.get_date())


def link_in(msg) -> str:
    body = msg.get_payload(decode=True) if not msg.is_multipart() else msg.get_payload(0).get_payload(decode=True)
    m = _LINK.search(body.decode())
    assert m, body
    return m.group(1)


def sign_in(client, settings: Settings, email: str) -> None:
    """Sign ``client`` in as ``email`` through the confirm page (the link made as the CLI's
    `user login-link` makes it)."""
    token = local(login_link(settings, email)).split("token=", 1)[1]
    from urllib.parse import unquote

    token = unquote(token)
    csrf = csrf_of(client, "/login/confirm?token=" + token)
    r = client.post("/login/confirm", data={"csrf": csrf, "token": token}, follow_redirects=False)
    assert r.status_code == 303, r.text


def indexed_db(path: Path, cache: Path) -> Path:
    """The web tests' sample database, with its keyword index and real embeddings."""
    build_db(path)
    s = settings_for(path, cache)
    store = open_store(str(path))
    try:
        update_index(store, s)
    finally:
        store.close()
    return path

