"""Retrieval metrics computed the way trec_eval does, so our figures compare with published
ones (BEIR, MTEB and Anserini all report trec_eval's ``ndcg_cut.10``).

trec_eval's rules, kept here: the run is sorted by score, descending, ties broken by
document id descending (string order); gain is the qrels relevance itself (not 2^rel - 1);
the ideal ranking is the judged relevances sorted; only relevance > 0 counts. Averages are
over every query that has a judged relevant document (trec_eval ``-c``): a query the
system returned nothing for scores 0 rather than being skipped.
"""

from __future__ import annotations

import math
from typing import Mapping

__all__ = ["ndcg_at_k", "recall_at_k", "rank_run", "evaluate_run"]

Run = Mapping[str, Mapping[str, float]]  # query id -> doc id -> score
Qrels = Mapping[str, Mapping[str, int]]  # query id -> doc id -> relevance


def rank_run(scores: Mapping[str, float]) -> list[str]:
    """Doc ids in trec_eval order: score descending, then doc id descending."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def ndcg_at_k(ranked: list[str], rels: Mapping[str, int], k: int = 10) -> float:
    dcg = sum(
        rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0
    )
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], rels: Mapping[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def evaluate_run(run: Run, qrels: Qrels, k: int = 10, recall_k: int = 100) -> dict:
    """Mean nDCG@k and recall@recall_k over the judged queries, plus per-query nDCG."""
    per_query = {}
    recalls = []
    for qid, rels in qrels.items():
        if not any(r > 0 for r in rels.values()):
            continue
        ranked = rank_run(run.get(qid, {}))
        per_query[qid] = ndcg_at_k(ranked, rels, k)
        recalls.append(recall_at_k(ranked, rels, recall_k))
    n = len(per_query)
    return {
        "queries": n,
        f"ndcg@{k}": sum(per_query.values()) / n if n else 0.0,
        f"recall@{recall_k}": sum(recalls) / n if n else 0.0,
        "per_query": per_query,
    }
