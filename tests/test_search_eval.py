"""Evaluation: trec_eval's nDCG@10 on a hand-checked example, and `paperfeed eval beir` on a
real 200-document SciFact slice (cached database: the second run embeds nothing)."""

from __future__ import annotations

import math

import pytest

from tests.conftest import Cli

from paperfeed.config import load_settings
from paperfeed.search.evaluate import (
    eval_settings,
    load_beir,
    percentile,
    prepare_eval_store,
)
from paperfeed.search.metrics import evaluate_run, ndcg_at_k, rank_run
from tests.conftest import DATA
from tests.search_support import model_cache_dir

MINI = DATA / "scifact-mini"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    return model_cache_dir(tmp_path_factory)


def test_ndcg_hand_checked():
    qrels = {"q1": {"d1": 1, "d3": 2}, "q2": {"d5": 1}, "q3": {"d7": 1}, "q4": {"d9": 0}}
    run = {
        "q1": {"d2": 0.9, "d1": 0.8, "d3": 0.7, "d4": 0.1},
        # A tie: trec_eval orders tied scores by doc id descending, so d6 comes first.
        "q2": {"d5": 0.5, "d6": 0.5},
        # q3 returns nothing: it counts as 0. q4 has no relevant document: not counted.
    }
    # q1: DCG = 1/log2(3) + 2/log2(4) = 1.630930; ideal = 2/log2(2) + 1/log2(3) = 2.630930
    q1 = (1 / math.log2(3) + 2 / 2) / (2 + 1 / math.log2(3))
    q2 = 1 / math.log2(3)
    assert q1 == pytest.approx(0.619906, abs=1e-6)
    m = evaluate_run(run, qrels)
    assert m["queries"] == 3
    assert m["per_query"] == pytest.approx({"q1": q1, "q2": q2, "q3": 0.0})
    assert m["ndcg@10"] == pytest.approx((q1 + q2) / 3)
    assert m["recall@100"] == pytest.approx(2 / 3)
    assert rank_run(run["q2"]) == ["d6", "d5"]
    # Only the first k count; gain is the relevance itself (not 2^rel - 1).
    ranked = [f"x{i}" for i in range(10)] + ["d1"]
    assert ndcg_at_k(ranked, {"d1": 1}, 10) == 0.0
    assert ndcg_at_k(["d3"], {"d3": 2, "d1": 1}, 10) == pytest.approx(2 / (2 + 1 / math.log2(3)))


def test_percentile_nearest_rank():
    v = list(range(1, 101))
    assert percentile(v, 50) == 50 and percentile(v, 99) == 99 and percentile(v, 100) == 100
    assert percentile([7.0], 99) == 7.0 and percentile([], 50) == 0.0


def test_load_beir_reads_split(tmp_path):
    corpus, queries, qrels = load_beir(MINI, "train")
    assert corpus.name == "corpus.jsonl.gz"
    assert len(queries) == 20 and set(queries) == set(qrels)
    assert queries["0"] == "0-dimensional biomaterials lack inductive properties."
    from paperfeed.errors import SearchError

    with pytest.raises(SearchError, match="no qrels/test.tsv"):
        load_beir(MINI, "test")
    with pytest.raises(SearchError, match="not a BEIR folder"):
        load_beir(tmp_path, "train")


def test_eval_cli_on_real_scifact_slice(tmp_path, model_cache):
    # The eval database is named by --db (PostgreSQL's twin: test_search_pg.py).
    env = {"PAPERFEED_CACHE_DIR": str(model_cache)}
    db = tmp_path / "eval.db"
    cli = Cli(db, tmp_path)
    args = ("eval", "beir", str(MINI), "--split", "train", "--mode", "all", "--db", str(db))
    proc = cli(*args, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = [__import__("json").loads(line) for line in proc.stdout.splitlines()]
    assert [r["mode"] for r in rows] == ["keyword", "semantic", "hybrid"]
    for r in rows:
        assert set(r) == {"mode", "split", "queries", "ndcg@10", "recall@100", "p50_ms", "p99_ms"}
        assert r["split"] == "train" and r["queries"] == 20
        # 20 real claims against 200 abstracts: every mode finds most answers.
        assert 0.5 < r["ndcg@10"] <= 1.0 and r["recall@100"] >= 0.9
        assert 0 < r["p50_ms"] <= r["p99_ms"]
    # The second run reuses the cached, indexed database: nothing is embedded again.
    settings = eval_settings(load_settings(env={"PAPERFEED_CACHE_DIR": str(model_cache)}), db)
    corpus, _, _ = load_beir(MINI, "train")
    store, info = prepare_eval_store(corpus, db, settings)
    store.close()
    assert info["embedded"] == 0 and info["keyword_indexed"] == 0 and info["vectors"] == 200
    proc = cli(*args[:-2], "--split", "dev", env=env)
    assert proc.returncode == 2 and "no qrels/dev.tsv" in proc.stderr
