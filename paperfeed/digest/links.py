"""The signed links a digest mail carries: confirm, unsubscribe, "not for me" / "more like
this". Each is an itsdangerous token for its own purpose (readers.tokens), so a link made for
one thing never works for another, and a changed character makes it worthless.

Unsubscribe links never expire and are not single-use: a reader may click one in a mail from
last year, and a second click just says "already unsubscribed". Confirm links work once.
"""

from __future__ import annotations

from ..config import Settings
from ..readers.tokens import TokenError, consume_token, make_token, read_token
from ..store import Store

__all__ = [
    "TokenError",
    "confirm_url",
    "unsubscribe_url",
    "rate_url",
    "read_confirm",
    "use_confirm",
    "read_unsubscribe",
    "read_rate",
    "UNSUBSCRIBE_MAX_AGE",
]

# "Never" in practice: RFC 8058 and the big mailbox providers expect an unsubscribe link to
# keep working for as long as the mail may be read.
UNSUBSCRIBE_MAX_AGE = 50 * 365 * 86400.0


def _uid(data: dict) -> int:
    uid = data.get("u")
    if not isinstance(uid, int) or uid < 1:
        raise TokenError("This link is not valid.")
    return uid


def confirm_url(settings: Settings, user_id: int) -> str:
    return f"{settings.base_url}/confirm/{make_token(settings.secret, 'confirm', {'u': user_id})}"


def read_confirm(settings: Settings, token: str) -> int:
    """The reader a confirm link is for; does not use it up (a GET may show its page)."""
    t = read_token(settings.secret, "confirm", token, settings.confirm_link_hours * 3600)
    return _uid(t.data)


def use_confirm(store: Store, settings: Settings, token: str) -> int:
    """Use a confirm link (once): the reader it is for."""
    t = consume_token(store, settings.secret, "confirm", token, settings.confirm_link_hours * 3600)
    return _uid(t.data)


def unsubscribe_url(settings: Settings, user_id: int) -> str:
    token = make_token(settings.secret, "unsubscribe", {"u": user_id})
    return f"{settings.base_url}/unsubscribe/{token}"


def read_unsubscribe(settings: Settings, token: str) -> int:
    return _uid(read_token(settings.secret, "unsubscribe", token, UNSUBSCRIBE_MAX_AGE).data)


def rate_url(settings: Settings, user_id: int) -> str:
    """The base of a mail's "more like this" / "not for me" links; each link adds
    ``?paper=ID&v=1`` or ``v=-1``. The token names the reader; the page accepts only papers
    that were sent to that reader, so changing the paper in a link gains nothing."""
    token = make_token(settings.secret, "rate", {"u": user_id})
    return f"{settings.base_url}/mail/rate/{token}"


def read_rate(settings: Settings, token: str) -> int:
    """The reader a rate link is for."""
    return _uid(read_token(settings.secret, "rate", token, settings.mail_link_days * 86400).data)
