"""Backends that stand in for the models at the process edge: they record what the server asked
of them and let a test decide when a generation ends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from model_endpoint import ChatBackend, EmbeddingBackend
from model_endpoint.backends.base import ChatParams, GenerationEnd, GenerationEvent, TokenText, Usage
from model_endpoint.exceptions import PayloadTooLargeError

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass(frozen=True, slots=True)
class ForwardPass:
    texts: list[str]
    normalize: bool
    truncate: bool
    truncate_left: bool


class CountingEmbeddings(EmbeddingBackend):
    """Records every forward pass. A text's vector is ``[len(text), normalize]``, so a test can
    tell whose vector it got; texts over ``max_input_tokens`` characters are too long."""

    model_name = "counting"
    dimensions = 2
    max_input_tokens = 12

    def __init__(self, *, pass_s: float = 0.01) -> None:
        self.passes: list[ForwardPass] = []
        self._pass_s = pass_s
        self.closed = False

    def load(self) -> None:
        pass

    def embed(
        self, texts: Sequence[str], *, normalize: bool, truncate: bool, truncate_left: bool = False
    ) -> list[list[float]]:
        self.passes.append(ForwardPass(list(texts), normalize, truncate, truncate_left))
        time.sleep(self._pass_s)  # a forward pass takes time: requests arriving meanwhile queue up
        if not truncate:
            for index, text in enumerate(texts):
                if len(text) > self.max_input_tokens:
                    raise PayloadTooLargeError(f"input {index} is {len(text)} tokens long", param="inputs")
        return [vector(text, normalize) for text in texts]

    def close(self) -> None:
        self.closed = True


def vector(text: str, normalize: bool = True) -> list[float]:
    return [float(len(text)), 1.0 if normalize else 0.0]


class HeldChat(ChatBackend):
    """Generates ``tokens`` words, then holds its last one until ``release`` is called.

    ``log`` records "start", "end" and "close" in the order they happen, across threads;
    ``params`` what each generation was asked.
    """

    model_name = "held"

    def __init__(self, tokens: Sequence[str] = ("one", " two", " three"), *, held: bool = True) -> None:
        self._tokens = tokens
        self._release = threading.Event()
        if not held:
            self._release.set()
        self.started = threading.Event()
        self.log: list[str] = []
        self.params: list[ChatParams] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        pass

    def release(self) -> None:
        self._release.set()

    def generate(self, params: ChatParams, cancelled: threading.Event) -> Iterator[GenerationEvent]:
        self._record("start")
        self.params.append(params)
        self.started.set()
        try:
            *head, last = self._tokens
            for token in head:
                yield TokenText(token)
            while not self._release.wait(timeout=0.01):
                if cancelled.is_set():
                    yield GenerationEnd("cancelled", Usage(3, len(head)))
                    return
            yield TokenText(last)
            yield GenerationEnd("stop", Usage(3, len(self._tokens)))
        finally:
            self._record("end")

    def close(self) -> None:
        self._record("close")

    def _record(self, what: str) -> None:
        with self._lock:
            self.log.append(what)


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client for it, once /ping says the models are loaded."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://model", timeout=10) as client:
            await wait_until_ready(client)
            yield client


async def wait_until_ready(client: httpx.AsyncClient, timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while (await client.get("/ping")).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError("the fake models did not load")
        await asyncio.sleep(0.01)
