"""The embedded vector store: one SQLite file, for the local stack and tests.

* Chunks live in a plain table with their float32 vectors as BLOBs, their heading path and
  metadata as JSON; the metadata is also in ``chunk_metadata`` (one row per key) so that a
  filter is an index lookup. Their text is indexed by an FTS5 table (``porter unicode61``)
  whose ``bm25()`` gives keyword scores.
* Vector search runs on an in-memory per-tenant index (:class:`_TenantIndex`): the tenant's
  L2-normalized vectors, scored exactly with numpy while the tenant is small, and through a
  faiss ``IndexIVFFlat`` (inner product) once it holds ``ann_min_chunks`` chunks (faiss is
  imported lazily; without it every search is exact). IVF is chosen over HNSW because it adds
  and removes vectors in place (``add_with_ids`` / ``remove_ids``) and trains in seconds,
  where an HNSW graph cannot remove and took minutes to build for 100k chunks here.
* The index follows the file incrementally: every write bumps the tenant's version in the same
  transaction and logs the chunk ids it deleted (``chunk_deletions``); chunk ids only grow. A
  search at version ``v`` applies to the cached index what happened since its version (new
  rows ``id > max_id``, logged deletions), so adding a document costs that document, not a
  rebuild. The index is rebuilt only when a quarter of its rows are deleted ones, or when the
  tenant has grown fourfold since the IVF was trained.
* Filters (document ids, metadata) are resolved in SQL into the allowed chunk ids; a small
  allowed set is scored exactly, a large one through faiss with an ``IDSelector`` (what
  OpenSearch's efficient k-NN filtering does), so ``k`` hits come back either way.
* Hybrid search fuses the two like OpenSearch's ``normalization-processor``
  (:mod:`strata.retrieval.hybrid`).
* Crash safety: one ``BEGIN IMMEDIATE`` transaction per document replaced (delete its old rows,
  insert the new ones, bump the version), WAL journal, ``synchronous = FULL``: a process killed
  at any point (``kill -9``) leaves every committed document whole and no part of the one it
  was writing; FULL also keeps committed transactions through a power loss.
* Thread safe: one SQLite connection per thread; readers never block the writer; a search
  reads one snapshot and scores exactly that snapshot: on the shared index brought to its
  version, or, when another search already moved the index past it, on the rows the snapshot
  sees (deleted rows keep their vectors until a rebuild; only a rebuild in between costs a
  private reload).
* Not pruned: ``chunk_deletions`` keeps one small row per deleted chunk.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from strata.retrieval.base import DocumentKey, SearchRequest, VectorStore, check_dimension
from strata.retrieval.bm25 import KeywordIndex, Stemmer
from strata.retrieval.exceptions import (
    InvalidChunkError,
    InvalidQueryError,
    VectorStoreError,
    VectorStoreUnavailableError,
)
from strata.retrieval.hybrid import HybridConfig, cosine_score, fuse
from strata.retrieval.keywords import fts5_match_expression
from strata.retrieval.types import ChunkRecord, SearchHit, SearchMode

logger = logging.getLogger(__name__)

# 2: heading_path and metadata columns, chunk_metadata, chunk_deletions (a version-1 file is
# migrated in place when opened: ALTER TABLE ADD COLUMN, no data copied, nothing lost).
SCHEMA_VERSION = "2"
ANN_MIN_CHUNKS = 20_000
# A filtered search whose allowed set is at most this large is scored exactly (cheaper than
# probing the IVF, and exact).
EXACT_FILTERED_MAX_CHUNKS = 20_000
_COMPACT_DEAD_FRACTION = 0.25
_RETRAIN_GROWTH = 4
_MAX_CACHED_TENANTS = 64

_TABLES = """
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    document_id TEXT NOT NULL,
    chunk_index INTEGER NOT NULL,
    text TEXT NOT NULL,
    source_key TEXT NOT NULL,
    title TEXT NOT NULL,
    page INTEGER,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    vector BLOB NOT NULL,
    heading_path TEXT NOT NULL DEFAULT '[]',
    metadata TEXT NOT NULL DEFAULT '{}',
    UNIQUE (tenant, document_id, chunk_index)
);
CREATE TABLE IF NOT EXISTS tenant_versions (tenant TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts
    USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
"""

# Created after the migration, since they may refer to the version-2 columns.
_INDEXES = """
CREATE INDEX IF NOT EXISTS chunks_by_tenant_id ON chunks (tenant, id);
CREATE TABLE IF NOT EXISTS chunk_metadata (chunk_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_metadata_by_pair ON chunk_metadata (key, value, chunk_id);
CREATE INDEX IF NOT EXISTS chunk_metadata_by_chunk ON chunk_metadata (chunk_id);
CREATE TABLE IF NOT EXISTS chunk_deletions (tenant TEXT NOT NULL, version INTEGER NOT NULL, chunk_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunk_deletions_by_version ON chunk_deletions (tenant, version);
"""

_MIGRATE_1_TO_2 = (
    "ALTER TABLE chunks ADD COLUMN heading_path TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE chunks ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",
)

_HIT_COLUMNS = (
    "id, tenant, document_id, chunk_index, text, source_key, title, page, char_start, char_end, "
    "heading_path, metadata, vector"
)
_IN_DOCUMENTS = "document_id IN (SELECT value FROM json_each(?))"
_HAS_METADATA = "id IN (SELECT chunk_id FROM chunk_metadata WHERE key = ? AND value = ?)"


class _TenantIndex:
    """One tenant's vectors as of ``version``: positions hold chunks in id order.

    ``ids[:size]`` is sorted (chunk ids only grow and are appended in order); a deleted chunk
    keeps its position, marked dead, until the next rebuild. The IVF index, when there is one,
    holds the live positions as its ids. Callers hold ``lock`` around any use.
    """

    def __init__(
        self, dimension: int, ann_min_chunks: int | None, nprobe: int | None, stemmer: Stemmer | None = None
    ) -> None:
        self.lock = threading.Lock()
        self.version = -1
        self.max_id = 0
        self.size = 0
        self.dead = 0
        self.loaded_at = -1
        self.ids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.deleted_at = np.zeros(0, dtype=np.int64)  # the version that deleted a dead row
        self.vectors = np.zeros((0, dimension), dtype=np.float32)
        self.ann: Any = None
        self._quantizer: Any = None
        self.trained_on = 0
        self._dimension = dimension
        self._ann_min_chunks = ann_min_chunks
        self._nprobe = nprobe
        # A tenant as large as the ANN threshold also gets its BM25 postings in memory (bm25.py).
        self._stemmer = stemmer
        self.keywords: KeywordIndex | None = None

    @property
    def live(self) -> int:
        return self.size - self.dead

    # -- keeping up with the file -------------------------------------------------------------

    def load(self, conn: sqlite3.Connection, tenant: str, version: int) -> None:
        """Read every chunk of the tenant (first use, or a rebuild)."""
        self.size = self.dead = self.max_id = 0
        self.ann, self.trained_on = None, 0
        rows = conn.execute("SELECT id, vector FROM chunks WHERE tenant = ? ORDER BY id", (tenant,)).fetchall()
        self._append(rows)
        self.version = self.loaded_at = version
        self._maybe_build_ann()
        self.keywords = None
        if self._stemmer is not None and self._ann_min_chunks is not None and self.size >= self._ann_min_chunks:
            self.keywords = KeywordIndex(self._stemmer)
            self._index_texts(conn, tenant, after_id=0, first_position=0)

    def catch_up(self, conn: sqlite3.Connection, tenant: str, version: int) -> None:
        """Apply the writes between ``self.version`` and ``version`` (the reader's snapshot)."""
        deleted = conn.execute(
            "SELECT chunk_id, version FROM chunk_deletions WHERE tenant = ? AND version > ? AND version <= ?",
            (tenant, self.version, version),
        ).fetchall()
        self._mark_dead(
            np.fromiter((row[0] for row in deleted), dtype=np.int64, count=len(deleted)),
            np.fromiter((row[1] for row in deleted), dtype=np.int64, count=len(deleted)),
        )
        rows = conn.execute(
            "SELECT id, vector FROM chunks WHERE tenant = ? AND id > ? ORDER BY id", (tenant, self.max_id)
        ).fetchall()
        first_new, previous_max_id = self.size, self.max_id
        self._append(rows)
        self.version = version
        grew_past_keywords = (
            self.keywords is None
            and self._stemmer is not None
            and self._ann_min_chunks is not None
            and self.live >= self._ann_min_chunks
        )
        if (
            self.dead > _COMPACT_DEAD_FRACTION * max(self.size, 1)
            or (self.ann is not None and self.live > _RETRAIN_GROWTH * self.trained_on)
            or grew_past_keywords
        ):
            logger.debug("rebuilding the vector index of %s (%d dead of %d)", tenant, self.dead, self.size)
            self.load(conn, tenant, version)
            return
        if self.keywords is not None and self.size > first_new:
            self._index_texts(conn, tenant, after_id=previous_max_id, first_position=first_new)
        if self.ann is not None and self.size > first_new:
            positions = np.arange(first_new, self.size, dtype=np.int64)
            self.ann.add_with_ids(self.vectors[first_new : self.size], positions)
        else:
            self._maybe_build_ann()

    def _index_texts(self, conn: sqlite3.Connection, tenant: str, *, after_id: int, first_position: int) -> None:
        """Add the texts of the rows after ``after_id`` (they hold positions from ``first_position``)."""
        assert self.keywords is not None
        rows = conn.execute(
            "SELECT text FROM chunks WHERE tenant = ? AND id > ? AND id <= ? ORDER BY id",
            (tenant, after_id, self.max_id),
        ).fetchall()
        self.keywords.add(first_position, [row[0] for row in rows])

    def _append(self, rows: list[tuple[int, bytes]]) -> None:
        if not rows:
            return
        vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(len(rows), -1)
        if vectors.shape[1] != self._dimension:
            raise VectorStoreError(f"stored vectors have {vectors.shape[1]} dimensions, expected {self._dimension}")
        needed = self.size + len(rows)
        if needed > self.ids.size:  # grow by doubling, so n appends copy O(n) in total
            capacity = max(needed, 2 * self.ids.size, 1024)
            self.ids = _grown(self.ids, capacity)
            self.alive = _grown(self.alive, capacity)
            self.deleted_at = _grown(self.deleted_at, capacity)
            self.vectors = _grown(self.vectors, capacity)
        end = self.size + len(rows)
        self.ids[self.size : end] = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        self.vectors[self.size : end] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        self.alive[self.size : end] = True
        self.deleted_at[self.size : end] = 0
        self.size = end
        self.max_id = int(self.ids[end - 1])

    def _mark_dead(self, chunk_ids: np.ndarray, versions: np.ndarray) -> None:
        held = self._held(chunk_ids)
        positions, versions = self.positions(chunk_ids), versions[held]
        live = self.alive[positions]
        positions, versions = positions[live], versions[live]
        if positions.size == 0:
            return
        self.alive[positions] = False
        self.deleted_at[positions] = versions
        self.dead += int(positions.size)
        if self.keywords is not None:
            self.keywords.remove(positions)
        if self.ann is not None:
            self.ann.remove_ids(positions.astype(np.int64))

    def _maybe_build_ann(self) -> None:
        if self.ann is not None or self._ann_min_chunks is None or self.live < self._ann_min_chunks:
            return
        faiss = _faiss()
        if faiss is None:
            return
        live = np.flatnonzero(self.alive[: self.size]).astype(np.int64)
        # About sqrt(n) lists, trained on 40 vectors per list (faiss warns below 39).
        lists = max(16, int(math.sqrt(live.size)))
        sample = live[np.random.default_rng(0).permutation(live.size)[: 40 * lists]]
        quantizer = faiss.IndexFlatIP(self._dimension)
        ann = faiss.IndexIVFFlat(quantizer, self._dimension, lists, faiss.METRIC_INNER_PRODUCT)
        ann.cp.niter = 10
        ann.train(np.ascontiguousarray(self.vectors[sample]))
        ann.set_direct_map_type(faiss.DirectMap.Hashtable)  # so that remove_ids is a lookup
        ann.add_with_ids(np.ascontiguousarray(self.vectors[live]), live)
        ann.nprobe = self._nprobe or max(16, lists // 10)
        self.ann, self.trained_on = ann, int(live.size)
        self._quantizer = quantizer  # the IVF index points at it: keep it alive as long

    # -- search -------------------------------------------------------------------------------

    def positions(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Positions of these chunk ids (ids not held are left out)."""
        if chunk_ids.size == 0 or self.size == 0:
            return np.zeros(0, dtype=np.int64)
        ids = self.ids[: self.size]
        positions = np.minimum(np.searchsorted(ids, chunk_ids), self.size - 1)
        return positions[ids[positions] == chunk_ids]

    def _held(self, chunk_ids: np.ndarray) -> np.ndarray:
        """Which of these chunk ids have a position (a mask in their order)."""
        if chunk_ids.size == 0 or self.size == 0:
            return np.zeros(chunk_ids.size, dtype=bool)
        ids = self.ids[: self.size]
        return ids[np.minimum(np.searchsorted(ids, chunk_ids), self.size - 1)] == chunk_ids

    def search_as_of(
        self, query: np.ndarray, depth: int, allowed: np.ndarray | None, version: int, max_id: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact search over the rows a reader at ``version`` sees, on an index that is already
        past it: rows up to the reader's largest id, minus those deleted at or before its
        version (rows deleted later are dead here but keep their vectors until a rebuild)."""
        if allowed is None:
            size = self.size
            visible = (self.ids[:size] <= max_id) & (self.alive[:size] | (self.deleted_at[:size] > version))
            allowed = np.flatnonzero(visible)
        if allowed.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        positions, cosines = self._exact_search(query, depth, allowed)
        ids = self.ids[positions]
        order = np.lexsort((ids, -cosines))
        return ids[order], np.clip(cosines[order], -1.0, 1.0)

    def search(self, query: np.ndarray, depth: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The ``depth`` best live chunks (ids, cosines), best first, ties by id.

        ``allowed``: positions the search is limited to (all live when None).
        """
        if allowed is not None and allowed.size == 0 or self.live == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        use_ann = self.ann is not None and (allowed is None or allowed.size > EXACT_FILTERED_MAX_CHUNKS)
        if use_ann:
            positions, cosines = self._ann_search(query, depth, allowed)
        else:
            positions, cosines = self._exact_search(query, depth, allowed)
        ids = self.ids[positions]
        order = np.lexsort((ids, -cosines))
        return ids[order], np.clip(cosines[order], -1.0, 1.0)

    def _exact_search(self, query: np.ndarray, depth: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if allowed is None:
            cosines = self.vectors[: self.size] @ query
            if self.dead:
                cosines[~self.alive[: self.size]] = -np.inf
            positions = np.arange(self.size)
            live = self.live
        else:
            positions = allowed
            cosines = self.vectors[allowed] @ query
            live = allowed.size
        if positions.size > depth:
            keep = np.argpartition(-cosines, depth - 1)[:depth]
            positions, cosines = positions[keep], cosines[keep]
        if live < positions.size:  # fewer live rows than depth: drop the dead ones
            keep = np.isfinite(cosines)
            positions, cosines = positions[keep], cosines[keep]
        return positions, cosines

    def _ann_search(self, query: np.ndarray, depth: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        # The selector is bound to a name so that it outlives the search (SWIG keeps no reference).
        selector = faiss.IDSelectorBatch(allowed.astype(np.int64)) if allowed is not None else None
        params = faiss.SearchParametersIVF(nprobe=self.ann.nprobe)
        if selector is not None:
            params.sel = selector
        cosines, positions = self.ann.search(query.reshape(1, -1), depth, params=params)
        found = positions[0] >= 0
        return positions[0][found], cosines[0][found]


class LocalVectorStore(VectorStore):
    """Vector store in a SQLite file that survives restarts.

    Parameters
    ----------
    path
        The database file; its folder is created if needed.
    hybrid
        Hybrid fusion settings (weights, candidates per sub-query).
    busy_timeout_s
        How long a write waits for another process's write before failing.
    ann_min_chunks
        A tenant with at least this many chunks is searched through a faiss IVF index; None
        (or faiss missing) keeps every search exact.
    ann_nprobe
        IVF lists probed per query (default: a tenth of them, at least 16).

    Examples
    --------
    >>> store = LocalVectorStore(".strata/vectors.db")  # doctest: +SKIP
    >>> store.upsert(chunks)  # doctest: +SKIP
    >>> store.search(tenant="acme", query_text="refunds", query_vector=v, k=4)  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        hybrid: HybridConfig | None = None,
        busy_timeout_s: float = 30.0,
        ann_min_chunks: int | None = ANN_MIN_CHUNKS,
        ann_nprobe: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.hybrid = hybrid or HybridConfig()
        self.ann_min_chunks = ann_min_chunks
        self.ann_nprobe = ann_nprobe
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._cache: dict[str, _TenantIndex] = {}
        self._cache_lock = threading.Lock()
        self._stemmer = Stemmer()
        self._known_dimension: int | None = None
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._create_schema()

    @property
    def dimension(self) -> int | None:
        """The vectors' dimension, fixed by the first write (None while the store is empty)."""
        with self._errors():
            return self._stored_dimension(self._conn())

    def close(self) -> None:
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        with self._cache_lock:
            self._cache.clear()

    def warm(self, tenant: str) -> None:
        """Load the tenant's vector index now (and build its ANN index if it is large), so the
        first search does not pay for it; the local stack can call this at start-up."""
        with self._read() as conn:
            dimension = self._stored_dimension(conn)
            if dimension is None:
                return
            index = self._cached_index(tenant, dimension)
            with index.lock:
                self._bring_to(index, conn, tenant, self._version(conn, tenant))

    # -- primitives ---------------------------------------------------------------------------

    def _replace_documents(self, documents: dict[DocumentKey, list[ChunkRecord]]) -> None:
        dimension = len(next(iter(documents.values()))[0].vector)
        # One transaction per document: a crash keeps every document written before it whole.
        for (tenant, document_id), chunks in documents.items():
            with self._write() as conn:
                self._claim_dimension(conn, dimension)
                version = self._version(conn, tenant) + 1
                self._delete_rows(conn, tenant, document_id, version)
                self._insert_chunks(conn, chunks)
                self._set_version(conn, tenant, version)
        logger.debug("replaced %d documents in %s", len(documents), self.path)

    def _delete_document(self, tenant: str, document_id: str) -> int:
        with self._write() as conn:
            version = self._version(conn, tenant) + 1
            removed = self._delete_rows(conn, tenant, document_id, version)
            if removed:
                self._set_version(conn, tenant, version)
        return removed

    def _count(self, tenant: str) -> int:
        with self._errors():
            row = self._conn().execute("SELECT COUNT(*) FROM chunks WHERE tenant = ?", (tenant,)).fetchone()
        return int(row[0])

    def _search(self, request: SearchRequest) -> list[SearchHit]:
        with self._read() as conn:
            if request.vector is not None:
                check_dimension(len(request.vector), self._stored_dimension(conn), "query_vector", InvalidQueryError)
            ranked, keyword = self._rank(conn, request)
            return self._load_hits(conn, ranked[: request.k], request.vector, keyword)

    # -- search -------------------------------------------------------------------------------

    def _rank(
        self, conn: sqlite3.Connection, request: SearchRequest
    ) -> tuple[list[tuple[int, float]], dict[int, float]]:
        """The ranked ``(chunk id, score)`` pairs, and the BM25 scores of the keyword part."""
        if request.mode is SearchMode.KEYWORD:
            keyword = self._keyword_scores(conn, request, request.k)
            return list(keyword.items()), keyword
        if request.mode is SearchMode.VECTOR:
            return list(self._vector_scores(conn, request, request.k).items()), {}
        depth = self.hybrid.depth(request.k)
        keyword = self._keyword_scores(conn, request, depth)
        vector = self._vector_scores(conn, request, depth)
        return fuse(keyword, vector, self.hybrid), keyword

    def _keyword_scores(self, conn: sqlite3.Connection, request: SearchRequest, depth: int) -> dict[int, float]:
        """Top ``depth`` BM25 scores (sign flipped: SQLite's ``bm25()`` is lower-is-better)."""
        expression = fts5_match_expression(" ".join(request.terms))
        if expression is None:
            return {}
        in_memory = self._in_memory_keyword_scores(conn, request, depth)
        if in_memory is not None:
            return in_memory
        where, params = _filter_clauses(request, "c.")
        sql = (
            "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts JOIN chunks AS c ON c.id = chunks_fts.rowid "
            f"WHERE chunks_fts MATCH ? AND {where} ORDER BY score DESC, c.id LIMIT ?"
        )
        return {int(row[0]): float(row[1]) for row in conn.execute(sql, [expression, *params, depth])}

    def _in_memory_keyword_scores(
        self, conn: sqlite3.Connection, request: SearchRequest, depth: int
    ) -> dict[int, float] | None:
        """BM25 from a large tenant's in-memory postings; None where FTS5 answers (a small tenant,
        or an index already past this reader's snapshot)."""
        dimension = self._stored_dimension(conn)
        if dimension is None or self.ann_min_chunks is None:
            return None
        allowed_ids = self._allowed_ids(conn, request)
        version = self._version(conn, request.tenant)
        index = self._cached_index(request.tenant, dimension)
        with index.lock:
            self._bring_to(index, conn, request.tenant, version)
            if index.keywords is None or index.version != version:
                return None
            allowed = None if allowed_ids is None else index.positions(allowed_ids)
            terms = index.keywords.query_terms(" ".join(request.terms))
            positions, scores = index.keywords.search(terms, depth, allowed)
            return {int(index.ids[p]): float(score) for p, score in zip(positions, scores, strict=True)}

    def _vector_scores(self, conn: sqlite3.Connection, request: SearchRequest, depth: int) -> dict[int, float]:
        """Top ``depth`` chunks by cosine similarity, scored ``(1 + cos) / 2`` like OpenSearch."""
        assert request.vector is not None
        dimension = self._stored_dimension(conn)
        if dimension is None:
            return {}
        query = _unit(request.vector)
        allowed_ids = self._allowed_ids(conn, request)
        if allowed_ids is not None and allowed_ids.size == 0:
            return {}
        version = self._version(conn, request.tenant)
        index = self._cached_index(request.tenant, dimension)
        with index.lock:
            self._bring_to(index, conn, request.tenant, version)
            allowed = None if allowed_ids is None else index.positions(allowed_ids)
            if index.version == version:
                ids, cosines = index.search(query, depth, allowed)
                return {int(i): cosine_score(float(c)) for i, c in zip(ids, cosines, strict=True)}
            if index.loaded_at <= version:
                # The index is already past this reader's snapshot (a write landed meanwhile):
                # score exactly what the snapshot sees, rather than show a mix of two versions.
                (max_id,) = conn.execute(
                    "SELECT COALESCE(MAX(id), 0) FROM chunks WHERE tenant = ?", (request.tenant,)
                ).fetchone()
                ids, cosines = index.search_as_of(query, depth, allowed, version, int(max_id))
                return {int(i): cosine_score(float(c)) for i, c in zip(ids, cosines, strict=True)}
        # Rebuilt after this reader's snapshot: the rows it sees may be gone from the index.
        private = _TenantIndex(dimension, None, None)
        private.load(conn, request.tenant, version)
        allowed = None if allowed_ids is None else private.positions(allowed_ids)
        ids, cosines = private.search(query, depth, allowed)
        return {int(i): cosine_score(float(c)) for i, c in zip(ids, cosines, strict=True)}

    @staticmethod
    def _allowed_ids(conn: sqlite3.Connection, request: SearchRequest) -> np.ndarray | None:
        """The chunk ids the request's filters allow; None when only the tenant limits it."""
        if request.document_ids is None and not request.filters:
            return None
        where, params = _filter_clauses(request, "")
        rows = conn.execute(f"SELECT id FROM chunks WHERE {where} ORDER BY id", params).fetchall()
        return np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))

    def _cached_index(self, tenant: str, dimension: int) -> _TenantIndex:
        with self._cache_lock:
            index = self._cache.pop(tenant, None)
            if index is None:
                index = _TenantIndex(dimension, self.ann_min_chunks, self.ann_nprobe, self._stemmer)
            self._cache[tenant] = index  # most recently used last
            while len(self._cache) > _MAX_CACHED_TENANTS:
                self._cache.pop(next(iter(self._cache)))
        return index

    @staticmethod
    def _bring_to(index: _TenantIndex, conn: sqlite3.Connection, tenant: str, version: int) -> None:
        if index.version < 0:
            index.load(conn, tenant, version)
        elif index.version < version:
            index.catch_up(conn, tenant, version)

    def _load_hits(
        self,
        conn: sqlite3.Connection,
        ranked: list[tuple[int, float]],
        query: Sequence[float] | None,
        keyword: dict[int, float],
    ) -> list[SearchHit]:
        if not ranked:
            return []
        rows = conn.execute(
            f"SELECT {_HIT_COLUMNS} FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps([chunk_id for chunk_id, _ in ranked]),),
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        unit_query = _unit(query) if query is not None else None
        return [
            _hit(by_id[chunk_id], score, unit_query, keyword.get(chunk_id))
            for chunk_id, score in ranked
            if chunk_id in by_id
        ]

    # -- writes -------------------------------------------------------------------------------

    def _claim_dimension(self, conn: sqlite3.Connection, dimension: int) -> None:
        stored = self._stored_dimension(conn)
        if stored is None:
            conn.execute("INSERT INTO store_meta (key, value) VALUES ('dimension', ?)", (str(dimension),))
        check_dimension(dimension, stored, "the chunks' vectors", InvalidChunkError)

    @staticmethod
    def _insert_chunks(conn: sqlite3.Connection, chunks: Sequence[ChunkRecord]) -> None:
        # Ids are never reused (SQLite would reuse the largest one after a delete), so an index
        # that has seen ids up to n knows that every new chunk has an id above n.
        row = conn.execute("SELECT value FROM store_meta WHERE key = 'next_chunk_id'").fetchone()
        (largest,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()
        first = max(int(row[0]) if row else 1, int(largest) + 1)
        ids = range(first, first + len(chunks))
        conn.executemany(
            "INSERT INTO chunks (id, tenant, document_id, chunk_index, text, source_key, title, page, "
            "char_start, char_end, vector, heading_path, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    chunk_id,
                    chunk.tenant,
                    chunk.document_id,
                    chunk.chunk_index,
                    chunk.text,
                    chunk.source_key,
                    chunk.title,
                    chunk.page,
                    chunk.char_start,
                    chunk.char_end,
                    np.asarray(chunk.vector, dtype=np.float32).tobytes(),
                    json.dumps(chunk.heading_path, ensure_ascii=False),
                    json.dumps(chunk.metadata, ensure_ascii=False, sort_keys=True),
                )
                for chunk_id, chunk in zip(ids, chunks, strict=True)
            ],
        )
        conn.executemany(
            "INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)",
            [(chunk_id, chunk.text) for chunk_id, chunk in zip(ids, chunks, strict=True)],
        )
        conn.executemany(
            "INSERT INTO chunk_metadata (chunk_id, key, value) VALUES (?, ?, ?)",
            [(i, key, value) for i, chunk in zip(ids, chunks, strict=True) for key, value in chunk.metadata.items()],
        )
        conn.execute(
            "INSERT INTO store_meta (key, value) VALUES ('next_chunk_id', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(first + len(chunks)),),
        )

    @staticmethod
    def _delete_rows(conn: sqlite3.Connection, tenant: str, document_id: str, version: int) -> int:
        ids = conn.execute(
            "SELECT id FROM chunks WHERE tenant = ? AND document_id = ?", (tenant, document_id)
        ).fetchall()
        if not ids:
            return 0
        conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", ids)
        conn.executemany("DELETE FROM chunk_metadata WHERE chunk_id = ?", ids)
        conn.execute("DELETE FROM chunks WHERE tenant = ? AND document_id = ?", (tenant, document_id))
        # The deletion log lets every process's in-memory index drop these ids incrementally.
        conn.executemany(
            "INSERT INTO chunk_deletions (tenant, version, chunk_id) VALUES (?, ?, ?)",
            [(tenant, version, row[0]) for row in ids],
        )
        return len(ids)

    @staticmethod
    def _set_version(conn: sqlite3.Connection, tenant: str, version: int) -> None:
        conn.execute(
            "INSERT INTO tenant_versions (tenant, version) VALUES (?, ?) "
            "ON CONFLICT (tenant) DO UPDATE SET version = excluded.version",
            (tenant, version),
        )

    @staticmethod
    def _version(conn: sqlite3.Connection, tenant: str) -> int:
        row = conn.execute("SELECT version FROM tenant_versions WHERE tenant = ?", (tenant,)).fetchone()
        return int(row[0]) if row else 0

    def _stored_dimension(self, conn: sqlite3.Connection) -> int | None:
        # The first write fixes it for good: once known, it is not read again.
        if self._known_dimension is None:
            row = conn.execute("SELECT value FROM store_meta WHERE key = 'dimension'").fetchone()
            self._known_dimension = int(row[0]) if row else None
        return self._known_dimension

    # -- connections and transactions ---------------------------------------------------------

    def _create_schema(self) -> None:
        with self._write() as conn:
            for statement in filter(str.strip, _TABLES.split(";")):
                conn.execute(statement)
            row = conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
            if row is not None and row[0] == "1":
                # ADD COLUMN rewrites nothing: old chunks read as no headings and no metadata.
                for statement in _MIGRATE_1_TO_2:
                    conn.execute(statement)
                logger.info("migrated the vector store at %s from schema 1 to 2", self.path)
            elif row is not None and row[0] != SCHEMA_VERSION:
                raise VectorStoreError(
                    f"{self.path} has vector store schema {row[0]}, this version of Strata reads "
                    f"{SCHEMA_VERSION}; delete the file to re-index"
                )
            for statement in filter(str.strip, _INDEXES.split(";")):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO store_meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION,),
            )

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise VectorStoreError(f"the vector store at {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT) below.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is fsynced before it returns, so a committed document survives a power
        # loss too (NORMAL is already safe against a killed process). Ingestion is bound by
        # embedding, not by one fsync per document.
        conn.execute("PRAGMA synchronous = FULL")
        self._local.conn = conn
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock, self._errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement inside sees the same snapshot."""
        with self._errors():
            conn = self._conn()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise VectorStoreUnavailableError(f"the vector store at {self.path} is busy: {exc}") from exc
            raise VectorStoreError(f"vector store error at {self.path}: {exc}") from exc
        except sqlite3.Error as exc:
            raise VectorStoreError(f"vector store error at {self.path}: {exc}") from exc


def _filter_clauses(request: SearchRequest, prefix: str) -> tuple[str, list[object]]:
    """The SQL conditions (on ``chunks``, columns prefixed by ``prefix``) for the tenant, the
    document ids and the metadata filters, with their parameters."""
    clauses = [f"{prefix}tenant = ?"]
    params: list[object] = [request.tenant]
    if request.document_ids is not None:
        clauses.append(f"{prefix}{_IN_DOCUMENTS}")
        params.append(json.dumps(request.document_ids))
    for key, value in request.filters:
        clauses.append(f"{prefix}{_HAS_METADATA}")
        params.extend((key, value))
    return " AND ".join(clauses), params


def _faiss() -> Any:
    """faiss, or None when it is not installed (the ``local`` extra brings it)."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _grown(array: np.ndarray, capacity: int) -> np.ndarray:
    grown = np.zeros((capacity, *array.shape[1:]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _unit(vector: Sequence[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


def _hit(row: tuple, score: float, unit_query: np.ndarray | None, keyword_score: float | None) -> SearchHit:
    _, tenant, document_id, chunk_index, text, source_key, title, page, char_start, char_end, headings, meta, blob = row
    similarity = None
    if unit_query is not None:
        vector = np.frombuffer(blob, dtype=np.float32)
        similarity = float(np.clip(np.dot(vector, unit_query) / np.linalg.norm(vector), -1.0, 1.0))
    return SearchHit(
        tenant=tenant,
        document_id=document_id,
        chunk_index=chunk_index,
        text=text,
        source_key=source_key,
        title=title,
        page=page,
        char_start=char_start,
        char_end=char_end,
        score=score,
        heading_path=json.loads(headings),
        metadata=json.loads(meta),
        similarity=similarity,
        keyword_score=keyword_score,
    )
