"""Optional re-ranking of search candidates by a cross-encoder behind an HTTP endpoint.

A cross-encoder reads the question and each passage together, so it orders candidates better
than the bi-encoder and BM25 that found them, at the price of one model call per search. Strata
runs none by default; ``Settings.rerank_url`` names a TEI-shaped endpoint (Hugging Face text
embeddings inference, ``POST /rerank``) to turn it on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

    from strata.retrieval.types import SearchHit

DEFAULT_RERANK_TIMEOUT_S = 5.0


class RerankError(Exception):
    """The re-ranker refused the request (4xx) or answered something that is not a ranking of the texts."""


class RerankUnavailableError(RerankError):
    """The re-ranker could not be reached, timed out, or failed on its side (5xx)."""


class Reranker(ABC):
    """Re-orders a search's hits for a query, best first."""

    @abstractmethod
    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """The hits, best first, each with the re-ranker's score as its ``score``; no hit is
        added, a re-ranker may drop some."""


class HttpReranker(Reranker):
    """A TEI-shaped ``POST {url}`` re-ranker: ``{"query": q, "texts": [...]}`` in,
    ``[{"index": i, "score": s}, ...]`` out.

    Parameters
    ----------
    url
        The full endpoint, e.g. ``http://reranker:8080/rerank``.
    timeout_s
        For the whole request (connect, send, wait, read).
    client
        An ``httpx.Client`` to use (tests pass one with a ``MockTransport``); one is built
        otherwise and closed by :meth:`close`.
    """

    def __init__(
        self, url: str, *, timeout_s: float = DEFAULT_RERANK_TIMEOUT_S, client: httpx.Client | None = None
    ) -> None:
        import httpx  # only a stack with a re-ranker pays for it at cold start

        self.url = url
        self._timeout = httpx.Timeout(timeout_s)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=self._timeout)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def rerank(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        if not hits:
            return []
        import httpx

        body = {"query": query, "texts": [hit.text for hit in hits]}
        try:
            response = self._client.post(self.url, json=body, timeout=self._timeout)
        except httpx.TimeoutException as error:
            raise RerankUnavailableError(f"the re-ranker at {self.url} timed out ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            raise RerankUnavailableError(f"the re-ranker at {self.url} is unreachable: {error}") from error
        if response.status_code >= 500:
            raise RerankUnavailableError(f"the re-ranker at {self.url} failed: HTTP {response.status_code}")
        if response.status_code != 200:
            raise RerankError(f"the re-ranker at {self.url} refused the request: HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError as error:
            raise RerankError(f"the re-ranker at {self.url} did not answer JSON") from error
        return _apply(payload, hits, self.url)


def _apply(payload: Any, hits: Sequence[SearchHit], url: str) -> list[SearchHit]:
    """The hits in the payload's order of score, best first, with those scores."""
    if not isinstance(payload, list):
        raise RerankError(f"the re-ranker at {url} answered {type(payload).__name__}, not a list of scores")
    scored: dict[int, float] = {}
    for item in payload:
        index = item.get("index") if isinstance(item, dict) else None
        score = item.get("score") if isinstance(item, dict) else None
        valid_index = isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(hits)
        if not valid_index or not isinstance(score, int | float) or isinstance(score, bool):
            raise RerankError(f"the re-ranker at {url} answered an entry that is not a text's score: {item!r}")
        scored[index] = float(score)
    order = sorted(scored, key=lambda i: (-scored[i], i))
    return [hits[i].model_copy(update={"score": scored[i]}) for i in order]
