"""Graceful shutdown: the lifespan drains the work in flight before it closes the models."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI

from model_endpoint import ServerConfig, create_app
from tests.unit.model_endpoint.fakes import FRANCE, CountingEmbeddings, HeldChat, wait_until_ready

pytestmark = pytest.mark.anyio


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://model", timeout=10)


def _sse_text(body: bytes) -> str:
    events = [event.removeprefix("data: ") for event in body.decode().split("\n\n") if event]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    return "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)


async def test_shutdown_lets_the_stream_in_flight_finish_before_closing_the_model_and_refuses_new_requests():
    # GIVEN a stream in flight on a model that holds its last token
    backend = HeldChat()
    embeddings = CountingEmbeddings()
    app = create_app(ServerConfig(), chat_backend=backend, embedding_backend=embeddings)
    lifespan = app.router.lifespan_context(app)
    async with _client(app) as client:
        await lifespan.__aenter__()
        await wait_until_ready(client)
        stream = asyncio.create_task(client.post("/invocations", json={"messages": FRANCE, "stream": True}))
        assert await asyncio.to_thread(backend.started.wait, 5)

        # WHEN shutdown begins
        shutdown = asyncio.create_task(lifespan.__aexit__(None, None, None))
        await asyncio.sleep(0.1)

        # THEN the model stays open under the running generation ...
        assert not shutdown.done()
        assert backend.log == ["start"]
        # ... while health checks and new requests are told to go elsewhere
        ping = await client.get("/ping")
        assert (ping.status_code, ping.json()) == (503, {"status": "draining"})
        chat = await client.post("/invocations", json={"messages": FRANCE})
        assert chat.status_code == 503
        assert "shutting down" in chat.json()["error"]["message"]
        embed = await client.post("/invocations", json={"inputs": "late"})
        assert (embed.status_code, embed.json()["error_type"]) == (503, "Unhealthy")
        runtime = await client.post("/endpoints/strata-chat/invocations", json={"messages": FRANCE})
        assert (runtime.status_code, runtime.headers["x-amzn-errortype"]) == (503, "ServiceUnavailable")

        # AND once the generation ends, its stream is complete and only then is the model closed
        backend.release()
        reply = await stream
        await asyncio.wait_for(shutdown, 5)

    assert reply.status_code == 200
    assert _sse_text(reply.content) == "one two three"
    assert backend.log == ["start", "end", "close"]
    assert embeddings.closed
    assert embeddings.passes == []  # the late embedding request never reached the model


async def test_shutdown_closes_the_model_anyway_once_the_grace_period_is_over():
    backend = HeldChat()
    app = create_app(ServerConfig(graceful_shutdown_s=0), chat_backend=backend, embedding_backend=CountingEmbeddings())
    lifespan = app.router.lifespan_context(app)
    async with _client(app) as client:
        await lifespan.__aenter__()
        await wait_until_ready(client)
        stream = asyncio.create_task(client.post("/invocations", json={"messages": FRANCE}))
        assert await asyncio.to_thread(backend.started.wait, 5)

        await asyncio.wait_for(lifespan.__aexit__(None, None, None), 5)

        assert backend.log == ["start", "close"]  # a generation stuck past the grace period does not block exit
        backend.release()
        await stream
