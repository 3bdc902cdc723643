"""Maximal marginal relevance: keep the best hits but skip near-copies of hits already kept.

A search often returns the same passage twice (an article uploaded twice, two revisions of a
page, overlapping chunks of a short document); each copy spends a slot of the model's context
on nothing new. MMR (Carbonell and Goldstein, 1998) picks hits one at a time, each maximizing

    lambda * relevance(hit) - (1 - lambda) * max(similarity(hit, kept) for kept in the picks so far)

so ``lambda = 1`` is the plain ranking and smaller values trade relevance for variety.

Similarity between hits is lexical here: a cosine of hashed word counts. A ``SearchHit`` carries
no vector, re-embedding the candidates would cost a model call per question, and the copies worth
dropping are near-identical in their words anyway.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strata.retrieval.types import SearchHit

if TYPE_CHECKING:
    import numpy as np

# Buckets of the hashed word counts: collisions between two chunks' distinct words are rare at
# this size for chunks of ~200 tokens, and the matrix stays small.
HASH_BUCKETS = 4096
_WORD = re.compile(r"\w+")


def mmr_order(relevance: np.ndarray, similarity: np.ndarray, k: int, lambda_: float) -> list[int]:
    """Indexes of the ``k`` items MMR picks, in pick order.

    ``relevance`` is one score per item (higher is better, best on a [0, 1] scale like
    ``similarity``); ``similarity`` is the items' square similarity matrix. Ties go to the
    earlier item, so equal scores keep the input order.
    """
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda must be in [0, 1] (given {lambda_})")
    count = relevance.shape[0]
    if similarity.shape != (count, count):
        raise ValueError(f"similarity must be {count} x {count} (given {similarity.shape})")
    import numpy as np  # here, not at the top: a function that never diversifies never loads it

    picked: list[int] = []
    left = np.ones(count, dtype=bool)
    redundancy = np.zeros(count)  # each item's highest similarity to a picked one
    for _ in range(min(k, count)):
        gain = np.where(left, lambda_ * relevance - (1.0 - lambda_) * redundancy, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        left[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return picked


def text_similarity(texts: Sequence[str]) -> np.ndarray:
    """Cosine similarity of the texts' hashed word counts (lowercased), in [0, 1]."""
    import numpy as np

    counts = np.zeros((len(texts), HASH_BUCKETS))
    for row, text in enumerate(texts):
        for word in _WORD.findall(text.lower()):
            counts[row, zlib.crc32(word.encode()) % HASH_BUCKETS] += 1.0
    norms = np.linalg.norm(counts, axis=1, keepdims=True)
    unit = np.divide(counts, norms, out=np.zeros_like(counts), where=norms > 0)
    return unit @ unit.T


def mmr_select(hits: Sequence[SearchHit], k: int, lambda_: float) -> list[SearchHit]:
    """The ``k`` hits MMR keeps, in pick order; each keeps its own score.

    Relevance is the hits' scores min-max scaled to [0, 1] (each search mode scores on its own
    scale: raw BM25, cosine, fused), so ``lambda`` means the same in every mode.
    """
    if not hits:
        return []
    import numpy as np

    scores = np.asarray([hit.score for hit in hits], dtype=float)
    spread = scores.max() - scores.min()
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
    order = mmr_order(relevance, text_similarity([hit.text for hit in hits]), k, lambda_)
    return [hits[i] for i in order]
