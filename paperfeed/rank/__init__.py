"""Ranking: what is trending now (recommendations per reader come later)."""

from .trending import Ranked, TrendingPage, trending, trending_score

__all__ = ["Ranked", "TrendingPage", "trending", "trending_score"]
