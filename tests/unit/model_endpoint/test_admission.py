"""Bounded generation admission: GenerationGate alone, then the server in front of a slow model."""

from __future__ import annotations

import asyncio

import pytest

from model_endpoint import ServerConfig, create_app
from model_endpoint.admission import GenerationGate
from model_endpoint.exceptions import ClientClosedRequestError, ServerOverloadedError
from tests.unit.model_endpoint.fakes import FRANCE, CountingEmbeddings, HeldChat, serving

pytestmark = pytest.mark.anyio


async def test_gate_runs_up_to_max_running_queues_up_to_max_waiting_and_refuses_the_next_with_retry_after():
    gate = GenerationGate(max_running=1, max_waiting=2, retry_after_s=3)
    first = await gate.acquire()
    waiters = [asyncio.create_task(gate.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    assert (gate.running, gate.waiting) == (1, 2)

    with pytest.raises(ServerOverloadedError) as caught:
        await gate.acquire()

    assert caught.value.status_code == 503
    assert caught.value.headers() == {"Retry-After": "3"}
    assert (gate.running, gate.waiting) == (1, 2)  # the refused one left no trace
    first.release()
    for waiter in waiters:
        (await waiter).release()


async def test_gate_hands_slots_to_waiters_first_come_first_served_and_release_is_idempotent():
    gate = GenerationGate(max_running=1, max_waiting=2, retry_after_s=1)
    first = await gate.acquire()
    second, third = (asyncio.create_task(gate.acquire()) for _ in range(2))
    await asyncio.sleep(0)

    first.release()
    slot = await second
    assert not third.done()
    slot.release()
    slot.release()  # reported twice (stream closed and worker done): must not free a second slot

    last = await third
    assert (gate.running, gate.waiting) == (1, 0)
    last.release()
    assert (gate.running, gate.waiting) == (0, 0)


async def test_gate_waiter_whose_client_left_gives_up_its_place_in_line():
    gate = GenerationGate(max_running=1, max_waiting=1, retry_after_s=1)
    held = await gate.acquire()
    client_left = asyncio.Event()

    async def abandoned() -> bool:
        return client_left.is_set()

    waiter = asyncio.create_task(gate.acquire(abandoned=abandoned))
    await asyncio.sleep(0)
    client_left.set()

    with pytest.raises(ClientClosedRequestError):
        await asyncio.wait_for(waiter, 2)
    assert gate.waiting == 0
    newcomer = asyncio.create_task(gate.acquire())  # the freed place is taken, not refused
    await asyncio.sleep(0)
    assert gate.waiting == 1
    held.release()
    (await newcomer).release()


async def test_gate_cancelled_waiter_leaves_the_line():
    gate = GenerationGate(max_running=1, max_waiting=1, retry_after_s=1)
    held = await gate.acquire()
    waiter = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert gate.waiting == 0
    held.release()
    assert gate.running == 0


async def test_gate_wait_idle_returns_when_the_last_generation_ends():
    gate = GenerationGate(max_running=1, max_waiting=1, retry_after_s=1)
    first = await gate.acquire()
    queued = asyncio.create_task(gate.acquire())
    idle = asyncio.create_task(gate.wait_idle())
    await asyncio.sleep(0)

    first.release()
    second = await queued
    await asyncio.sleep(0.01)
    assert not idle.done()  # the queued one runs now
    second.release()

    await asyncio.wait_for(idle, 1)


# -- through the server, in front of a model that holds its generation ---------------------------


def _assert_openai_overload(reply) -> None:
    assert reply.json()["error"]["type"] == "ServiceUnavailableError"
    assert reply.json()["error"]["code"] == 503
    assert "busy" in reply.json()["error"]["message"]


def _assert_runtime_overload(reply) -> None:
    # How the SageMaker runtime reports a throttle: boto3 raises ClientError code ServiceUnavailable.
    assert reply.headers["x-amzn-errortype"] == "ServiceUnavailable"
    assert "busy" in reply.json()["message"]


@pytest.mark.parametrize(
    ("path", "stream", "check"),
    [
        ("/invocations", False, _assert_openai_overload),
        ("/invocations", True, _assert_openai_overload),
        ("/v1/chat/completions", False, _assert_openai_overload),
        ("/endpoints/strata-chat/invocations", False, _assert_runtime_overload),
        ("/endpoints/strata-chat/invocations-response-stream", True, _assert_runtime_overload),
    ],
    ids=["invocations", "invocations-sse", "v1", "runtime", "runtime-stream"],
)
async def test_server_answers_503_with_retry_after_at_once_when_the_generation_queue_is_full(path, stream, check):
    # GIVEN a model busy with one generation, and room for one more in line
    backend = HeldChat()
    config = ServerConfig(max_queued_generations=1, retry_after_s=3)
    app = create_app(config, chat_backend=backend, embedding_backend=CountingEmbeddings())
    async with serving(app) as client:
        running = asyncio.create_task(client.post("/invocations", json={"messages": FRANCE}))
        assert await asyncio.to_thread(backend.started.wait, 5)

        # WHEN two more requests arrive
        body = {"messages": FRANCE, "stream": stream}
        contenders = [asyncio.create_task(client.post(path, json=body)) for _ in range(2)]
        done, waiting = await asyncio.wait(contenders, timeout=5, return_when=asyncio.FIRST_COMPLETED)

        # THEN one of them is refused while the model is still busy, and the other waits its turn
        assert (len(done), len(waiting)) == (1, 1)
        refused = done.pop().result()
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        check(refused)
        backend.release()
        assert (await running).status_code == 200
        assert (await waiting.pop()).status_code == 200
