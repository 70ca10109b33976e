"""Sign-in by email link.

The link carries a signed, expiring, single-use ``login`` token with the address in it. It
opens a page whose button POSTs the sign-in (mail scanners such as Outlook Safe Links GET
every link in a message: a GET reads the token but never uses it up). A reader is created
when a link is first used, so asking for a link never reveals or changes whether an address
is known, and a typo never leaves an account behind.

Requests are throttled per address and per client (``login_per_address``,
``login_per_client`` an hour); the same message is shown either way.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import quote

from ..config import DEFAULT_SECRET, Settings
from ..errors import ConfigError, InputError
from ..mail import deliver
from ..models import User
from ..store import Store
from ..store.base import normalize_email
from .tokens import Token, TokenError, consume_token, make_token, read_token

__all__ = [
    "LoginThrottled",
    "login_link",
    "request_login",
    "check_login_link",
    "complete_login",
    "login_max_age",
]

_HOUR = 3600.0


class LoginThrottled(InputError):
    """Too many sign-in requests for this address or from this client; try again later."""


def login_max_age(settings: Settings) -> float:
    return settings.login_link_minutes * 60.0


def login_link(settings: Settings, email: str, next_path: str = "") -> str:
    """A fresh sign-in link for ``email`` (the address is checked, not looked up)."""
    if settings.secret == DEFAULT_SECRET or len(settings.secret) < 16:
        # The web app would refuse such a link anyway; and anyone knowing the default could
        # forge one. Same rule as `paperfeed serve`.
        raise ConfigError(
            "sign-in links need the site's own secret: set PAPERFEED_SECRET (16 characters or "
            "more) to the value `paperfeed serve` uses"
        )
    address = normalize_email(email)
    data = {"email": address}
    if next_path:
        data["next"] = next_path
    token = make_token(settings.secret, "login", data)
    return f"{settings.base_url}/login/confirm?token={quote(token)}"


def _message(settings: Settings, address: str, link: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = address
    msg["Subject"] = "Sign in to paperfeed"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or "localhost")
    minutes = int(settings.login_link_minutes)
    msg.set_content(
        "Someone (we hope you) asked to sign in to paperfeed with this address.\n\n"
        f"Open this link and press the button to sign in:\n{link}\n\n"
        f"The link works once and for {minutes} minutes. If you did not ask, ignore this mail:\n"
        "nothing happens without the button.\n"
    )
    return msg


def request_login(store: Store, settings: Settings, email: str, client: str,
                  next_path: str = "") -> str:  # fmt: skip
    """Mail a sign-in link to ``email``; returns the normalised address.

    InputError for an address that is not one; LoginThrottled when this address or this
    client asked too often. Known and unknown addresses are treated exactly alike.
    """
    address = normalize_email(email)
    # The client first: a flood of addresses from one client stops before any mail.
    if not store.throttle_hit(f"login:ip:{client}", settings.login_per_client, _HOUR):
        raise LoginThrottled("Too many sign-in requests from here. Try again in an hour.")
    if not store.throttle_hit(f"login:addr:{address.lower()}", settings.login_per_address, _HOUR):
        raise LoginThrottled(
            "Too many sign-in links were asked for this address. Try again in an hour."
        )
    deliver(settings, _message(settings, address, login_link(settings, address, next_path)))
    return address


def check_login_link(store: Store, settings: Settings, token: str) -> Token:
    """Read a sign-in link for the confirm page without using it up; TokenError (with a
    message for the reader) when it is tampered with, expired or used."""
    t = read_token(settings.secret, "login", token, login_max_age(settings))
    if not t.nonce or store.token_used(t.nonce):
        raise TokenError("This link has already been used. Ask for a new one.")
    if not isinstance(t.data.get("email"), str):
        raise TokenError("This link is not valid.")
    return t


def complete_login(store: Store, settings: Settings, token: str) -> tuple[User, Token]:
    """Use the link up (once) and return the reader, created now when new."""
    t = consume_token(store, settings.secret, "login", token, login_max_age(settings))
    email = t.data.get("email")
    if not isinstance(email, str):
        raise TokenError("This link is not valid.")
    user, _ = store.get_or_create_user(email)
    return user, t
