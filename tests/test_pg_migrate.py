"""`paperfeed migrate` on both backends: a new database gets every step and says which; a
second run finds it up to date; --json says the same for scripts."""

from __future__ import annotations

from paperfeed.store.migrations import MIGRATIONS
from paperfeed.store.pg_migrations import PG_MIGRATIONS
from tests.db_support import is_pg


def test_migrate_applies_every_step_then_is_up_to_date(db, request, cli_for):
    pg_server = request.getfixturevalue("pg_server") if is_pg(db) else None
    if pg_server:
        # A database nobody opened yet (the fixture's is migrated already).
        db = db.rsplit("/", 1)[0] + "/" + "fresh_" + db.rsplit("/", 1)[1]
        pg_server._admin(f"CREATE DATABASE {db.rsplit('/', 1)[1]}")
        # A password in the URL (the test server trusts loopback, so any will do) is never shown.
        db = db.replace("postgres@", "postgres:hunter2@")
        steps = sorted(name for name, _ in PG_MIGRATIONS)
    else:
        steps = sorted(name for name, _ in MIGRATIONS)
    cli = cli_for(db)
    try:
        first = cli("migrate", check=True)
        assert [ln.split(" ", 1)[1] for ln in first.stdout.splitlines()[:-1]] == steps
        assert first.stdout.splitlines()[-1].endswith(
            f"up to date ({len(steps)} migration steps, {len(steps)} applied now)")
        assert "hunter2" not in first.stdout + first.stderr
        second = cli("migrate", check=True)
        assert second.stdout.strip().endswith(f"up to date ({len(steps)} migration steps)")
        _, out = cli.json("migrate")
        assert out == {"database": out["database"], "backend": "postgresql" if is_pg(db) else "sqlite",
                       "applied": [], "migrations": len(steps)}
    finally:
        if pg_server:
            pg_server.drop_database(db)
