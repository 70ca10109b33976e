"""Signed links, one signer per purpose.

Every link paperfeed sends or prints (sign in, confirm a subscription, unsubscribe, "not for
me" from a mail) is an itsdangerous token: the payload, a random nonce and a timestamp, signed
with the ``secret`` setting and salted with the link's purpose, so a token made for one purpose
never passes for another. Expiry comes from the timestamp; single use from the store's
``used_tokens`` table, keyed on the nonce.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..errors import InputError
from ..store import Store

__all__ = ["TokenError", "Token", "make_token", "read_token", "consume_token", "PURPOSES"]

# Every purpose a token can have; reading one with any other name is a programming error.
PURPOSES = frozenset(
    {"login", "confirm", "unsubscribe", "rate", "feed"}
)


class TokenError(InputError):
    """The link is tampered with, expired, already used, or made for something else. The
    message says which, in words a reader understands."""


@dataclass(frozen=True, slots=True)
class Token:
    purpose: str
    data: dict
    nonce: str
    issued_at: float
    max_age: float

    @property
    def expires_at(self) -> float:
        return self.issued_at + self.max_age


def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return URLSafeTimedSerializer(secret, salt=f"paperfeed.{purpose}")


def make_token(secret: str, purpose: str, data: dict) -> str:
    """A signed token for ``purpose`` carrying ``data`` (small JSON values) and a fresh nonce."""
    return _serializer(secret, purpose).dumps({"d": data, "n": secrets.token_urlsafe(12)})


def read_token(secret: str, purpose: str, token: str, max_age: float) -> Token:
    """Check signature, purpose and age; does not use the token up (a GET may read it)."""
    s = _serializer(secret, purpose)
    if not token or len(token) > 2000:
        raise TokenError("This link is not valid.")
    try:
        payload, issued = s.loads(token, max_age=max_age, return_timestamp=True)
    except SignatureExpired:
        raise TokenError("This link has expired. Ask for a new one.") from None
    except BadSignature:
        raise TokenError("This link is not valid (it may have been cut or changed).") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("d"), dict):
        raise TokenError("This link is not valid.")
    return Token(purpose, payload["d"], str(payload.get("n", "")), issued.timestamp(), max_age)


def consume_token(store: Store, secret: str, purpose: str, token: str, max_age: float) -> Token:
    """Read a single-use token and mark it used, atomically; a second use is refused."""
    t = read_token(secret, purpose, token, max_age)
    if not t.nonce or not store.use_token(t.nonce, purpose, t.expires_at):
        raise TokenError("This link has already been used. Ask for a new one.")
    return t


def token_age_ok(t: Token) -> bool:
    return time.time() <= t.expires_at
