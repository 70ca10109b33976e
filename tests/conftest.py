"""Shared test fixtures: real SQLite files in tmp_path, a real throwaway PostgreSQL server
(tests/pg_support.py), the real CLI in a subprocess.

``db`` is the parametrised database fixture: each test that takes it runs twice, on a SQLite
file and on a fresh PostgreSQL database (``[sqlite]`` / ``[postgres]`` in the test id)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.db_support import BACKENDS, is_pg

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def _load_bench(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def import_bench():
    return _load_bench("import_bench")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "papers.db"


@pytest.fixture(scope="session")
def pg_server():
    """The session's PostgreSQL server (started on first use)."""
    from tests.pg_support import start_server

    server = start_server()
    if isinstance(server, str):
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL for the [postgres] tests: {server}")
        pytest.skip(server)
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, migrated PostgreSQL database for one test."""
    url = pg_server.new_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path: Path) -> str:
    """The database a test runs on, as the ``db`` setting names it: a SQLite file path, or a
    PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "papers.db")
    return request.getfixturevalue("pg_url")




class Cli:
    """Runs `python -m paperfeed` as a user would, against one database (file or URL)."""

    def __init__(self, db: Path | str, cwd: Path):
        self.db = db
        self.cwd = cwd

    def __call__(self, *args: str, env: dict | None = None, check: bool = False, timeout=120):
        e = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
        e["PAPERFEED_DB"] = str(self.db)
        e["PAPERFEED_CACHE_DIR"] = os.environ.get("PAPERFEED_CACHE_DIR", str(self.cwd / "cache"))
        e.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "paperfeed", *args],
            capture_output=True, text=True, env=e, cwd=self.cwd, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"paperfeed {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str, **kw):
        proc = self(*args, "--json", **kw)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc, json.loads(proc.stdout)


@pytest.fixture
def cli(db: str, tmp_path: Path) -> Cli:
    """The CLI on this test's database, on each backend in turn (``db``)."""
    return Cli(db, tmp_path)


@pytest.fixture
def cli_for(tmp_path: Path):
    """A Cli on a given database file (the readers tests share one between app and CLI)."""
    return lambda db: Cli(db if is_pg(str(db)) else Path(db), tmp_path)

