"""The vector-store port: one interface, an OpenSearch adapter and an embedded local adapter.

The base class owns argument checking and the write semantics; adapters implement four
primitives (``_replace_documents``, ``_delete_document``, ``_search``, ``_count``).

Write semantics: the unit of writing is a whole document. ``upsert(chunks)`` replaces, for
every ``(tenant, document_id)`` present in ``chunks``, all chunks stored for that document with
the given ones, so re-ingesting a document (even one that now has fewer chunks) is idempotent
and leaves no stale chunks. ``replace_document`` is the same for one document, where an empty
list deletes it.

Every read is tenant scoped: a search or count only ever sees the given tenant's chunks.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self

from strata.retrieval.exceptions import InvalidChunkError, InvalidQueryError
from strata.retrieval.keywords import keyword_terms
from strata.retrieval.types import ChunkRecord, SearchHit, SearchMode

if TYPE_CHECKING:
    from types import TracebackType

MAX_K = 100

DocumentKey = tuple[str, str]
"""``(tenant, document_id)``."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A checked search request, as adapters receive it."""

    tenant: str
    mode: SearchMode
    k: int
    text: str
    terms: tuple[str, ...]
    vector: tuple[float, ...] | None
    document_ids: tuple[str, ...] | None
    # Exact matches on the chunks' ``metadata``, all of them required.
    filters: tuple[tuple[str, str], ...] = ()


class VectorStore(ABC):
    """Stores document chunks with their vectors and searches them per tenant.

    Examples
    --------
    >>> store.upsert(chunks)  # doctest: +SKIP
    >>> store.search(tenant="acme", query_text="refund policy", query_vector=vec, k=4)  # doctest: +SKIP
    """

    def upsert(self, chunks: Sequence[ChunkRecord]) -> None:
        """Replace the stored chunks of every document present in ``chunks`` with these chunks."""
        documents = group_by_document(chunks)
        if documents:
            self._replace_documents(documents)

    def replace_document(self, tenant: str, document_id: str, chunks: Sequence[ChunkRecord]) -> None:
        """Make ``chunks`` the only chunks of one document; an empty sequence deletes it."""
        _require_name("tenant", tenant)
        _require_name("document_id", document_id)
        strangers = [c for c in chunks if (c.tenant, c.document_id) != (tenant, document_id)]
        if strangers:
            raise InvalidChunkError(
                f"replace_document({tenant!r}, {document_id!r}) was given a chunk of "
                f"({strangers[0].tenant!r}, {strangers[0].document_id!r})"
            )
        if chunks:
            self.upsert(chunks)
        else:
            self.delete_document(tenant, document_id)

    def delete_document(self, tenant: str, document_id: str) -> int:
        """Delete one document's chunks; returns how many were removed (0 if it was unknown)."""
        _require_name("tenant", tenant)
        _require_name("document_id", document_id)
        return self._delete_document(tenant, document_id)

    def search(
        self,
        *,
        tenant: str,
        query_text: str | None,
        query_vector: Sequence[float] | None,
        k: int,
        mode: SearchMode | str = SearchMode.HYBRID,
        document_ids: Sequence[str] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> list[SearchHit]:
        """The tenant's ``k`` best chunks for the query, best first.

        Parameters
        ----------
        tenant
            Only this tenant's chunks are searched.
        query_text
            Free text for the keyword (BM25) part; ignored in vector mode. Never parsed as a
            query language. A text with no searchable word matches nothing by keyword.
        query_vector
            The query embedding; required in vector and hybrid modes.
        k
            Number of hits wanted (1 to ``MAX_K``).
        mode
            ``vector``, ``keyword`` or ``hybrid`` (see :mod:`strata.retrieval.hybrid`).
        document_ids
            Restrict the search to these documents; an empty sequence matches nothing.
        filters
            Only chunks whose ``metadata`` has each of these keys with exactly this value.
        """
        request = _search_request(tenant, query_text, query_vector, k, mode, document_ids, filters)
        if request.document_ids == ():
            return []
        if request.mode is SearchMode.KEYWORD and not request.terms:
            return []
        return self._search(request)

    def count(self, tenant: str) -> int:
        """How many chunks the tenant has."""
        _require_name("tenant", tenant)
        return self._count(tenant)

    def close(self) -> None:  # noqa: B027 - optional hook; adapters without resources need nothing
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abstractmethod
    def _replace_documents(self, documents: dict[DocumentKey, list[ChunkRecord]]) -> None:
        """Replace each document's chunks; chunks are checked and sorted by ``chunk_index``."""

    @abstractmethod
    def _delete_document(self, tenant: str, document_id: str) -> int: ...

    @abstractmethod
    def _search(self, request: SearchRequest) -> list[SearchHit]: ...

    @abstractmethod
    def _count(self, tenant: str) -> int: ...


def group_by_document(chunks: Sequence[ChunkRecord]) -> dict[DocumentKey, list[ChunkRecord]]:
    """Check ``chunks`` and group them per document, each group sorted by ``chunk_index``."""
    documents: dict[DocumentKey, list[ChunkRecord]] = {}
    dimension: int | None = None
    for chunk in chunks:
        _require_name("tenant", chunk.tenant, InvalidChunkError)
        _require_name("document_id", chunk.document_id, InvalidChunkError)
        if dimension is None:
            dimension = len(chunk.vector)
        where = f"chunk {chunk.chunk_index} of document {chunk.document_id!r}"
        if len(chunk.vector) != dimension:
            raise InvalidChunkError(f"{where} has {len(chunk.vector)} dimensions, others have {dimension}")
        _check_vector(chunk.vector, where, InvalidChunkError)
        if chunk.char_end < chunk.char_start:
            raise InvalidChunkError(f"{where} ends (char_end={chunk.char_end}) before it starts")
        documents.setdefault((chunk.tenant, chunk.document_id), []).append(chunk)
    for (_, document_id), group in documents.items():
        group.sort(key=lambda c: c.chunk_index)
        indexes = [c.chunk_index for c in group]
        if len(set(indexes)) != len(indexes):
            raise InvalidChunkError(f"document {document_id!r} has the same chunk_index twice")
    return documents


def check_dimension(actual: int, expected: int | None, what: str, error: type[Exception]) -> None:
    """Raise ``error`` when a vector's dimension is not the store's."""
    if expected is not None and actual != expected:
        raise error(f"{what} has {actual} dimensions but the vector store holds {expected}-dimension vectors")


def _search_request(
    tenant: str,
    query_text: str | None,
    query_vector: Sequence[float] | None,
    k: int,
    mode: SearchMode | str,
    document_ids: Sequence[str] | None,
    filters: Mapping[str, str] | None = None,
) -> SearchRequest:
    _require_name("tenant", tenant, InvalidQueryError)
    try:
        mode = SearchMode(mode)
    except ValueError:
        raise InvalidQueryError(f"mode must be one of {[m.value for m in SearchMode]} (given {mode!r})") from None
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQueryError(f"k must be an integer from 1 to {MAX_K} (given {k!r})")
    vector = None
    if mode is not SearchMode.KEYWORD:
        if query_vector is None:
            raise InvalidQueryError(f"{mode.value} search needs a query_vector")
        vector = tuple(float(x) for x in query_vector)
        _check_vector(vector, "query_vector", InvalidQueryError)
    if isinstance(document_ids, str):
        raise InvalidQueryError("document_ids must be a sequence of ids, not a string")
    ids = tuple(dict.fromkeys(document_ids)) if document_ids is not None else None
    text = query_text or ""
    return SearchRequest(tenant, mode, k, text, tuple(keyword_terms(text)), vector, ids, _filters(filters))


def _filters(filters: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if not filters:
        return ()
    for key, value in filters.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidQueryError(f"a filter maps a metadata key to a string value (given {key!r}: {value!r})")
    return tuple(sorted(filters.items()))


def _check_vector(vector: Sequence[float], what: str, error: type[Exception]) -> None:
    if not vector:
        raise error(f"{what} is empty")
    # Cosine similarity is undefined for a zero vector; OpenSearch rejects it too.
    norm = math.fsum(x * x for x in vector)
    if not math.isfinite(norm):
        raise error(f"{what} holds NaN or infinite values")
    if norm == 0.0:
        raise error(f"{what} is a zero vector, which has no direction to compare")


def _require_name(field: str, value: str, error: type[Exception] = InvalidQueryError) -> None:
    if not isinstance(value, str) or not value:
        raise error(f"{field} must be a non-empty string (given {value!r})")
