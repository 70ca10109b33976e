"""CLI commands for the web feature; `register` adds them to the `paperfeed` group."""

from __future__ import annotations

import os
import socket

import click

from ..clictx import Context, pass_ctx
from ..config import SETTINGS

__all__ = ["register"]


def _bind(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn, so the URL printed is the real one (port 0 = any free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Name the protocol: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose proto
    # is IPPROTO_TCP, and with Nagle on, every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _export_settings(c: Context) -> None:
    """Worker processes rebuild the app from the environment (uvicorn starts them fresh), so
    hand them every setting that is not a default, exactly as this process resolved it."""
    for s in SETTINGS:
        if c.settings.origin(s.name) != "default":
            os.environ[s.env] = str(c.settings[s.name])


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--host", help="Address to listen on (setting web_host; default 127.0.0.1).")
    @click.option(
        "--port", type=click.IntRange(0, 65535), help="Port (setting web_port; 0 picks a free one)."
    )
    @click.option(
        "--workers", type=click.IntRange(1, 64), default=1, show_default=True,
        help="Worker processes (one per CPU core is a good start).",
    )  # fmt: skip
    @click.option("--access-log", is_flag=True, help="Log every request to stderr.")
    @pass_ctx
    def serve(c: Context, host: str | None, port: int | None, workers: int, access_log: bool):
        """Serve the web app: trending and daily pages, search, JSON API, Atom feeds.

        Prints the local URL, then serves until Ctrl-C.

        Example: paperfeed serve --port 8000
        """
        import uvicorn

        host = host or c.settings.web_host
        port = c.settings.web_port if port is None else port
        c.store  # open (and migrate) the database now: a bad path fails here, not per worker
        sock = _bind(host, port)
        real_port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"paperfeed: serving {c.settings.db} at http://{shown}:{real_port}/", err=False)
        click.echo("  (Ctrl-C to stop)", err=True)
        log_level = "info" if access_log else "warning"
        if workers == 1:
            from .app import create_app

            app = create_app(c.settings, c.store)
            config = uvicorn.Config(
                app, log_level=log_level, access_log=access_log, server_header=False,
                proxy_headers=False,
            )  # fmt: skip
            uvicorn.Server(config).run(sockets=[sock])
            return
        from uvicorn.supervisors import Multiprocess

        c.close()  # each worker opens its own connection
        _export_settings(c)
        config = uvicorn.Config(
            "paperfeed.web.app:app_from_env", factory=True, workers=workers,
            log_level=log_level, access_log=access_log, server_header=False,
            proxy_headers=False,
        )  # fmt: skip
        # uvicorn's own supervisor: restarts a worker that dies, stops all on Ctrl-C.
        Multiprocess(config, sockets=[sock]).run()
