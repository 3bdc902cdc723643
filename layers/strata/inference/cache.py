"""Caches in front of the models: whole answers to deterministic requests, and query embeddings.

The response cache is exact-match: the key hashes the tenant, the alias, the normalized messages,
the sampling parameters and the retrieved sources, so an answer is reused only for the same
question over the same sources. Only temperature-0 requests are cached; entries expire by TTL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from strata.inference.types import ChatRequest, Completion, Usage

logger = logging.getLogger(__name__)


def cache_key(*, tenant: str, alias: str, request: ChatRequest, sources: Sequence[str]) -> str:
    """``sources`` identifies what retrieval returned (document, chunk, text hash) in prompt order."""
    document = {
        "tenant": tenant,
        "alias": alias,
        # Runs of whitespace (and a message's ends) never change the answer a user means to get.
        "messages": [[m.role, " ".join(m.content.split())] for m in request.messages],
        "params": [request.max_tokens, request.temperature, request.top_p, list(request.stop), request.seed],
        "sources": hashlib.sha256("\n".join(sources).encode()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(document, separators=(",", ":")).encode()).hexdigest()


def is_cacheable(request: ChatRequest) -> bool:
    return request.temperature == 0


class ResponseCache:
    """Answers in the response-cache table (``RESOURCES.response_cache_table``), expiring by TTL.

    A cache that fails is a miss, never an error: the model answers instead.
    """

    def __init__(self, table: Any, *, ttl_s: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._ttl_s = ttl_s
        self._clock = clock

    def get(self, key: str) -> Completion | None:
        try:
            item = self._table.get_item(Key={"key": key}).get("Item")
        except Exception:
            logger.warning("response cache unreadable; answering without it", exc_info=True)
            return None
        # DynamoDB deletes expired items within a day or two, not at once: check the TTL here too.
        if not item or int(item["expires_at"]) <= self._clock():
            return None
        return Completion(
            text=item["text"],
            finish_reason=item["finish_reason"],
            usage=Usage(int(item["prompt_tokens"]), int(item["completion_tokens"])),
            target=item.get("target", ""),
        )

    def put(self, key: str, completion: Completion) -> None:
        try:
            self._table.put_item(
                Item={
                    "key": key,
                    "text": completion.text,
                    "finish_reason": completion.finish_reason,
                    "prompt_tokens": Decimal(completion.usage.prompt_tokens),
                    "completion_tokens": Decimal(completion.usage.completion_tokens),
                    "target": completion.target,
                    "expires_at": Decimal(int(self._clock()) + self._ttl_s),
                }
            )
        except Exception:
            logger.warning("response cache unwritable; the answer is not cached", exc_info=True)


class CachedEmbedder:
    """Query embeddings kept in a small in-process LRU: the same question is embedded once per container."""

    def __init__(self, embedder: Any, *, max_entries: int = 1024) -> None:
        self._embedder = embedder
        self.name = getattr(embedder, "name", "embedder")
        self._entries: OrderedDict[str, list[float]] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self.hits = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            found = {text: self._entries[text] for text in texts if text in self._entries}
            for text in found:
                self._entries.move_to_end(text)
            self.hits += len(found)
        missing = list(dict.fromkeys(text for text in texts if text not in found))
        if missing:
            fresh = dict(zip(missing, self._embedder.embed(missing), strict=True))
            with self._lock:
                for text, vector in fresh.items():
                    self._entries[text] = vector
                while len(self._entries) > self._max_entries:
                    self._entries.popitem(last=False)
            found.update(fresh)
        return [found[text] for text in texts]
