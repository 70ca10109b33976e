"""A real SMTP server on loopback (aiosmtpd) that records what it accepts and can misbehave
on cue: refuse recipients (4xx/5xx), answer every DATA with a code, drop the connection at the
n-th message, or take the n-th message and then hold its answer (a sender killed meanwhile
never learns it was accepted: the "uncertain" case)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from contextlib import contextmanager

from aiosmtpd.controller import Controller

__all__ = ["Recorder", "running_smtp", "smtp_env", "free_port", "wait_for"]


def free_port() -> int:
    with socket.socket() as probe:  # aiosmtpd needs a port up front (it connects to check)
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Recorder:
    def __init__(self):
        self.got: list[email.message.EmailMessage] = []
        self.raw: list[bytes] = []
        self.refuse: dict[str, str] = {}  # recipient -> reply, e.g. "550 no such user"
        self.data_reply: str | None = None  # e.g. "451 try later" for every message
        self.drop_at: set[int] = set()  # 1-based numbers of DATA commands to drop
        self.hold_at: int | None = None  # accept this one, then wait for ``release``
        self.release = threading.Event()
        self.datas = 0
        self._lock = threading.Lock()

    def to(self) -> list[str]:
        with self._lock:
            return [str(m["To"]) for m in self.got]

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.datas += 1
            n = self.datas
        if n in self.drop_at:
            server.transport.abort()  # gone mid-conversation: no reply at all
            return "421 dropped"
        if self.data_reply:
            return self.data_reply
        raw = envelope.original_content or envelope.content
        with self._lock:
            self.raw.append(raw)
            self.got.append(email.message_from_bytes(raw, policy=email.policy.default))
        if self.hold_at == n:
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return "250 OK"


def smtp_env(port: int) -> dict[str, str]:
    return {
        "PAPERFEED_SMTP_HOST": "127.0.0.1",
        "PAPERFEED_SMTP_PORT": str(port),
        "PAPERFEED_SMTP_SECURITY": "none",
        "PAPERFEED_SMTP_TIMEOUT": "10",
        "PAPERFEED_MAIL_FROM": "digest@papers.example.org",
    }


@contextmanager
def running_smtp():
    """A started server (use it in a fixture: ``with running_smtp() as h: yield h``)."""
    port = free_port()
    h = Recorder()
    c = Controller(h, hostname="127.0.0.1", port=port)
    c.start()
    h.port = port
    try:
        yield h
    finally:
        h.release.set()
        c.stop()


def wait_for(cond, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
