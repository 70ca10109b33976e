"""Compose one reader's digest: pick the papers (select.py), render both parts (render.py)
and build the mail with its headers, once. The outbox stores the result; every try sends
exactly these bytes, with this Message-ID."""

from __future__ import annotations

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
from .render import clean, render_html, render_text, short_abstract, short_authors
from .schedule import local_day
from .select import Pick, Pool, select_papers

__all__ = ["Digest", "DigestItem", "compose", "build_message", "POLICY", "mail_domain"]

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


def _links(settings: Settings, uid: int, p: Paper) -> dict[str, str | None]:
    arxiv = is_arxiv_id(p.id)
    return {
        "page": f"{settings.base_url}/papers/{quote(p.id, safe='/')}",
        "arxiv": _http(p.links.get("abs")) or (f"https://arxiv.org/abs/{p.id}" if arxiv else None),
        "pdf": _http(p.links.get("pdf")) or (f"https://arxiv.org/pdf/{p.id}" if arxiv else None),
        "more": rate_url(settings, uid, p.id, 1),
        "less": rate_url(settings, uid, p.id, -1),
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
    sent). ``papers``: a pk -> StoredPaper cache shared across readers of one run."""
    now = now or datetime.now(timezone.utc)
    exclude = store.shown_pks(sub.user_id)
    picks: list[Pick] = select_papers(store, settings, sub, pool, exclude)
    if not picks:
        return None
    cache = papers if papers is not None else {}
    missing = [p.pk for p in picks if p.pk not in cache]
    if missing:
        cache.update(store.get_papers_by_pk(missing))
    items = []
    for p in picks:
        sp = cache.get(p.pk)
        if sp is None:
            continue
        paper = sp.paper
        items.append(
            DigestItem(
                pk=p.pk,
                paper_id=paper.id,
                title=clean(paper.title) or paper.id,
                authors=short_authors(paper.authors),
                abstract=short_abstract(paper.abstract),
                reasons=[clean(r) for r in p.reasons],
                section=SECTION_NAMES.get(p.section, p.section),
                score=p.score,
                links=_links(settings, sub.user_id, paper),
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


def build_message(
    settings: Settings, digest: Digest, message_id: str | None = None, now: datetime | None = None
) -> EmailMessage:
    """The digest as a mail: text and HTML alternatives, a stable Message-ID, and the
    one-click unsubscribe headers of RFC 8058 (which DKIM signing covers)."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = settings.mail_from
    msg["To"] = digest.sub.email
    msg["Subject"] = digest.subject
    msg["Date"] = format_datetime(now or datetime.now(timezone.utc))
    msg["Message-ID"] = message_id or new_message_id(settings)
    msg["List-Id"] = f"paperfeed digest <digest.{mail_domain(settings)}>"
    msg["List-Unsubscribe"] = f"<{digest.unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(digest.text)
    msg.add_alternative(digest.html, subtype="html")
    return msg


def new_message_id(settings: Settings) -> str:
    return f"<digest.{secrets.token_hex(10)}@{mail_domain(settings)}>"
