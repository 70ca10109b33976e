"""Compose one reader's digest: pick the papers (select.py), render both parts (render.py)
and build the mail with its headers, once. The outbox stores the result; every try sends
exactly these bytes, with this Message-ID."""

from __future__ import annotations

import binascii
import email
import email.policy
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from ..config import Settings
from ..ids import is_arxiv_id
from ..models import Paper, Subscription
from ..store import Store
from .links import rate_url, unsubscribe_url
from .render import clean, render_html, render_text, short_abstract, short_authors, wrap_text
from .schedule import local_day
from .select import Pick, Pool, select_papers

__all__ = [
    "Digest", "DigestItem", "compose", "message_bytes", "build_message", "new_message_id",
    "POLICY", "mail_domain",
]

# Headers are not folded below 998 characters: a folded or RFC 2047-encoded List-Unsubscribe
# URL is one no client can use. Bodies stay short-lined (the templates wrap them).
POLICY = email.policy.default.clone(max_line_length=998)

SECTION_NAMES = {
    "foryou": "For you", "follows": "You follow", "searches": "Saved search",
    "trending": "Trending", "new": "New",
}  # fmt: skip


@dataclass(slots=True)
class DigestItem:
    pk: int
    paper_id: str
    title: str
    authors: str
    abstract: str
    reasons: list[str]
    section: str
    score: float
    links: dict[str, str | None]
    wrapped: str = ""  # the abstract wrapped for the plain-text part


@dataclass(slots=True)
class Digest:
    sub: Subscription
    items: list[DigestItem]
    subject: str
    heading: str
    local_day: str
    html: str = ""
    text: str = ""
    unsubscribe_url: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def pks(self) -> list[int]:
        return [i.pk for i in self.items]


def mail_domain(settings: Settings) -> str:
    domain = settings.mail_from.rpartition("@")[2].strip(" >")
    return domain or urlsplit(settings.base_url).hostname or "localhost"


def _http(url: str | None) -> str | None:
    return url if isinstance(url, str) and url.startswith(("https://", "http://")) else None


def _view(settings: Settings, p: Paper) -> dict:
    arxiv = is_arxiv_id(p.id)
    abstract = short_abstract(p.abstract)
    return {
        "id": p.id,
        "quoted": quote(p.id, safe=""),
        "title": clean(p.title) or p.id,
        "authors": short_authors(p.authors),
        "abstract": abstract,
        "wrapped": wrap_text(abstract),
        "links": {
            "page": f"{settings.base_url}/papers/{quote(p.id, safe='/')}",
            "arxiv": _http(p.links.get("abs")) or (f"https://arxiv.org/abs/{p.id}" if arxiv else None),
            "pdf": _http(p.links.get("pdf")) or (f"https://arxiv.org/pdf/{p.id}" if arxiv else None),
        },
    }


def _how_often(sub: Subscription) -> str:
    if sub.frequency == "weekly":
        from .prefs import WEEKDAYS

        return f"every {WEEKDAYS[sub.weekday]}"
    return "on days with new papers"


def compose(
    store: Store,
    settings: Settings,
    sub: Subscription,
    pool: Pool,
    now: datetime | None = None,
    papers: dict | None = None,
) -> Digest | None:
    """The reader's next digest, or None when it would be empty (empty digests are not
    sent). ``papers``: a cache of paper views shared by the readers of one run."""
    now = now or datetime.now(timezone.utc)
    exclude = store.shown_pks(sub.user_id)
    picks: list[Pick] = select_papers(store, settings, sub, pool, exclude)
    if not picks:
        return None
    # What a paper looks like in a mail is the same for every reader: made once per run.
    cache = papers if papers is not None else {}
    missing = [p.pk for p in picks if p.pk not in cache]  # None: withdrawn
    if missing:
        for pk, sp in store.get_papers_by_pk(missing).items():
            # A paper its source withdrew (a personal pick may still name one) is not mailed.
            cache[pk] = None if sp.withdrawn else _view(settings, sp.paper)
    # One signed rate link per mail (a token per paper and button was a third of the cost of
    # composing); the page checks that the paper named in it was sent to this reader.
    rate = rate_url(settings, sub.user_id)
    items = []
    for p in picks:
        v = cache.get(p.pk)
        if v is None:
            continue
        links = dict(v["links"])
        links["more"] = f"{rate}?paper={v['quoted']}&v=1"
        links["less"] = f"{rate}?paper={v['quoted']}&v=-1"
        items.append(
            DigestItem(
                pk=p.pk,
                paper_id=v["id"],
                title=v["title"],
                authors=v["authors"],
                abstract=v["abstract"],
                reasons=[clean(r) for r in p.reasons],
                section=SECTION_NAMES.get(p.section, p.section),
                score=p.score,
                links=links,
                wrapped=v["wrapped"],
            )
        )
    if not items:
        return None
    day = local_day(sub, now)
    local = now.astimezone(ZoneInfo(sub.timezone))
    when = f"{local.day} {local:%B %Y}"
    n = len(items)
    subject = f"paperfeed: {n} paper{'' if n == 1 else 's'} for you, {when}"
    heading = f"{n} paper{'' if n == 1 else 's'} for {when}"
    d = Digest(sub, items, subject, heading, day)
    d.unsubscribe_url = unsubscribe_url(settings, sub.user_id)
    ctx = dict(
        subject=subject,
        heading=heading,
        items=items,
        how_often=_how_often(sub),
        site=settings.base_url,
        prefs_url=f"{settings.base_url}/account/digest",
        unsubscribe_url=d.unsubscribe_url,
    )
    d.html = render_html("digest.html", **ctx)
    d.text = render_text("digest.txt", **ctx)
    return d


def _header_ok(value: str) -> bool:
    return value.isascii() and "\r" not in value and "\n" not in value


def message_bytes(
    settings: Settings, digest: Digest, message_id: str, now: datetime | None = None
) -> bytes:
    """The digest as a mail, in bytes (CRLF): text and HTML alternatives, its Message-ID, and
    the one-click unsubscribe headers of RFC 8058 (which DKIM signing covers).

    Written out by hand because the email package takes about 10 ms a message, which is most
    of a 10,000-reader run; headers here are ASCII we made (addresses are validated), and
    anything else falls back to the email package."""
    headers = [
        ("From", settings.mail_from),
        ("To", digest.sub.email),
        ("Subject", digest.subject),
        ("Date", format_datetime(now or datetime.now(timezone.utc))),
        ("Message-ID", message_id),
        ("List-Id", f"paperfeed digest <digest.{mail_domain(settings)}>"),
        ("List-Unsubscribe", f"<{digest.unsubscribe_url}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    if not all(_header_ok(v) for _, v in headers):
        return _message_via_email_package(headers, digest)
    boundary = "=_pf_" + secrets.token_hex(12)
    out = [f"{k}: {v}" for k, v in headers]
    out += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"', ""]
    head = "\r\n".join(out).encode() + b"\r\n"
    parts = [head]
    for subtype, body in (("plain", digest.text), ("html", digest.html)):
        parts.append(
            f"--{boundary}\r\nContent-Type: text/{subtype}; charset=\"utf-8\"\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
        )
        parts.append(binascii.b2a_qp(body.replace("\r\n", "\n").replace("\n", "\r\n").encode()))
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def _message_via_email_package(headers: list[tuple[str, str]], digest: Digest) -> bytes:
    msg = EmailMessage(policy=POLICY)
    for k, v in headers:
        msg[k] = v.replace("\r", " ").replace("\n", " ")
    msg.set_content(digest.text)
    msg.add_alternative(digest.html, subtype="html")
    return msg.as_bytes(policy=POLICY.clone(linesep="\r\n"))


def build_message(
    settings: Settings, digest: Digest, message_id: str | None = None, now: datetime | None = None
) -> EmailMessage:
    """``message_bytes`` parsed back into an EmailMessage (for callers that want one)."""
    raw = message_bytes(settings, digest, message_id or new_message_id(settings), now)
    return email.message_from_bytes(raw, policy=POLICY)


def new_message_id(settings: Settings) -> str:
    return f"<digest.{secrets.token_hex(10)}@{mail_domain(settings)}>"
