"""One polite HTTP client for every harvester.

The rules it enforces (arXiv's API terms ask for them; Hugging Face gets the same courtesy):

* at most one request every ``harvest_interval`` seconds per host, retries and redirects
  included. The gap is measured from the *end* of the previous request, so the server sees
  at least that much between two arrivals even when one of them waited for a new connection;
* a User-Agent naming paperfeed and a contact address (``contact_email``);
* 429 and 503 (and the other 5xx, dropped connections, timeouts, pages the caller cannot
  read) are retried: after ``Retry-After`` when the server sends one, otherwise after an
  exponential backoff with jitter, capped at ``harvest_backoff_cap``;
* 403 stops at once (retrying would only lengthen a ban), and so does any other reply we
  do not expect, with a message that says what came back;
* a host name that does not resolve (offline, DNS down) fails at once too: waiting out five
  backoffs cannot bring the network back, and the scheduler tries again on its own clock.

The spacing gate is shared by every client in the process, so the web app's "submit a
paper" and a scheduled harvest in the same process cannot together go faster than allowed.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any, Callable, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from ..config import SETTINGS
from ..errors import HarvestError, HarvestOffline, HarvestRefused, HarvestStopped

__all__ = [
    "PoliteClient",
    "RetryableReply",
    "user_agent",
    "parse_retry_after",
    "contact_warning",
    "DEFAULT_CONTACT",
]

# The contact_email default: it reaches no one, and arXiv asks harvesters for a real address.
DEFAULT_CONTACT = next(s.default for s in SETTINGS if s.name == "contact_email")

log = logging.getLogger("paperfeed.harvest")

T = TypeVar("T")

# Statuses that mean "not now": worth another try after a wait.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


class RetryableReply(Exception):
    """Raised by a ``check`` function: the reply was 200 but cannot be used (truncated XML, an
    empty first page). The client retries it like a server error, within the same budget."""


def user_agent(contact_email: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("paperfeed")
    except PackageNotFoundError:  # running from a source tree that was never installed
        v = "0"
    return f"paperfeed/{v} (mailto:{contact_email})"


def contact_warning(settings: Any) -> str | None:
    """The warning to give once per harvest command or `paperfeed run` while contact_email is
    still the default, or None."""
    if settings.contact_email.strip().lower() != DEFAULT_CONTACT:
        return None
    return (
        f"contact_email is still the default {DEFAULT_CONTACT}: arXiv asks harvesters for an "
        "address it can reach; set PAPERFEED_CONTACT_EMAIL (or contact_email in the config)"
    )


def _name_not_resolved(exc: BaseException) -> socket.gaierror | None:
    """The getaddrinfo failure behind an httpx ConnectError, if that is what it is. httpx
    wraps httpcore's error, which wraps the socket's, as cause, context or argument."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return e
        todo.extend([e.__cause__, e.__context__, *e.args])
    return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class _Gate:
    """Per-host turn-taking: one request at a time, ``interval`` after the last one ended."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last_end: float | None = None


_GATES: dict[str, _Gate] = {}
_GATES_LOCK = threading.Lock()


def _gate(host: str) -> _Gate:
    with _GATES_LOCK:
        g = _GATES.get(host)
        if g is None:
            g = _GATES[host] = _Gate()
        return g


class PoliteClient:
    """GET with spacing, retries and clear failures. Use one per harvest run (or longer)."""

    def __init__(
        self,
        settings: Any,
        transport: httpx.BaseTransport | None = None,
        stop: threading.Event | None = None,
        rng: Callable[[], float] = random.random,
    ):
        self.interval: float = settings.harvest_interval
        self.max_retries: int = settings.harvest_max_retries
        self.backoff_cap: float = settings.harvest_backoff_cap
        self.user_agent = user_agent(settings.contact_email)
        # Set from a signal handler to make waits (spacing, backoff) end with HarvestStopped.
        self.stop = stop if stop is not None else threading.Event()
        self._rng = rng
        self._http = httpx.Client(
            transport=transport,
            timeout=settings.harvest_timeout,
            headers={"User-Agent": self.user_agent},
            # Redirects are followed here, not by httpx, so each hop takes its turn at the gate.
            follow_redirects=False,
        )
        self.requests = 0  # sent, retries included (for reports and tests)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "PoliteClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- waiting ---------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Wait, unless asked to stop: then raise HarvestStopped (a checkpoint is kept)."""
        if self.stop.is_set() or (seconds > 0 and self.stop.wait(seconds)):
            raise HarvestStopped("stopped on request; rerun to resume from the checkpoint")

    def backoff(self, failures: int) -> float:
        """Exponential backoff with "equal jitter": never under half the step, so a crowd of
        clients spreads out without any of them hammering the server."""
        base = self.interval if self.interval > 0 else 1.0
        step = min(self.backoff_cap, base * 2 ** (failures - 1))
        return step / 2 + self._rng() * step / 2

    # --- requests --------------------------------------------------------------------------
    def _send(self, url: str, params: dict | None) -> httpx.Response:
        gate = _gate(urlsplit(url).netloc)
        with gate.lock:
            if gate.last_end is not None:
                self.sleep(gate.last_end + self.interval - time.monotonic())
            self.sleep(0)  # a stop asked for while we waited for the lock
            try:
                self.requests += 1
                return self._http.get(url, params=params)
            finally:
                gate.last_end = time.monotonic()

    def get(
        self,
        url: str,
        params: dict | None = None,
        check: Callable[[httpx.Response], T] = lambda r: r,  # type: ignore[assignment,return-value]
    ) -> T:
        """GET ``url`` and return ``check(response)`` for a 2xx reply, retrying what is worth
        retrying. ``check`` may raise RetryableReply (retry) or HarvestError (stop)."""
        failures = 0
        redirects = 0
        what = url
        while True:
            retry_after: float | None = None
            try:
                resp = self._send(url, params)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError) and (dns := _name_not_resolved(exc)):
                    host = urlsplit(url).hostname or url
                    raise HarvestOffline(
                        f"{what}: cannot resolve the host name {host!r} ({dns.strerror or dns}); "
                        "offline or DNS failing? Not retried"
                    ) from None
                # Refused or dropped connections, timeouts, a reply cut off mid-body.
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    try:
                        return check(resp)
                    except RetryableReply as exc:
                        problem = str(exc)
                    except HarvestError as exc:  # the caller's "stop": say which server
                        raise type(exc)(f"{what}: {exc}") from None
                elif status in _REDIRECTS and resp.headers.get("location"):
                    redirects += 1
                    if redirects > _MAX_REDIRECTS:
                        raise HarvestError(f"{what}: more than {_MAX_REDIRECTS} redirects")
                    url, params = urljoin(str(resp.url), resp.headers["location"]), None
                    continue
                elif status == 403:
                    raise HarvestRefused(
                        f"{what}: the server refused us (HTTP 403). Stopped without retrying; "
                        "check contact_email and harvest_interval, and wait before trying again"
                    )
                elif status in _RETRY_STATUSES:
                    problem = f"HTTP {status}"
                    retry_after = parse_retry_after(resp.headers.get("retry-after"))
                else:
                    body = " ".join(resp.text[:200].split())
                    raise HarvestError(
                        f"{what}: unexpected reply HTTP {status}"
                        + (f" ({body})" if body else "")
                    )
            failures += 1
            if failures > self.max_retries:
                raise HarvestError(f"{what}: gave up after {failures} tries; last: {problem}")
            if retry_after is not None:
                if retry_after > self.backoff_cap:
                    raise HarvestError(
                        f"{what}: {problem} asks us to wait {retry_after:.0f} s (Retry-After), "
                        f"more than harvest_backoff_cap ({self.backoff_cap:.0f} s); try later"
                    )
                wait, why = retry_after, "Retry-After"
            else:
                wait, why = self.backoff(failures), "backoff"
            log.warning(
                "%s: %s; retry %d of %d in %.1f s (%s)",
                what, problem, failures, self.max_retries, wait, why,
            )  # fmt: skip
            self.sleep(wait)
