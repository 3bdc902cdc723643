"""Coalesce concurrent embedding requests into one forward pass of the model.

A forward pass over 16 short texts costs little more than over one, but sixteen callers each
sending one text would otherwise run sixteen passes one after another (the backend encodes one
batch at a time). ``EmbeddingBatcher`` sits in front of ``EmbeddingBackend.embed``: requests
queue per set of options (``normalize`` / ``truncate`` / direction change the computation, so
only identical ones share a pass), one worker takes the oldest group once its first request has
waited ``window_s`` or the group is full, and each request gets back its own slice of vectors.

While a pass runs, new requests gather; the next pass starts the moment the model is free, so
under load the window costs nothing and the batches grow by themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from model_endpoint.backends.base import EmbeddingBackend
from model_endpoint.exceptions import BackendError

__all__ = ("EmbedOptions", "EmbeddingBatcher")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbedOptions:
    """What a request asks of the pass besides its texts; requests share a pass only if equal."""

    normalize: bool
    truncate: bool
    truncate_left: bool = False


@dataclass(slots=True)
class _Pending:
    texts: Sequence[str]
    future: asyncio.Future[list[list[float]]]
    queued_at: float = field(default_factory=time.monotonic)


class EmbeddingBatcher:
    """Async front of an ``EmbeddingBackend`` that merges concurrent calls.

    Examples
    --------
    >>> batcher = EmbeddingBatcher(backend, window_s=0.002, max_batch_size=32)
    >>> vectors = await batcher.embed(["one text"], EmbedOptions(normalize=True, truncate=True))
    >>> await batcher.aclose()  # at shutdown: lets the passes already queued finish
    """

    def __init__(self, backend: EmbeddingBackend, *, window_s: float, max_batch_size: int) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}")
        self._backend = backend
        self._window_s = window_s
        self._max_batch_size = max_batch_size
        self._groups: OrderedDict[EmbedOptions, list[_Pending]] = OrderedDict()
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    async def embed(self, texts: Sequence[str], options: EmbedOptions) -> list[list[float]]:
        """One vector per text, in order; raises what the backend raised for *this* request."""
        future: asyncio.Future[list[list[float]]] = asyncio.get_running_loop().create_future()
        self._groups.setdefault(options, []).append(_Pending(texts, future))
        self._ensure_worker()
        return await future

    async def aclose(self) -> None:
        """Wait until every queued request has been answered."""
        if self._worker is not None:
            await asyncio.shield(self._worker)

    def _ensure_worker(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        # The worker runs only while there is work, so nothing has to start or stop it.
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="embedding-batcher")

    async def _run(self) -> None:
        try:
            while self._groups:
                options = next(iter(self._groups))  # oldest group first: no group starves
                await self._wait_for_company(options)
                batch = self._take(options)
                if batch:
                    await self._embed_batch(batch, options)
        except BaseException:
            # The worker itself was cancelled (loop shutting down): nobody may wait forever.
            for group in self._groups.values():
                for pending in group:
                    _settle(pending, error=BackendError("the server stopped before embedding this request"))
            self._groups.clear()
            raise

    async def _wait_for_company(self, options: EmbedOptions) -> None:
        """Sleep until the group is full or its oldest request has waited ``window_s``."""
        assert self._wake is not None
        group = self._groups[options]
        deadline = group[0].queued_at + self._window_s
        while sum(len(p.texts) for p in group) < self._max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _take(self, options: EmbedOptions) -> list[_Pending]:
        """Pop whole requests off the group up to ``max_batch_size`` texts (at least one request)."""
        group = self._groups[options]
        batch: list[_Pending] = []
        size = 0
        while group and (not batch or size + len(group[0].texts) <= self._max_batch_size):
            pending = group.pop(0)
            if pending.future.done():  # its caller was cancelled while it waited
                continue
            batch.append(pending)
            size += len(pending.texts)
        if not group:
            del self._groups[options]
        else:
            self._groups.move_to_end(options)  # what is left waits behind the other groups
        return batch

    async def _embed_batch(self, batch: list[_Pending], options: EmbedOptions) -> None:
        try:
            await self._embed_merged(batch, options)
        finally:
            for pending in batch:  # only if interrupted: every request is settled above
                _settle(pending, error=BackendError("the server stopped before embedding this request"))

    async def _embed_merged(self, batch: list[_Pending], options: EmbedOptions) -> None:
        texts = [text for pending in batch for text in pending.texts]
        try:
            vectors = await self._forward(texts, options)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0], error=exc)
                return
            # One bad request (say, too long with truncation off) must not fail the others, and its
            # error must name its own input index: run each alone to find out who gets what.
            logger.debug("merged embedding pass failed (%s); retrying its %d requests alone", exc, len(batch))
            for pending in batch:
                try:
                    _settle(pending, vectors=await self._forward(pending.texts, options))
                except Exception as alone:
                    _settle(pending, error=alone)
            return
        offset = 0
        for pending in batch:
            _settle(pending, vectors=vectors[offset : offset + len(pending.texts)])
            offset += len(pending.texts)

    async def _forward(self, texts: Sequence[str], options: EmbedOptions) -> list[list[float]]:
        vectors = await asyncio.to_thread(
            self._backend.embed,
            texts,
            normalize=options.normalize,
            truncate=options.truncate,
            truncate_left=options.truncate_left,
        )
        if len(vectors) != len(texts):  # a backend contract violation; never hand out shifted vectors
            raise BackendError(f"the model returned {len(vectors)} vectors for {len(texts)} inputs")
        return vectors


def _settle(pending: _Pending, *, vectors: list[list[float]] | None = None, error: BaseException | None = None) -> None:
    if pending.future.done():  # cancelled meanwhile: nobody to tell
        return
    if error is not None:
        pending.future.set_exception(error)
    else:
        pending.future.set_result(vectors or [])
