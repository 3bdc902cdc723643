"""The embeddings flow behind ``POST /v1/embeddings``."""

from strata.embeddings.pipeline import EmbeddingPipeline, EmbeddingResult, count_tokens

__all__ = ("EmbeddingPipeline", "EmbeddingResult", "count_tokens")
