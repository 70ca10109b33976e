"""Who is asking, and did the form come from us: session cookies and CSRF tokens.

Two cookies, both HttpOnly, SameSite=Lax, and Secure when the site's base URL is https:
- ``pf_session``: a random value whose SHA-256 the store keeps (``sessions``); set at sign-in.
- ``pf_csrf``: a random value every visitor gets on first contact. A form's hidden ``csrf``
  field is an HMAC of it under the site secret (the double-submit pattern, signed): another
  site can make a browser send the cookie, but cannot read it to compute the field.
Together with the same-origin check on the Origin header this refuses cross-site posts,
for readers signed in or not (the subscribe and sign-in forms are anonymous).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import SimpleCookie

from fastapi import HTTPException, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..models import User

__all__ = [
    "SESSION_COOKIE",
    "CSRF_COOKIE",
    "VisitorCookies",
    "current_user",
    "require_user",
    "csrf_token",
    "check_csrf",
    "start_session",
    "end_session",
]

SESSION_COOKIE = "pf_session"
CSRF_COOKIE = "pf_csrf"


def _cookie_attrs(secure: bool, max_age: int | None) -> str:
    attrs = "; Path=/; HttpOnly; SameSite=Lax"
    if secure:
        attrs += "; Secure"
    if max_age is not None:
        attrs += f"; Max-Age={max_age}"
    return attrs


def _read_cookies(scope: Scope) -> dict[str, str]:
    for k, v in scope.get("headers", ()):
        if k == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(v.decode("latin-1"))
            except Exception:  # a malformed Cookie header: treat as no cookies
                return {}
            return {name: m.value for name, m in jar.items()}
    return {}


class VisitorCookies:
    """Gives every visitor a CSRF cookie (before the page with the form is rendered, so the
    form's token matches), and applies session cookies the handlers asked to set or clear."""

    def __init__(self, app: ASGIApp, secure: bool):
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = _read_cookies(scope)
        state = scope.setdefault("state", {})
        csrf = cookies.get(CSRF_COOKIE, "")
        new_csrf = not (20 <= len(csrf) <= 64 and csrf.replace("-", "").replace("_", "").isalnum())
        if new_csrf:
            csrf = secrets.token_urlsafe(24)
        state["csrf_cookie"] = csrf
        state["cookies"] = cookies
        state["set_cookies"] = []  # (name, value or None to clear, max_age)

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                # Pages only: API answers and feeds are public data that caches may keep.
                if new_csrf and not scope.get("path", "").startswith(("/static/", "/feeds/", "/api/")):
                    headers.append("set-cookie", CSRF_COOKIE + "=" + csrf
                                   + _cookie_attrs(self.secure, 60 * 60 * 24 * 365))
                for name, value, max_age in state["set_cookies"]:
                    if value is None:
                        headers.append("set-cookie", f"{name}=" + _cookie_attrs(self.secure, 0))
                    else:
                        headers.append(
                            "set-cookie", f"{name}={value}" + _cookie_attrs(self.secure, max_age)
                        )
            await send(message)

        await self.app(scope, receive, send_with_cookies)


def _secret(request: Request) -> str:
    return request.app.state.settings.secret


def csrf_token(request: Request) -> str:
    """The value a form's hidden ``csrf`` field must carry for this visitor."""
    cookie = request.scope.get("state", {}).get("csrf_cookie", "")
    return hmac.new(_secret(request).encode(), b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, token: str | None) -> None:
    """403 unless ``token`` is this visitor's CSRF token (and the post is not cross-site)."""
    from .security import same_origin

    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise HTTPException(403, "This form can only be sent from this site.")
    sent_cookie = request.scope.get("state", {}).get("cookies", {}).get(CSRF_COOKIE)
    if not token or not sent_cookie or not hmac.compare_digest(token, csrf_token(request)):
        raise HTTPException(
            403, "This form has expired or did not come from this site. Reload the page and try again."
        )


def current_user(request: Request) -> User | None:
    """The signed-in reader, or None. Looked up once per request."""
    st = request.scope.setdefault("state", {})
    if "user" not in st:
        value = st.get("cookies", {}).get(SESSION_COOKIE)
        st["user"] = request.app.state.store.session_user(value) if value else None
    return st["user"]


def require_user(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise HTTPException(401, "Sign in to do this.")
    return user


def start_session(request: Request, user: User) -> None:
    """Sign ``user`` in: a new session row and cookie (a fresh value: no session fixation)."""
    settings = request.app.state.settings
    value = secrets.token_urlsafe(32)
    request.app.state.store.create_session(user.id, value, settings.session_days)
    st = request.scope["state"]
    st["set_cookies"].append((SESSION_COOKIE, value, int(settings.session_days * 86400)))
    st["user"] = user


def end_session(request: Request) -> None:
    st = request.scope["state"]
    value = st.get("cookies", {}).get(SESSION_COOKIE)
    if value:
        request.app.state.store.delete_session(value)
    st["set_cookies"].append((SESSION_COOKIE, None, 0))
    st["user"] = None
