"""Subscribing: one flow for the web box, the API and ``paperfeed subscribe``.

The answer is the same whether the address is new, pending, active or throttled, so nobody
learns who is subscribed by trying addresses. What happens behind it differs: a new or
unsubscribed address gets a confirmation mail (the subscription stays pending until the
link's page POSTs), a pending one gets a fresh confirmation link, an active one a short
"already subscribed" note. Every path that sends mail is throttled per address and per client.
"""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone

from email_validator import EmailNotValidError, validate_email

from ..config import Settings
from ..errors import InputError
from ..mail import MailError, deliver
from ..models import User
from ..store import Store
from .compose import POLICY, new_message_id
from .links import confirm_url, read_unsubscribe, unsubscribe_url, use_confirm
from .render import render_text

__all__ = [
    "Throttled",
    "validate_address",
    "request_subscription",
    "confirm",
    "unsubscribe",
    "ANSWER",
    "WHAT_ARRIVES",
]

log = logging.getLogger("paperfeed.digest")

WINDOW_S = 3600.0
ANSWER = (
    "Thank you. If this address can receive mail, a confirmation link is on its way to it: "
    "open it and press the button to start your digest."
)
WHAT_ARRIVES = (
    "One mail a day, after arXiv's announcement of new papers has been fetched (never on days "
    "with nothing new), with up to 10 papers: the trending ones and, once you sign in and "
    "follow authors, categories or saved searches, ones picked for you. Make it weekly or "
    "shorter on your account page; every mail has a one-click unsubscribe link."
)


class Throttled(InputError):
    """Too many requests from one client."""


def validate_address(email: str) -> str:
    """The address in normal form (email-validator; no DNS lookups), or InputError."""
    raw = (email or "").strip()
    if not raw:
        raise InputError("Enter an email address.")
    if len(raw) > 254:
        raise InputError("That email address is too long.")
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise InputError(f"That is not a valid email address: {e}") from None


def _mail(settings: Settings, to: str, subject: str, text: str, unsub: str | None = None):
    msg = EmailMessage(policy=POLICY)
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["Message-ID"] = new_message_id(settings)
    msg["Auto-Submitted"] = "auto-generated"
    if unsub:
        msg["List-Unsubscribe"] = f"<{unsub}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text)
    return msg


def request_subscription(
    store: Store, settings: Settings, email: str, client: str | None, source: str = "web"
) -> str:
    """Handle one subscription request; returns the normalised address. Raises InputError
    for an invalid address and Throttled when the client asked too often. A throttled
    *address* gets the usual answer and no mail (answering differently would tell)."""
    address = validate_address(email)
    if client and not store.throttle_hit(
        f"subscribe:ip:{client}", settings.subscribe_limit_client, WINDOW_S
    ):
        raise Throttled("Too many subscription requests from here. Try again in an hour.")
    if not store.throttle_hit(
        f"subscribe:addr:{address.lower()}", settings.subscribe_limit_address, WINDOW_S
    ):
        log.info("subscribe: %s throttled; no mail sent", address)
        return address
    user, before = store.subscribe(address, source)
    sub = store.get_subscription(user.id)
    if before == "active":
        msg = _mail(
            settings, user.email, "Your paperfeed digest subscription",
            render_text("already.txt", site=settings.base_url,
                        prefs_url=f"{settings.base_url}/account/digest",
                        unsubscribe_url=unsubscribe_url(settings, user.id)),
            unsub=unsubscribe_url(settings, user.id),
        )  # fmt: skip
    else:
        msg = _mail(
            settings, user.email, "Confirm your paperfeed digest",
            render_text("confirm.txt", site=settings.base_url,
                        confirm_url=confirm_url(settings, user.id),
                        max_papers=sub.max_papers if sub else 10,
                        hours=f"{settings.confirm_link_hours:g}"),
        )  # fmt: skip
    try:
        deliver(settings, msg)
    except MailError as e:  # the answer stays the same; the reader may ask again
        log.warning("subscribe: could not mail %s: %s", address, e)
    return address


def confirm(store: Store, settings: Settings, token: str) -> tuple[User, bool]:
    """Use a confirmation link: (the reader, True when this made the subscription active).
    TokenError for a tampered, expired or already used link (nothing changes)."""
    uid = use_confirm(store, settings, token)
    user = store.get_user(uid)
    if user is None:
        raise InputError("This link is for an account that no longer exists.")
    return user, store.confirm_subscription(uid)


def unsubscribe(store: Store, settings: Settings, token: str) -> tuple[User | None, bool]:
    """Use an unsubscribe link (any number of times): (the reader or None when the account
    was deleted, True when this click unsubscribed them). TokenError when tampered."""
    uid = read_unsubscribe(settings, token)
    user = store.get_user(uid)
    if user is None:
        return None, False
    return user, store.unsubscribe(uid)
