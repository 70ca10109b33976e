"""Running the app under uvicorn: in this process, or in several worker processes.

Several workers each get their own listening socket on the same port (SO_REUSEPORT), so the
kernel spreads new connections evenly over them. With one shared socket (uvicorn's
``--workers``) the first worker to wake up accepts a whole burst of connections: under a
load test one worker served all 32 connections while the other sat idle, which halved the
throughput of CPU-bound search. Where fork or SO_REUSEPORT is missing, uvicorn's own
supervisor is used instead.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
from typing import Callable

from ..config import SETTINGS, Settings

__all__ = ["serve", "listen_socket", "per_worker_threads"]

log = logging.getLogger("paperfeed.web")


class BindError(OSError):
    pass


def listen_socket(host: str, port: int, reuse_port: bool = False, listen: bool = True):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Name the protocol: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # is IPPROTO_TCP, and with Nagle on, every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise BindError(f"cannot listen on {host}:{port}: {e.strerror}") from None
    if listen:
        sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def per_worker_threads(settings: Settings, workers: int) -> Settings:
    """With ``threads`` = 0, give each worker its share of the CPUs: two workers that each
    run inference on every core fight over them (on 2 cores, one thread per worker served
    1.6x more searches than two each)."""
    if settings.threads:
        return settings
    from ..search.cpu import usable_cpus

    return settings.with_overrides(threads=max(1, usable_cpus() // max(1, workers)))


def _uvicorn_options(access_log: bool, settings: Settings | None = None) -> dict:
    return dict(
        log_level="info" if access_log else "warning",
        access_log=access_log,
        server_header=False,
        proxy_headers=False,
        h11_max_incomplete_event_size=request_head_limit(settings),
    )


def request_head_limit(settings: Settings | None) -> int:
    """Bytes of request line and headers uvicorn's h11 parser reads before giving up.

    Its default (16 kB) is below the longest query we accept, and a request over it is cut
    off with "Invalid HTTP request" (the client sees a reset) instead of an answer. Room for
    a query of ``max_query_chars`` characters of 4-byte UTF-8, each percent-encoded (12
    bytes), plus the other parameters and headers, lets the app itself answer 422 with
    a message for anything up to several times the limit."""
    chars = settings.max_query_chars if settings is not None else 10_000
    return max(1 << 20, chars * 12 + (64 << 10))


def serve(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    access_log: bool,
    announce: Callable[[int], None],
    store=None,
) -> None:
    """Serve until Ctrl-C/SIGTERM; ``announce(port)`` is called once the port is bound."""
    import uvicorn

    settings = per_worker_threads(settings, workers)
    forked = workers > 1 and hasattr(os, "fork") and hasattr(socket, "SO_REUSEPORT")
    if workers > 1 and forked:
        _serve_forked(settings, host, port, workers, access_log, announce)
        return
    sock = listen_socket(host, port)
    announce(sock.getsockname()[1])
    if workers == 1:
        from .app import create_app

        config = uvicorn.Config(
            create_app(settings, store), **_uvicorn_options(access_log, settings)
        )
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    # Workers started by uvicorn rebuild the app from the environment: hand them every
    # setting that is not a default, as this process resolved it.
    for s in SETTINGS:
        if settings.origin(s.name) != "default":
            os.environ[s.env] = str(settings[s.name])
    config = uvicorn.Config(
        "paperfeed.web.app:app_from_env", factory=True, workers=workers,
        **_uvicorn_options(access_log, settings),
    )  # fmt: skip
    Multiprocess(config, sockets=[sock]).run()


def _serve_forked(settings, host, port, workers, access_log, announce) -> None:
    # The parent keeps the port (bound, not listening: it gets no connections) so that a
    # worker restarted later, or port 0's choice, stays the same.
    holder = listen_socket(host, port, reuse_port=True, listen=False)
    real_port = holder.getsockname()[1]
    # Each worker says "listening" through this pipe; the URL is printed once all are, so
    # a client that connects as soon as it reads the URL is queued, never refused.
    ready: list[int] = list(os.pipe())  # [read end, write end]; emptied once all are up
    children: dict[int, float] = {}
    stopping = False

    def spawn() -> None:
        pid = os.fork()
        if pid:
            children[pid] = time.monotonic()
            return
        code = 0
        try:  # the worker: its own socket, its own store connection, its own app
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            holder.close()
            sock = listen_socket(host, real_port, reuse_port=True)
            if ready:  # a first worker, not a replacement: say that it listens
                os.close(ready[0])
                os.write(ready[1], b"1")  # connections now wait in this socket's backlog
                os.close(ready[1])
            import uvicorn

            from .app import create_app

            config = uvicorn.Config(
                create_app(settings), **_uvicorn_options(access_log, settings)
            )
            uvicorn.Server(config).run(sockets=[sock])
        except BaseException:  # noqa: BLE001 - report, then leave without running parent code
            log.exception("worker %d failed", os.getpid())
            code = 1
        finally:
            os._exit(code)

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(workers):
            spawn()
        read_end, write_end = ready
        ready.clear()
        os.close(write_end)
        listening = 0
        while listening < workers:
            got = os.read(read_end, workers)
            if not got:  # every worker closed the pipe: some died before listening
                break
            listening += len(got)
        os.close(read_end)
        announce(real_port)
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            started = children.pop(pid, time.monotonic())
            if not stopping:
                log.warning("worker %d exited (status %d); starting another", pid, status)
                if time.monotonic() - started < 1.0:
                    time.sleep(1.0)  # a worker that dies at once: do not spin
                spawn()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        holder.close()
