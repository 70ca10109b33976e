"""What the web tests share: a real SQLite file filled from the bundled sample of real papers
(plus a few planted ones: hostile markup, math, an old-style id) and settings pointing at it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from paperfeed.config import load_settings
from paperfeed.importer import import_files, import_records, sample_path
from paperfeed.models import ImportReport, Paper
from paperfeed.search import update_index
from paperfeed.sources import iter_file
from paperfeed.store import open_store
from tests.db_support import is_pg, private_copy

# The day the bundled Hugging Face listing is from, and its most upvoted paper (118).
HF_DAY = "2026-06-12"
HF_TOP = ("2606.13681", "EvoArena")

XSS_ID = "2606.99001"
XSS_TITLE = "<img src=x onerror=alert(1)>"
XSS_ABSTRACT = (
    '<script>alert("abstract")</script> An abstract with math $x^2$ and a hostile '
    "$\\text{<img src=x onerror=alert(2)>}$ span, and $\\href{javascript:alert(3)}{link}$."
)
MATH_ID = "2606.99002"
OLD_ID = "hep-th/9901001"
# A record like those scraped from the seed listing page: a title and an abstract, no arXiv id,
# authors or date. It stays reachable by its id but must not crowd listings, search or feeds.
UNLISTED_ID = "seed:01"
UNLISTED_TITLE = "MoS: Unleashing Parameter Efficiency of Low-Rank Adaptation with Mixture of Shards"

PLANTED = [
    Paper(
        id=XSS_ID,
        title=XSS_TITLE,
        abstract=XSS_ABSTRACT,
        authors=["<b>Mallory</b> Example", "Eve O'Neil"],
        categories=["cs.CR"],
        published="2026-06-11T12:00:00Z",
        links={"code": "javascript:alert(4)", "project": "https://example.org/project"},
        source="hf-daily",
        upvotes=7,
        num_comments=1,
        listed_on=HF_DAY,
    ),
    Paper(
        id=MATH_ID,
        title="Sorting in $O(n \\log n)$ time, and a broken $\\frac{1}{$ span",
        abstract="We sort $n$ keys in $O(n \\log n)$ comparisons. " + "Filler sentence. " * 40,
        authors=["Ada Lovelace"],
        categories=["cs.DS"],
        version=1,
        published="2026-06-10T09:00:00Z",
        updated="2026-06-10T09:00:00Z",
        source="arxiv-api",
    ),
    Paper(
        id=OLD_ID,
        title="An old-style identifier",
        abstract="A paper from the last century, with a slash in its id.",
        authors=["Paul Dirac"],
        categories=["hep-th"],
        version=2,
        published="1999-01-01T00:00:00Z",
        updated="1999-02-01T00:00:00Z",
        source="arxiv-oai",
    ),
    Paper(
        id=UNLISTED_ID,
        title=UNLISTED_TITLE,
        # Words of the HF sample's agent and memory papers, so search and similar papers would
        # rank it high if it were not left out.
        abstract="LLM agents with memory evolution in dynamic environments: tracking memory "
        "evolution for robust LLM agents, benchmarks of agent memory and safety.",
        source="seed",
    ),
]


def shared_cache(tmp_path_factory) -> Path:
    """One cache folder (the exported embedding model) for every web test in the session."""
    if os.environ.get("PAPERFEED_CACHE_DIR"):
        return Path(os.environ["PAPERFEED_CACHE_DIR"])
    path = tmp_path_factory.getbasetemp() / "web-cache"
    path.mkdir(exist_ok=True)
    return path


def build_db(path: Path, leave_out: frozenset[str] = frozenset()) -> None:
    """Import the bundled sample (as `paperfeed import --sample` does), except the papers in
    ``leave_out``, and plant the test papers."""
    store = open_store(str(path))
    try:
        if leave_out:
            report = ImportReport()
            records = (
                r for r in iter_file(sample_path()) if getattr(r, "id", None) not in leave_out
            )
            import_records(store, records, report)
        else:
            report = import_files(store, [sample_path()])
        assert report.added >= 55 and report.rejected == 0, report.as_dict()
        store.upsert_papers(PLANTED)
        # Searches never index (the app's background thread or `paperfeed index` does):
        # the tests' requests start with the keyword index up to date.
        update_index(store, load_settings(env={"PAPERFEED_DB": str(path)}), keyword_only=True)
    finally:
        store.close()


# Sample databases built once per session (SQLite templates; their PostgreSQL twins are made
# once too, by private_copy): (base temp folder, papers left out) -> template path.
_TEMPLATES: dict[tuple[str, frozenset[str]], Path] = {}


def sample_template(tmp_path_factory, leave_out: frozenset[str] = frozenset()) -> Path:
    """The session's SQLite file built by ``build_db`` (shared by every web test module)."""
    key = (str(tmp_path_factory.getbasetemp()), leave_out)
    if key not in _TEMPLATES:
        path = tmp_path_factory.mktemp("web-template") / "papers.db"
        build_db(path, leave_out)
        _TEMPLATES[key] = path
    return _TEMPLATES[key]


class _On:
    """``request`` as private_copy sees it, with the backend given instead of its param."""

    def __init__(self, request, backend: str):
        self.param = backend
        self._request = request

    def getfixturevalue(self, name):
        return self._request.getfixturevalue(name)

    def addfinalizer(self, fn):
        self._request.addfinalizer(fn)


def copy_like(request, db, template: Path, tmp_path: Path):
    """A private copy of ``template`` on the backend ``db`` is on (a test writing next to a
    module's shared, read-only database gets its own on the same backend)."""
    return private_copy(_On(request, "postgres" if is_pg(db) else "sqlite"), template, tmp_path)


def env_for(db: Path, cache_dir: Path, **extra: str) -> dict[str, str]:
    """Settings as environment variables (what a `paperfeed serve` subprocess gets too)."""
    env = {
        "PAPERFEED_DB": str(db),
        "PAPERFEED_CACHE_DIR": os.environ.get("PAPERFEED_CACHE_DIR", str(cache_dir)),
        "PAPERFEED_PROGRESS": "false",
        "PAPERFEED_SECRET": "test-secret-0123456789abcdef",
    }
    env.update(extra)
    return env


def settings_for(db: Path, cache_dir: Path, **extra: str):
    return load_settings(env=env_for(db, cache_dir, **extra))


class Served:
    """`paperfeed serve --port 0` as a real subprocess; ``url`` is the URL it printed."""

    def __init__(self, db: Path, cache_dir: Path, cwd: Path, *args: str, **env_extra: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERFEED_")}
        env.update(env_for(db, cache_dir, **env_extra))
        env.pop("PAPERFEED_DB")  # given with --db instead: workers must still find it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "paperfeed", "--db", str(db), "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        if not match:
            self.stop()
            raise AssertionError(f"serve printed {line!r}; stderr: {self.proc.stderr.read()}")
        self.url = match.group(1)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/static/style.css", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited: {self.proc.stderr.read()}")
            time.sleep(0.1)
        raise AssertionError("serve did not answer in time")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
