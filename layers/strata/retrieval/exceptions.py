"""Errors of the vector-store port, shared by every adapter."""

from __future__ import annotations


class VectorStoreError(Exception):
    """Base error of the vector store."""


class InvalidChunkError(VectorStoreError, ValueError):
    """Chunks given to ``upsert`` are inconsistent: wrong dimension, zero vector, duplicate index..."""


class InvalidQueryError(VectorStoreError, ValueError):
    """A search request cannot be run: missing query vector or text, wrong dimension, bad ``k``."""


class VectorStoreUnavailableError(VectorStoreError):
    """The backend cannot be reached or is overloaded right now; retrying later may succeed."""
