"""Caches in front of search: query vectors, and whole answers for a short while.

Under load half of a search worker's busy time went into embedding the query (a py-spy
profile of `/api/search`), and real traffic repeats itself: people page through results, feed
readers poll `/feeds/search.atom`, popular queries recur. Both caches are bounded LRUs, per
process, safe to share between threads.

- ``QueryVectors``: keyed on (model_id, normalised text): a vector never goes stale, since
  the model_id names the weights, backend and precision that made it.
- ``Answers``: keyed on the request and on the index version it was computed against, and
  kept at most ``ttl`` seconds; a changed index (new papers, new vectors) changes the key, so
  a stale answer is never served after the index moved.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable

import numpy as np

__all__ = ["LRU", "QueryVectors", "Answers", "normalise_query"]


def normalise_query(text: str) -> str:
    """Same vector for the same words: case and runs of spaces do not matter to the model's
    uncased tokenizer (all-MiniLM-L6-v2 lower-cases)."""
    return " ".join(text.lower().split())


class LRU:
    def __init__(self, maxsize: int):
        self.maxsize = max(0, int(maxsize))
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, default=None):
        with self._lock:
            try:
                value = self._data[key]
            except KeyError:
                self.misses += 1
                return default
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        if not self.maxsize:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


class QueryVectors:
    def __init__(self, maxsize: int = 4096):
        self._lru = LRU(maxsize)

    def get(self, emb, text: str) -> np.ndarray:
        key = (emb.model_id, normalise_query(text))
        v = self._lru.get(key)
        if v is None:
            v = np.asarray(emb.encode_query(text), dtype=np.float32)
            v.setflags(write=False)  # shared between requests: nobody may change it
            self._lru.put(key, v)
        return v

    @property
    def stats(self) -> tuple[int, int]:
        return self._lru.hits, self._lru.misses


class Answers:
    def __init__(self, maxsize: int = 1024, ttl: float = 60.0):
        self._lru = LRU(maxsize)
        self.ttl = ttl

    def get_or_compute(self, key: Hashable, version: Hashable, compute: Callable[[], Any]):
        now = time.monotonic()
        got = self._lru.get((key, version))
        if got is not None and now - got[0] < self.ttl:
            return got[1]
        value = compute()
        self._lru.put((key, version), (now, value))
        return value

    @property
    def stats(self) -> tuple[int, int]:
        return self._lru.hits, self._lru.misses
