"""Ranking: what is trending now, and what each reader may want ("For you")."""

from .foryou import Recommendation, recommend, recommend_many
from .trending import Ranked, TrendingPage, trending, trending_score

__all__ = [
    "Ranked",
    "TrendingPage",
    "trending",
    "trending_score",
    "Recommendation",
    "recommend",
    "recommend_many",
]
