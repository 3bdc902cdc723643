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

Two other fusions are options (:class:`Fusion`): ``z_score`` normalization (what tuning on
wiki-qa chose, :data:`WIKI_QA_TUNED`) and reciprocal rank fusion with a rank constant.
:meth:`HybridConfig.pipeline_processor` gives the OpenSearch pipeline entry for each.

Score scales of the sub-queries: vector scores use OpenSearch's ``cosinesimil`` score
``(1 + cos) / 2`` (in ``[0, 1]``) in both adapters; keyword scores are BM25 (Lucene's in
OpenSearch, SQLite FTS5's ``bm25()`` locally: same k1=1.2, b=0.75, slightly different IDF).
Only the keyword-only mode exposes raw BM25, so its scores are not comparable across adapters;
the orderings agree, and hybrid scores are on the same ``[0, 1]`` scale in both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)

MIN_NORMALIZED_SCORE = 0.001
SINGLE_RESULT_SCORE = 1.0
# The rank constant of reciprocal rank fusion in the original paper (Cormack et al., 2009) and in
# OpenSearch's ``score-ranker-processor``.
DEFAULT_RANK_CONSTANT = 60
# OpenSearch's own defaults (min_max, 0.5/0.5): every OpenSearch 2.x domain runs them, and the
# local store ranks like it. On wiki-qa's held-out half they already beat BM25 and vector search
# on hit@5 and MRR; WIKI_QA_TUNED (z-score) ranks a little better (bench/RESULTS.md, "Hybrid
# fusion on wiki-qa, held-out half").
DEFAULT_KEYWORD_WEIGHT = 0.5
DEFAULT_VECTOR_WEIGHT = 0.5
DEFAULT_CANDIDATES = 50


class Fusion(StrEnum):
    """How the two sub-queries' scores become one.

    * ``min_max``: OpenSearch ``normalization-processor`` (``min_max`` + ``arithmetic_mean``).
    * ``z_score``: the same with ``z_score`` normalization (OpenSearch 3.0+).
    * ``rrf``: reciprocal rank fusion, OpenSearch ``score-ranker-processor`` (2.19+): each
      sub-query adds ``weight / (rank_constant + rank)``; raw scores are ignored.
    """

    MIN_MAX = "min_max"
    Z_SCORE = "z_score"
    RRF = "rrf"


@dataclass(frozen=True, slots=True)
class HybridConfig:
    """How hybrid search fuses its two sub-queries.

    The defaults are OpenSearch's; :data:`WIKI_QA_TUNED` is the setting tuned on wiki-qa.

    Parameters
    ----------
    keyword_weight, vector_weight
        The weights of the keyword (BM25) and vector (k-NN) sub-queries, in that order, as the
        search pipeline lists them. Each in ``[0, 1]``, summing to 1.
    candidates
        Hits each sub-query contributes before fusion (at least ``k`` is always used).
    fusion
        ``min_max``, ``z_score`` or ``rrf`` (see :class:`Fusion`).
    rank_constant
        RRF's ``k``: larger values flatten the difference between the first ranks. Only read
        when ``fusion`` is ``rrf``.
    """

    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    vector_weight: float = DEFAULT_VECTOR_WEIGHT
    candidates: int = DEFAULT_CANDIDATES
    fusion: Fusion = Fusion.MIN_MAX
    rank_constant: int = DEFAULT_RANK_CONSTANT

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
        # Accept the plain string ("rrf") from settings or JSON as well as the enum.
        object.__setattr__(self, "fusion", Fusion(self.fusion))
        if self.rank_constant < 1:
            raise ValueError(f"rank_constant must be at least 1 (given {self.rank_constant})")

    @property
    def weights(self) -> tuple[float, float]:
        """``(keyword, vector)``, the order of the sub-queries in the hybrid query."""
        return (self.keyword_weight, self.vector_weight)

    def depth(self, k: int) -> int:
        """Hits each sub-query retrieves for a request of ``k`` results."""
        return max(k, self.candidates)

    def pipeline_processor(self) -> dict[str, Any]:
        """The OpenSearch search-pipeline ``phase_results_processors`` entry that fuses like
        :func:`fuse` does, so the OpenSearch adapter and the local store rank alike."""
        weights = {"weights": list(self.weights)}
        if self.fusion is Fusion.RRF:
            combination = {"technique": "rrf", "rank_constant": self.rank_constant, "parameters": weights}
            return {"score-ranker-processor": {"combination": combination}}
        return {
            "normalization-processor": {
                "normalization": {"technique": self.fusion.value},
                "combination": {"technique": "arithmetic_mean", "parameters": weights},
            }
        }


# The best MRR@10 of 324 variants (fusion x weights x candidates x rank constant) on the tuning
# half of wiki-qa's articles, checked on the held-out half (``strata eval --split held-out``).
# z-score keeps BM25's runner-up hits apart where min-max squashes them under one outlier, and
# questions written from the articles make BM25 the stronger half. Needs z_score normalization
# in OpenSearch (3.0+) for the cloud adapter to rank alike.
WIKI_QA_TUNED = HybridConfig(keyword_weight=0.7, vector_weight=0.3, candidates=100, fusion=Fusion.Z_SCORE)


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


def z_score_normalize(scores: Mapping[K, float]) -> dict[K, float]:
    """``(score - mean) / std`` over one sub-query's hits (population std); all 0 when they are equal.

    Unlike min-max, one outlier does not squash the others towards 0: a BM25 list with one
    exact-title match keeps its runner-up hits apart.
    """
    if not scores:
        return {}
    values = list(scores.values())
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {key: (score - mean) / std if std > 0 else 0.0 for key, score in scores.items()}


def reciprocal_ranks(scores: Mapping[K, float], rank_constant: int) -> dict[K, float]:
    """``1 / (rank_constant + rank)`` by each hit's rank (1 = best) in one sub-query."""
    ranked = sorted(scores, key=lambda key: -scores[key])  # stable: ties keep their order
    return {key: 1.0 / (rank_constant + rank) for rank, key in enumerate(ranked, start=1)}


def fuse(keyword: Mapping[K, float], vector: Mapping[K, float], config: HybridConfig) -> list[tuple[K, float]]:
    """Combine raw keyword and vector scores into one ranking, best first.

    A document that one sub-query did not return gets that sub-query's floor: 0 for min-max
    (below its ``0.001``) and RRF, the lowest z-score it returned for z-score (a missing hit
    must not beat a returned one). Ties keep the order of first appearance (keyword hits, then
    vector-only hits), so callers that pass hits in a stable order get a stable ranking.
    """
    normalized = (_normalizer(config)(keyword), _normalizer(config)(vector))
    floors = tuple(min(scores.values()) if config.fusion is Fusion.Z_SCORE and scores else 0.0 for scores in normalized)
    total_weight = config.keyword_weight + config.vector_weight
    combined: dict[K, float] = {}
    for key in (*normalized[0], *normalized[1]):
        if key in combined:
            continue
        weighted = sum(
            w * scores.get(key, floor) for w, scores, floor in zip(config.weights, normalized, floors, strict=True)
        )
        combined[key] = weighted / total_weight if total_weight else 0.0
    return sorted(combined.items(), key=lambda item: -item[1])


def _normalizer(config: HybridConfig) -> Callable[[Mapping[K, float]], dict[K, float]]:
    if config.fusion is Fusion.RRF:
        return lambda scores: reciprocal_ranks(scores, config.rank_constant)
    return z_score_normalize if config.fusion is Fusion.Z_SCORE else min_max_normalize


def cosine_score(cosine: float) -> float:
    """OpenSearch's ``cosinesimil`` score: ``(2 - (1 - cos)) / 2 = (1 + cos) / 2``."""
    return (1.0 + cosine) / 2.0
