"""Embeddings as the chat flow's short sibling: admit (the inputs' tokens, counted with the
embedding model's own tokenizer) → embed → settle and log, settling in a ``finally``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from tokenizers import Tokenizer

from strata.auth import Principal
from strata.inference import SageMakerEmbedder
from strata.ingest.chunking import load_embedding_tokenizer
from strata.observability import RequestLog, RequestRecord, Timings
from strata.throttle import RateLimiter, RateLimitExceededError

if TYPE_CHECKING:
    from strata.chat import RequestContext

ROUTE = "POST /v1/embeddings"


@lru_cache(maxsize=1)
def _tokenizer() -> Tokenizer:
    return load_embedding_tokenizer()


def count_tokens(texts: Sequence[str]) -> int:
    """Input tokens as the embedding model counts them (without its [CLS]/[SEP])."""
    return sum(len(encoding.ids) for encoding in _tokenizer().encode_batch(list(texts), add_special_tokens=False))


@dataclass(slots=True)
class EmbeddingResult:
    vectors: list[list[float]]
    tokens: int
    headers: dict[str, str] = field(default_factory=dict)


class EmbeddingPipeline:
    def __init__(self, embedder: SageMakerEmbedder, *, limiter: RateLimiter | None, log: RequestLog | None) -> None:
        self._embedder = embedder
        self._limiter = limiter
        self._log = log

    def run(
        self, texts: Sequence[str], *, model: str, principal: Principal, context: RequestContext
    ) -> EmbeddingResult:
        timings = Timings()
        tokens = count_tokens(texts)
        record = RequestRecord(
            route=ROUTE,
            status=200,
            outcome="ok",
            request_id=context.request_id,
            correlation_id=context.correlation_id,
            tenant=principal.tenant,
            key_id=principal.key_id,
            model=model,
            timings_ms=timings.marks,
        )
        if context.auth_ms is not None:
            timings.marks["auth"] = context.auth_ms
        reservation = None
        used = 0
        try:
            if self._limiter is not None:
                try:
                    reservation = self._limiter.admit(
                        tenant=principal.tenant,
                        key_id=principal.key_id,
                        key_limits=principal.key_limits,
                        tenant_limits=principal.tenant_limits,
                        tokens=tokens,
                    )
                except RateLimitExceededError:
                    record.outcome, record.status = "rate_limited", 429
                    raise
                finally:
                    timings.stage("admit")
            vectors = self._embedder.embed(list(texts))
            used = record.prompt_tokens = tokens
            return EmbeddingResult(vectors, tokens, reservation.headers if reservation is not None else {})
        except Exception as error:
            if record.outcome == "ok":
                record.outcome, record.status = "error", 503
            record.error = type(error).__name__
            raise
        finally:
            if reservation is not None:
                reservation.settle(used)
            timings.elapsed("total")
            if self._log is not None:
                self._log.write(record)
