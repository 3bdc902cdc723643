"""The embedded vector store: one SQLite file, for the local stack and tests.

* Chunks live in a plain table with their float32 vectors as BLOBs; their text is also indexed
  by an FTS5 table (``porter unicode61`` tokenizer) whose ``bm25()`` gives keyword scores.
* Vector search is exact: cosine similarity with numpy over the tenant's chunks. Each tenant's
  normalized matrix is cached in memory and rebuilt when that tenant's version counter (bumped in
  the same transaction as every write) changes, so writes from other threads and processes are
  seen on the next search.
* Hybrid search fuses the two like OpenSearch's ``normalization-processor``
  (:mod:`strata.retrieval.hybrid`).
* Thread safe: one SQLite connection per thread, WAL journal (readers never block the writer),
  writes serialized by a lock and run as ``BEGIN IMMEDIATE`` transactions, so a document is
  replaced atomically: a search sees either all old chunks or all new ones.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strata.retrieval.base import DocumentKey, SearchRequest, VectorStore, check_dimension
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

SCHEMA_VERSION = "1"
_MAX_CACHED_TENANTS = 64

_SCHEMA = """
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
    UNIQUE (tenant, document_id, chunk_index)
);
CREATE TABLE IF NOT EXISTS tenant_versions (tenant TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts
    USING fts5(text, tokenize = 'porter unicode61 remove_diacritics 2');
"""

_HIT_COLUMNS = "id, tenant, document_id, chunk_index, text, source_key, title, page, char_start, char_end"
_IN_DOCUMENTS = "document_id IN (SELECT value FROM json_each(?))"


@dataclass(frozen=True, slots=True)
class _TenantMatrix:
    """One tenant's chunks for vector search, as of ``version``."""

    version: int
    ids: np.ndarray  # int64 row ids
    document_ids: np.ndarray  # str
    unit_vectors: np.ndarray  # float32, one L2-normalized row per chunk


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
    ) -> None:
        self.path = Path(path)
        self.hybrid = hybrid or HybridConfig()
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._cache: dict[str, _TenantMatrix] = {}
        self._cache_lock = threading.Lock()
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

    # -- primitives ---------------------------------------------------------------------------

    def _replace_documents(self, documents: dict[DocumentKey, list[ChunkRecord]]) -> None:
        dimension = len(next(iter(documents.values()))[0].vector)
        with self._write() as conn:
            self._claim_dimension(conn, dimension)
            for (tenant, document_id), chunks in documents.items():
                self._delete_rows(conn, tenant, document_id)
                fts_rows = [(self._insert_chunk(conn, chunk), chunk.text) for chunk in chunks]
                conn.executemany("INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)", fts_rows)
                self._bump_version(conn, tenant)
        logger.debug("replaced %d documents in %s", len(documents), self.path)

    def _delete_document(self, tenant: str, document_id: str) -> int:
        with self._write() as conn:
            removed = self._delete_rows(conn, tenant, document_id)
            if removed:
                self._bump_version(conn, tenant)
        return removed

    def _count(self, tenant: str) -> int:
        with self._errors():
            row = self._conn().execute("SELECT COUNT(*) FROM chunks WHERE tenant = ?", (tenant,)).fetchone()
        return int(row[0])

    def _search(self, request: SearchRequest) -> list[SearchHit]:
        with self._read() as conn:
            if request.vector is not None:
                check_dimension(len(request.vector), self._stored_dimension(conn), "query_vector", InvalidQueryError)
            loaded = self._load_hits(conn, self._rank(conn, request)[: request.k])
            if request.vector is not None and loaded:
                return self._with_similarity(conn, request, loaded)
            return [hit for _, hit in loaded]

    # -- search -------------------------------------------------------------------------------

    def _rank(self, conn: sqlite3.Connection, request: SearchRequest) -> list[tuple[int, float]]:
        if request.mode is SearchMode.KEYWORD:
            return list(self._keyword_scores(conn, request, request.k).items())
        if request.mode is SearchMode.VECTOR:
            return list(self._vector_scores(conn, request, request.k).items())
        depth = self.hybrid.depth(request.k)
        keyword = self._keyword_scores(conn, request, depth)
        vector = self._vector_scores(conn, request, depth)
        return fuse(keyword, vector, self.hybrid)

    def _keyword_scores(self, conn: sqlite3.Connection, request: SearchRequest, depth: int) -> dict[int, float]:
        """Top ``depth`` BM25 scores (sign flipped: SQLite's ``bm25()`` is lower-is-better)."""
        expression = fts5_match_expression(" ".join(request.terms))
        if expression is None:
            return {}
        sql = (
            "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts JOIN chunks AS c ON c.id = chunks_fts.rowid "
            "WHERE chunks_fts MATCH ? AND c.tenant = ?"
        )
        params: list[object] = [expression, request.tenant]
        if request.document_ids is not None:
            sql += f" AND c.{_IN_DOCUMENTS}"
            params.append(json.dumps(request.document_ids))
        sql += " ORDER BY score DESC, c.id LIMIT ?"
        params.append(depth)
        return {int(row[0]): float(row[1]) for row in conn.execute(sql, params)}

    def _vector_scores(self, conn: sqlite3.Connection, request: SearchRequest, depth: int) -> dict[int, float]:
        """Top ``depth`` chunks by cosine similarity, scored ``(1 + cos) / 2`` like OpenSearch."""
        assert request.vector is not None
        matrix = self._tenant_matrix(conn, request.tenant)
        rows = np.arange(matrix.ids.size)
        if request.document_ids is not None:
            rows = np.flatnonzero(np.isin(matrix.document_ids, request.document_ids))
        if rows.size == 0:
            return {}
        query = np.asarray(request.vector, dtype=np.float32)
        query /= np.linalg.norm(query)
        cosines = np.clip(matrix.unit_vectors[rows] @ query, -1.0, 1.0)
        if rows.size > depth:
            keep = np.argpartition(-cosines, depth - 1)[:depth]
            rows, cosines = rows[keep], cosines[keep]
        ids = matrix.ids[rows]
        order = np.lexsort((ids, -cosines))  # best first; ties by insertion order
        return {int(ids[i]): cosine_score(float(cosines[i])) for i in order}

    def _with_similarity(
        self, conn: sqlite3.Connection, request: SearchRequest, loaded: list[tuple[int, SearchHit]]
    ) -> list[SearchHit]:
        assert request.vector is not None
        matrix = self._tenant_matrix(conn, request.tenant)
        query = np.asarray(request.vector, dtype=np.float32)
        query /= np.linalg.norm(query)
        chunk_ids = np.asarray([chunk_id for chunk_id, _ in loaded])
        # The matrix is read ORDER BY id, so a chunk's row is found by binary search.
        rows = np.minimum(np.searchsorted(matrix.ids, chunk_ids), matrix.ids.size - 1)
        cosines = np.clip(matrix.unit_vectors[rows] @ query, -1.0, 1.0)
        found = matrix.ids[rows] == chunk_ids
        return [
            hit.model_copy(update={"similarity": float(cosine)}) if ok else hit
            for (_, hit), cosine, ok in zip(loaded, cosines, found, strict=True)
        ]

    def _tenant_matrix(self, conn: sqlite3.Connection, tenant: str) -> _TenantMatrix:
        version = self._version(conn, tenant)
        with self._cache_lock:
            cached = self._cache.get(tenant)
        if cached is not None and cached.version == version:
            return cached
        rows = conn.execute(
            "SELECT id, document_id, vector FROM chunks WHERE tenant = ? ORDER BY id", (tenant,)
        ).fetchall()
        matrix = _build_matrix(version, rows)
        with self._cache_lock:
            current = self._cache.get(tenant)
            if current is None or current.version <= version:
                self._cache.pop(tenant, None)
                self._cache[tenant] = matrix
                while len(self._cache) > _MAX_CACHED_TENANTS:
                    self._cache.pop(next(iter(self._cache)))
        return matrix

    def _load_hits(self, conn: sqlite3.Connection, ranked: list[tuple[int, float]]) -> list[tuple[int, SearchHit]]:
        if not ranked:
            return []
        rows = conn.execute(
            f"SELECT {_HIT_COLUMNS} FROM chunks WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps([chunk_id for chunk_id, _ in ranked]),),
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        return [(chunk_id, _hit(by_id[chunk_id], score)) for chunk_id, score in ranked if chunk_id in by_id]

    # -- writes -------------------------------------------------------------------------------

    def _claim_dimension(self, conn: sqlite3.Connection, dimension: int) -> None:
        stored = self._stored_dimension(conn)
        if stored is None:
            conn.execute("INSERT INTO store_meta (key, value) VALUES ('dimension', ?)", (str(dimension),))
        check_dimension(dimension, stored, "the chunks' vectors", InvalidChunkError)

    @staticmethod
    def _insert_chunk(conn: sqlite3.Connection, chunk: ChunkRecord) -> int:
        cursor = conn.execute(
            "INSERT INTO chunks (tenant, document_id, chunk_index, text, source_key, title, page, "
            "char_start, char_end, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
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
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @staticmethod
    def _delete_rows(conn: sqlite3.Connection, tenant: str, document_id: str) -> int:
        ids = conn.execute(
            "SELECT id FROM chunks WHERE tenant = ? AND document_id = ?", (tenant, document_id)
        ).fetchall()
        conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", ids)
        conn.execute("DELETE FROM chunks WHERE tenant = ? AND document_id = ?", (tenant, document_id))
        return len(ids)

    @staticmethod
    def _bump_version(conn: sqlite3.Connection, tenant: str) -> None:
        conn.execute(
            "INSERT INTO tenant_versions (tenant, version) VALUES (?, 1) "
            "ON CONFLICT (tenant) DO UPDATE SET version = version + 1",
            (tenant,),
        )

    @staticmethod
    def _version(conn: sqlite3.Connection, tenant: str) -> int:
        row = conn.execute("SELECT version FROM tenant_versions WHERE tenant = ?", (tenant,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _stored_dimension(conn: sqlite3.Connection) -> int | None:
        row = conn.execute("SELECT value FROM store_meta WHERE key = 'dimension'").fetchone()
        return int(row[0]) if row else None

    # -- connections and transactions ---------------------------------------------------------

    def _create_schema(self) -> None:
        with self._write() as conn:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            row = conn.execute("SELECT value FROM store_meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO store_meta (key, value) VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                raise VectorStoreError(
                    f"{self.path} has vector store schema {row[0]}, this version of Strata reads "
                    f"{SCHEMA_VERSION}; delete the file to re-index"
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
        conn.execute("PRAGMA synchronous = NORMAL")
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


def _build_matrix(version: int, rows: list[tuple[int, str, bytes]]) -> _TenantMatrix:
    if not rows:
        empty = np.zeros((0, 0), dtype=np.float32)
        return _TenantMatrix(version, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), empty)
    vectors = np.frombuffer(b"".join(row[2] for row in rows), dtype=np.float32).reshape(len(rows), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return _TenantMatrix(
        version=version,
        ids=np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows)),
        document_ids=np.array([row[1] for row in rows], dtype=object),
        unit_vectors=(vectors / norms).astype(np.float32),
    )


def _hit(row: tuple, score: float) -> SearchHit:
    _, tenant, document_id, chunk_index, text, source_key, title, page, char_start, char_end = row
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
    )
