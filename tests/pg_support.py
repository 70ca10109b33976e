"""A throwaway PostgreSQL server for the tests: Debian's postgresql binaries, initdb on a temp
folder, pg_ctl on a free loopback port; one server per test session, one fresh database per
test (copied from a migrated template, so a test starts in milliseconds).

When the binaries are missing the PostgreSQL tests are skipped, except under CI=true where
``.ci/run`` installs them and a missing server is a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

__all__ = ["PgServer", "find_pg_bin", "start_server"]

_TEMPLATE = "pf_template"


def find_pg_bin() -> Path | None:
    """The folder with initdb/pg_ctl: $PG_BIN, then Debian's newest, then $PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
                          key=lambda p: int(p.name) if p.name.isdigit() else 0)
        if versions:
            return versions[-1] / "bin"
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self, bin_dir: Path, durable: bool = False):
        self.bin = bin_dir
        self.durable = durable
        self.root = Path(tempfile.mkdtemp(prefix="pf-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user = "postgres"
        self._run_as: list[str] = []
        self._lock = threading.Lock()
        if os.geteuid() == 0:
            # initdb refuses to run as root: run the server as the postgres user Debian made.
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root and there is no postgres user to run the server")
            shutil.chown(self.root, "postgres")
            self._run_as = ["runuser", "-u", "postgres", "--"]
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name

    def _cmd(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*self._run_as, *args], check=True, capture_output=True, text=True, **kw)

    def start(self) -> "PgServer":
        self._cmd(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root} "
            "-c max_connections=300 -c shared_buffers=512MB"
        )
        if not self.durable:
            # A test server: durability off (the tests never survive a host crash anyway).
            # Benchmarks ask for a durable one (the defaults: fsync, full pages).
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-o", opts, "-w", "-t", "60", "start")
        self.admin_url = self.url("postgres")
        self._make_template()
        return self

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as c:
            c.execute(sql)

    def _make_template(self) -> None:
        from paperfeed.store import open_store

        self._admin(f"CREATE DATABASE {_TEMPLATE}")
        open_store(self.url(_TEMPLATE)).close()  # migrated once; every test copies it

    def new_database(self) -> str:
        """A fresh, migrated, empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        with self._lock:  # CREATE DATABASE ... TEMPLATE needs the template to be idle
            self._admin(f"CREATE DATABASE {name} TEMPLATE {_TEMPLATE}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        try:
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception:  # noqa: BLE001 - a leftover database dies with the server
            pass

    def stop(self) -> None:
        try:
            self._cmd(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_server(durable: bool = False) -> PgServer | str:
    """A running server, or why there is none. ``durable``: PostgreSQL's default durability
    (benchmarks), else fsync off (tests)."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        return "PostgreSQL binaries not found (Debian: apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        return f"psycopg is not installed: {e}"
    server = PgServer(bin_dir, durable=durable)
    try:
        return server.start()
    except subprocess.CalledProcessError as e:
        server.stop()
        return f"cannot start PostgreSQL: {e.stderr or e.stdout}"
    except BaseException:
        server.stop()
        raise
