"""CLI commands for the web feature; `register` adds them to the `paperfeed` group."""

from __future__ import annotations

import click

from ..clictx import Context, pass_ctx

__all__ = ["register"]


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
        from .app import require_secret
        from .serve import BindError, serve as run_server

        require_secret(c.settings)  # before any worker starts: one clear message

        host = host or c.settings.web_host
        port = c.settings.web_port if port is None else port
        c.store  # open (and migrate) the database now: a bad path fails here, not per worker
        if workers > 1:
            c.close()  # each worker opens its own connection

        def announce(real_port: int) -> None:
            shown = f"[{host}]" if ":" in host else host
            from ..store.postgres import redact_url

            click.echo(f"paperfeed: serving {redact_url(c.settings.db)} at http://{shown}:{real_port}/")
            click.echo("  (Ctrl-C to stop)", err=True)

        try:
            run_server(
                c.settings, host, port, workers, access_log, announce,
                store=c.store if workers == 1 else None,
            )  # fmt: skip
        except BindError as e:
            raise click.ClickException(str(e)) from None
