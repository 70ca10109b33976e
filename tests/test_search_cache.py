"""The search caches: bounded, keyed on what makes an answer, never serving a stale one."""

from __future__ import annotations

import numpy as np

from paperfeed.search.qcache import LRU, Answers, QueryVectors


class FakeEmbedder:  # counts calls; the real model is exercised in test_embed.py
    model_id = "m@1/openvino/fp32"

    def __init__(self):
        self.calls = 0

    def encode_query(self, text):
        self.calls += 1
        return np.full(4, float(len(text)), dtype=np.float32)


def test_lru_is_bounded_and_evicts_least_recent():
    c = LRU(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1  # a is now the most recent
    c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3 and len(c) == 2


def test_query_vectors_reused_per_model_and_normalised_text():
    qv, e = QueryVectors(16), FakeEmbedder()
    a = qv.get(e, "Graph  Neural Nets")
    b = qv.get(e, "graph neural nets")
    assert e.calls == 1 and a is b and not a.flags.writeable
    other = FakeEmbedder()
    other.model_id = "m@1/onnx-int8/int8"
    qv.get(other, "graph neural nets")
    assert other.calls == 1  # another model: its own vector


def test_answers_follow_the_index_version_and_expire():
    ans, calls = Answers(16, ttl=60), []

    def compute():
        calls.append(1)
        return len(calls)

    assert ans.get_or_compute("q", 1, compute) == 1
    assert ans.get_or_compute("q", 1, compute) == 1  # cached
    assert ans.get_or_compute("q", 2, compute) == 2  # the index moved: recomputed
    ans.ttl = 0
    assert ans.get_or_compute("q", 2, compute) == 3  # expired


def test_web_answers_repeat_until_the_index_moves(db, tmp_path):
    """A repeated web search is answered from memory, and a new paper changes the answer
    (on PostgreSQL at once: the paper is searchable as it is stored, and the answer's key
    follows the store's revision)."""
    from paperfeed.config import load_settings
    from paperfeed.models import Paper
    from paperfeed.search import update_index
    from paperfeed.store import open_store
    from paperfeed.web import searching

    env = {"PAPERFEED_DB": str(db), "PAPERFEED_CACHE_DIR": str(tmp_path / "cache"),
           "PAPERFEED_PROGRESS": "false"}
    settings = load_settings(env=env)
    store = open_store(str(db))
    store.upsert_papers([Paper(id="2401.00001", title="Zebra stripes and heat", authors=["A B"],
                               published="2024-01-01T00:00:00Z")])
    update_index(store, settings, keyword_only=True)
    first = searching.run_search(store, settings, "zebra", mode="keyword", limit=10)
    again = searching.run_search(store, settings, "zebra", mode="keyword", limit=10)
    assert again is first  # the same answer object: served from the cache
    store.upsert_papers([Paper(id="2401.00002", title="Zebra finches sing", authors=["C D"],
                               published="2024-01-02T00:00:00Z")])
    update_index(store, settings, keyword_only=True)
    after = searching.run_search(store, settings, "zebra", mode="keyword", limit=10)
    assert after is not first and {h.id for h in after.hits} == {"2401.00001", "2401.00002"}
    off = load_settings(env={**env, "PAPERFEED_SEARCH_CACHE_SECONDS": "0"})
    assert searching.run_search(store, off, "zebra", mode="keyword", limit=10) is not after
    store.close()
