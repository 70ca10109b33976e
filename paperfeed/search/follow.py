"""Keeping the search indexes caught up from inside a long-running process (the web app).

On a store that indexes words itself (PostgreSQL) there is no keyword index to follow; the
same thread instead keeps this process's in-memory vectors current: it loads them at start
and reads the rows written since (by ``seq``) every ``web_index_every`` seconds. What
follows is about the tantivy index beside a SQLite file.

Searches never index (a request must not do unbounded work: one used to index 50,000 papers
inline while an import ran). Instead a daemon thread wakes every ``web_index_every``
seconds and, when the store has papers the index lacks, indexes them in bounded steps under
the index folder's writer lock, so only one process writes (another web worker,
`paperfeed index` or `paperfeed run` holding the lock makes it skip its turn). Between
steps it lets searches run; they see each step as soon as it is committed.
"""

from __future__ import annotations

import logging
import threading

from ..config import Settings
from ..errors import PaperfeedError
from ..store import Store
from .engine import get_engine

__all__ = ["IndexFollower", "FOLLOW_STEP"]

log = logging.getLogger("paperfeed.search")

# Papers per step: about a second of indexing on one core, so each commit (and what
# searches can see) comes often, and a step never holds the lock for long.
FOLLOW_STEP = 5_000


class IndexFollower:
    def __init__(self, store: Store, settings: Settings, every: float, step: int = FOLLOW_STEP):
        self.store = store
        self.settings = settings
        self.every = every
        self.step_size = step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int | None:
        """One bounded step: papers indexed (vectors loaded, on PostgreSQL), or None when
        another process holds the lock."""
        engine = get_engine(self.store, self.settings)
        if engine.in_store:
            engine.follow_vectors(self.store)
            return 0  # one look per turn: catch_up stops, the next turn is `every` later
        if not engine.lag(self.store):
            return 0
        return engine.index_step(self.store, limit=self.step_size, threads=1)

    def catch_up(self) -> int:
        """Steps until the index has every paper (or the lock is busy, or stop was asked)."""
        total = 0
        while not self._stop.is_set():
            n = self.step()
            if not n:
                break
            total += n
            # Leave the GIL and the store to waiting searches between steps.
            self._stop.wait(0.05)
        return total

    def _run(self) -> None:
        # A first turn at once: a server started on a fresh import is searchable in seconds.
        while True:
            try:
                self.catch_up()
            except (OSError, PaperfeedError) as e:
                # A read-only index folder, or no folder for the indexes at all: searches
                # use the index as it is, and say how far behind it is.
                log.warning("the search index cannot be updated from the web app: %s", e)
                return
            except Exception:  # noqa: BLE001 - keep following; the next turn retries
                log.exception("updating the search index failed; trying again later")
            if self._stop.wait(self.every):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="paperfeed-index", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
