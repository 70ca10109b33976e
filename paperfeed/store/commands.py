"""CLI commands for the database itself; ``register`` adds them to the ``paperfeed`` group:
``migrate`` (apply schema steps) and ``copy`` (a whole database to another backend)."""

from __future__ import annotations

import click

from ..clictx import Context, echo_json, pass_ctx

__all__ = ["register"]


def register(main: click.Group) -> None:
    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_ctx
    def migrate(c: Context, as_json: bool) -> None:
        """Create or upgrade the database's schema: apply every migration step it has not
        had, each in its own transaction, and say which (or that it is up to date). Every
        command does this on start; run it on its own before starting new versions of
        `serve` and `run` on a shared PostgreSQL database. Safe to run from two machines at
        once (one applies, the other waits and finds nothing to do).

        Example: paperfeed --db postgresql://paperfeed@db.example.org/paperfeed migrate
        """
        from . import open_store
        from .copy import describe
        from .postgres import is_postgres_url

        s = c.settings
        store = open_store(s.db, busy_timeout=s.busy_timeout, migrate=False, pool_size=1)
        try:
            applied = store.migrate()
            total = store.applied_migrations()
        finally:
            store.close()
        name = describe(s.db)
        if as_json:
            echo_json({"database": name, "backend": "postgresql" if is_postgres_url(s.db) else "sqlite",
                       "applied": applied, "migrations": len(total)})  # fmt: skip
            return
        for step in applied:
            click.echo(f"applied {step}")
        click.echo(f"{name}: up to date ({len(total)} migration steps"
                   f"{f', {len(applied)} applied now' if applied else ''})")  # fmt: skip

    @main.command("copy")
    @click.option("--from", "source", required=True, metavar="DB",
                  help="The database to copy: a SQLite file or a postgresql:// URL.")  # fmt: skip
    @click.option("--to", "target", required=True, metavar="DB",
                  help="Where to: an empty database (a SQLite file is created), or one an "
                  "interrupted copy from the same source left.")  # fmt: skip
    @click.option("--batch", type=click.IntRange(1), default=2000, show_default=True,
                  help="Rows per transaction in the target.")  # fmt: skip
    @click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
    @pass_ctx
    def copy_cmd(c: Context, source: str, target: str, batch: int, as_json: bool) -> None:
        """Copy a whole database into another, between backends (SQLite to PostgreSQL, back,
        or between two of one kind): every table, with its row count checked on both sides
        and a checksum of the papers. Interrupted (Ctrl-C, kill -9, a lost connection), it
        goes on where it stopped when run again with the same arguments. Stop `serve` and
        `run` on the source meanwhile; search indexes are not copied (`paperfeed index`
        rebuilds them from the copied vectors).

        Example: paperfeed copy --from paperfeed.db --to postgresql://paperfeed@db.example.org/paperfeed
        """
        from .copy import copy_database, describe

        s = c.settings
        if not as_json:
            click.echo(f"copying {describe(source)} -> {describe(target)}")

        def shown(t) -> None:
            if not as_json:
                now = f" ({t.copied_now} copied now)" if t.copied_now != t.source_rows else ""
                click.echo(f"  {t.name:<22} {t.source_rows:>10} rows{now}")

        report = copy_database(
            source, target, batch=batch, busy_timeout=s.busy_timeout,
            pool_size=min(s.db_pool_size, 4), progress=c.progress, on_table=shown,
        )  # fmt: skip
        if as_json:
            echo_json(report.as_dict())
            return
        state = ("already complete; checked again" if report.already_done
                 else "resumed and complete" if report.resumed else "complete")  # fmt: skip
        click.echo(f"row counts match in all {len(report.tables)} tables; papers checksum "
                   f"{report.target_checksum} on both sides")  # fmt: skip
        click.echo(f"copy {state}: {len(report.tables)} tables, "
                   f"{sum(t.target_rows for t in report.tables)} rows "
                   f"({report.copied_now} copied now)")  # fmt: skip
