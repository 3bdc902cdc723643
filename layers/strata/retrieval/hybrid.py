"""Hybrid scoring, the way OpenSearch's ``normalization-processor`` does it.

Strata's OpenSearch adapter sends a ``hybrid`` query (``[keyword, vector]``) through a search
pipeline with ``normalization-processor`` (``min_max`` + ``arithmetic_mean``); the local store
computes the same thing here so both adapters rank the same data the same way. The behaviour
below was checked against the OpenSearch documentation (search pipelines, normalization
processor) and the neural-search plugin's source (``MinMaxScoreNormalizationTechnique``,
``ArithmeticMeanScoreCombinationTechnique``, ``ScoreCombiner``):

1. Each sub-query runs on its own and keeps its top ``candidates`` hits (OpenSearch: the query
   ``size`` per sub-query per shard; Strata asks for ``size = candidates`` and keeps the top ``k``).
2. ``min_max`` normalizes each sub-query's scores over the hits it returned (all shards):
   ``(score - min) / (max - min)``; a result of exactly 0 becomes ``0.001`` so the lowest hit
   still counts, and when ``min == max`` (a single hit, or all equal) the score is ``1.0``.
3. ``arithmetic_mean`` combines per document: ``sum(w_i * s_i) / sum(w_i)``. A document that one
   sub-query did not return has ``s_i = 0`` for it and its weight still counts (OpenSearch 2.11+;
   2.10 skipped it). Weights must each be in ``[0, 1]`` and sum to 1.0; default ``[0.5, 0.5]``.
4. Hits are sorted by the combined score, highest first.

Score scales of the sub-queries: vector scores use OpenSearch's ``cosinesimil`` score
``(1 + cos) / 2`` (in ``[0, 1]``) in both adapters; keyword scores are BM25 (Lucene's in
OpenSearch, SQLite FTS5's ``bm25()`` locally: same k1=1.2, b=0.75, slightly different IDF).
Only the keyword-only mode exposes raw BM25, so its scores are not comparable across adapters;
the orderings agree, and hybrid scores are on the same ``[0, 1]`` scale in both.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

MIN_NORMALIZED_SCORE = 0.001
SINGLE_RESULT_SCORE = 1.0


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """How hybrid search fuses its two sub-queries.

    Parameters
    ----------
    keyword_weight, vector_weight
        The ``arithmetic_mean`` weights of the keyword (BM25) and vector (k-NN) sub-queries,
        in that order, as the search pipeline lists them. Each in ``[0, 1]``, summing to 1.
    candidates
        Hits each sub-query contributes before fusion (at least ``k`` is always used).
    """

    keyword_weight: float = 0.5
    vector_weight: float = 0.5
    candidates: int = 50

    def __post_init__(self) -> None:
        for name, weight in (("keyword_weight", self.keyword_weight), ("vector_weight", self.vector_weight)):
            if not 0.0 <= weight <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] (given {weight})")
        # OpenSearch rejects weights that do not add up to 1.0 (with a small tolerance).
        if not math.isclose(self.keyword_weight + self.vector_weight, 1.0, abs_tol=0.01):
            raise ValueError(
                f"keyword_weight + vector_weight must be 1.0 (given {self.keyword_weight} + {self.vector_weight})"
            )
        if self.candidates < 1:
            raise ValueError(f"candidates must be at least 1 (given {self.candidates})")

    @property
    def weights(self) -> tuple[float, float]:
        """``(keyword, vector)``, the order of the sub-queries in the hybrid query."""
        return (self.keyword_weight, self.vector_weight)

    def depth(self, k: int) -> int:
        """Hits each sub-query retrieves for a request of ``k`` results."""
        return max(k, self.candidates)


def min_max_normalize(scores: Mapping[K, float]) -> dict[K, float]:
    """Normalize one sub-query's scores as OpenSearch's ``min_max`` technique does."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    normalized: dict[K, float] = {}
    for key, score in scores.items():
        if high == low:
            normalized[key] = SINGLE_RESULT_SCORE
            continue
        value = (score - low) / (high - low)
        normalized[key] = value if value != 0.0 else MIN_NORMALIZED_SCORE
    return normalized


def fuse(keyword: Mapping[K, float], vector: Mapping[K, float], config: HybridConfig) -> list[tuple[K, float]]:
    """Combine raw keyword and vector scores into one ranking, best first.

    Ties keep the order of first appearance (keyword hits, then vector-only hits), so callers
    that pass hits in a stable order get a stable ranking.
    """
    normalized = (min_max_normalize(keyword), min_max_normalize(vector))
    total_weight = config.keyword_weight + config.vector_weight
    combined: dict[K, float] = {}
    for key in (*normalized[0], *normalized[1]):
        if key in combined:
            continue
        weighted = sum(w * scores.get(key, 0.0) for w, scores in zip(config.weights, normalized, strict=True))
        combined[key] = weighted / total_weight if total_weight else 0.0
    return sorted(combined.items(), key=lambda item: -item[1])


def cosine_score(cosine: float) -> float:
    """OpenSearch's ``cosinesimil`` score: ``(2 - (1 - cos)) / 2 = (1 + cos) / 2``."""
    return (1.0 + cosine) / 2.0
