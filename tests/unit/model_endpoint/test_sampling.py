"""Sampling parameters reach the backend as the client sent them."""

from __future__ import annotations

import pytest

from model_endpoint import ServerConfig, create_app
from tests.unit.model_endpoint.fakes import CountingEmbeddings, HeldChat, serving

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "user", "content": "What do kangaroos eat?"}]


async def test_the_repetition_penalty_reaches_the_backend_and_defaults_to_none() -> None:
    backend = HeldChat(tokens=("Grass",), held=False)
    app = create_app(ServerConfig(), chat_backend=backend, embedding_backend=CountingEmbeddings())

    async with serving(app) as client:
        penalised = await client.post("/v1/chat/completions", json={"messages": MESSAGES, "repetition_penalty": 1.15})
        plain = await client.post("/v1/chat/completions", json={"messages": MESSAGES})
        refused = await client.post("/v1/chat/completions", json={"messages": MESSAGES, "repetition_penalty": 0})

    assert (penalised.status_code, plain.status_code, refused.status_code) == (200, 200, 400)
    assert [params.repetition_penalty for params in backend.params] == [1.15, 1.0]
