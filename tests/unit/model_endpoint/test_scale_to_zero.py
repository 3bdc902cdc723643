"""Scale to zero: the chat model sleeps when idle and is refused while it wakes, as SageMaker refuses
a call to an inference component with no copy, and Strata's provider reads that as "waking"."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
import uvicorn
from botocore.config import Config
from botocore.exceptions import ClientError
from fastapi import FastAPI
from fastapi.testclient import TestClient

from model_endpoint import ServerConfig, create_app
from model_endpoint.scale_to_zero import NO_CAPACITY_MESSAGE, Capacity, ScaleToZero
from strata.inference import ChatRequest, Message, ModelWakingError, SageMakerChatProvider, TextDelta
from tests.unit.model_endpoint.fakes import FRANCE, CountingEmbeddings, HeldChat

IDLE_S = 60.0
WAKE_S = 20.0


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def capacity(clock: FakeClock) -> ScaleToZero:
    return ScaleToZero(idle_s=IDLE_S, wake_s=WAKE_S, clock=clock)


# -- the state machine ---------------------------------------------------------------------------


def test_it_starts_asleep_and_the_first_call_is_refused_and_starts_the_wake(capacity: ScaleToZero) -> None:
    assert capacity.capacity is Capacity.ASLEEP

    assert capacity.admit() is False

    assert capacity.capacity is Capacity.WAKING


def test_every_call_during_the_wake_is_refused_and_does_not_extend_it(capacity: ScaleToZero, clock: FakeClock) -> None:
    capacity.admit()
    for _ in range(3):
        clock.advance(WAKE_S / 4)
        assert capacity.admit() is False
    clock.advance(WAKE_S / 4)  # exactly wake_s after the first call

    assert capacity.capacity is Capacity.AWAKE
    assert capacity.admit() is True


def test_each_served_call_keeps_it_awake_for_another_idle_period(capacity: ScaleToZero, clock: FakeClock) -> None:
    capacity.admit()
    clock.advance(WAKE_S)
    for _ in range(5):  # five minutes of calls, each under a minute apart
        assert capacity.admit() is True
        clock.advance(IDLE_S - 1)

    assert capacity.capacity is Capacity.AWAKE
    clock.advance(1)  # idle_s since the last call
    assert capacity.capacity is Capacity.ASLEEP


def test_it_falls_asleep_again_after_idle_s_and_the_next_call_wakes_it_again(
    capacity: ScaleToZero, clock: FakeClock
) -> None:
    capacity.admit()
    clock.advance(WAKE_S)
    assert capacity.admit() is True
    clock.advance(IDLE_S)

    assert capacity.admit() is False
    assert capacity.capacity is Capacity.WAKING
    clock.advance(WAKE_S)
    assert capacity.admit() is True


def test_a_copy_nobody_calls_after_its_wake_sleeps_idle_s_after_the_wake_ended(
    capacity: ScaleToZero, clock: FakeClock
) -> None:
    capacity.admit()
    clock.advance(WAKE_S + IDLE_S - 1)
    assert capacity.capacity is Capacity.AWAKE
    clock.advance(1)
    assert capacity.capacity is Capacity.ASLEEP


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [({"idle_s": 0, "wake_s": 1}, "idle_s"), ({"idle_s": 1, "wake_s": -1}, "wake_s")],
)
def test_nonsense_durations_fail_at_start_naming_the_setting(kwargs: dict[str, float], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        ScaleToZero(**kwargs)


def test_the_server_config_checks_the_durations_and_keeps_the_chat_model_always_on_by_default() -> None:
    assert ServerConfig().scale_to_zero_after_s is None
    with pytest.raises(ValueError, match="scale_to_zero_after_s"):
        ServerConfig(scale_to_zero_after_s=0)
    with pytest.raises(ValueError, match="wake_s"):
        ServerConfig(scale_to_zero_after_s=10, wake_s=-1)


# -- the model server --------------------------------------------------------------------------------


def _app(clock: FakeClock, chat: HeldChat, embeddings: CountingEmbeddings | None = None) -> FastAPI:
    config = ServerConfig(scale_to_zero_after_s=IDLE_S, wake_s=WAKE_S)
    app = create_app(config, chat_backend=chat, embedding_backend=embeddings or CountingEmbeddings())
    assert app.state.server.chat_capacity is not None  # built from the config
    app.state.server.chat_capacity = ScaleToZero(idle_s=IDLE_S, wake_s=WAKE_S, clock=clock)
    return app


@pytest.fixture
def chat() -> HeldChat:
    return HeldChat(held=False)


@pytest.fixture
def client(clock: FakeClock, chat: HeldChat) -> Iterator[TestClient]:
    with TestClient(_app(clock, chat)) as test_client:
        yield test_client


CHAT = {"messages": FRANCE}


def test_a_sleeping_chat_model_is_refused_as_sagemaker_refuses_a_component_with_no_copy(
    client: TestClient, chat: HeldChat
) -> None:
    for path in ("invocations", "invocations-response-stream"):
        response = client.post(f"/endpoints/strata-chat/{path}", json=CHAT)

        assert response.status_code == 400
        assert response.headers["x-amzn-errortype"] == "ValidationError"
        assert response.headers["x-amzn-requestid"]
        assert response.json() == {"message": NO_CAPACITY_MESSAGE}
    assert chat.params == []  # the container never saw the calls


def test_the_endpoint_stays_healthy_and_serves_embeddings_while_the_chat_model_sleeps(client: TestClient) -> None:
    assert client.post("/endpoints/strata-chat/invocations", json=CHAT).status_code == 400

    ping = client.get("/ping")
    embed = client.post("/endpoints/strata-embed/invocations", json={"inputs": "hello"})

    assert (ping.status_code, ping.json()) == (200, {"status": "healthy"})
    assert (embed.status_code, embed.json()) == (200, [[5.0, 1.0]])


def test_after_the_wake_chat_is_served_and_a_long_silence_puts_it_back_to_sleep(
    client: TestClient, clock: FakeClock
) -> None:
    assert client.post("/endpoints/strata-chat/invocations", json=CHAT).status_code == 400
    clock.advance(WAKE_S - 1)
    assert client.post("/endpoints/strata-chat/invocations", json=CHAT).status_code == 400
    clock.advance(1)

    served = client.post("/endpoints/strata-chat/invocations", json=CHAT)

    assert served.status_code == 200
    assert served.json()["choices"][0]["message"]["content"] == "one two three"
    clock.advance(IDLE_S)
    assert client.post("/endpoints/strata-chat/invocations", json=CHAT).status_code == 400


def test_an_inference_component_name_selects_the_sleeping_model_too(client: TestClient) -> None:
    response = client.post(
        "/endpoints/some-endpoint/invocations",
        json=CHAT,
        headers={"X-Amzn-SageMaker-Inference-Component": "strata-chat"},
    )

    assert (response.status_code, response.json()) == (400, {"message": NO_CAPACITY_MESSAGE})


def test_the_server_cli_and_strata_dev_pass_the_two_durations_to_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from model_endpoint import __main__ as server_main
    from strata_local import processes

    args = server_main._parse_args(["--scale-to-zero", "300", "--wake-s", "45"])
    assert (args.scale_to_zero, args.wake_s) == (300.0, 45.0)
    assert server_main._parse_args([]).scale_to_zero is None

    commands: list[list[str]] = []
    monkeypatch.setattr(processes.subprocess, "Popen", lambda command, **_: commands.append(command))
    for extra in ({}, {"scale_to_zero_after_s": 300.0, "wake_s": 45.0}):
        processes.start_model_server(
            host="127.0.0.1", port=1, endpoints=("c", "e"), log_path=Path("/dev/null"), **extra
        )
    assert "--scale-to-zero" not in commands[0]
    assert commands[1][-4:] == ["--scale-to-zero", "300.0", "--wake-s", "45.0"]


# -- over HTTP, through boto3 and Strata's provider ------------------------------------------------


class ThreadedServer:
    """The app under uvicorn on a free port, in a thread, so boto3 reaches it over real HTTP."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (self._server.started and self._ping_ok()):
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.__exit__()
                raise TimeoutError("the model server did not start")
            time.sleep(0.02)
        return self

    def _ping_ok(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def __exit__(self, *_: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


def _runtime_client(url: str) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=10, connect_timeout=2),
    )


@pytest.fixture
def server_url(clock: FakeClock, chat: HeldChat) -> Iterator[str]:
    with ThreadedServer(_app(clock, chat)) as server:
        yield server.url


def test_boto3_raises_the_validation_error_sagemaker_raises_for_a_component_with_no_copy(server_url: str) -> None:
    runtime = _runtime_client(server_url)

    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="strata-chat", ContentType="application/json", Body=json.dumps(CHAT))

    response = raised.value.response
    assert response["Error"] == {"Code": "ValidationError", "Message": NO_CAPACITY_MESSAGE}
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_strata_provider_says_the_model_is_waking_then_streams_once_it_is_up(server_url: str, clock: FakeClock) -> None:
    provider = SageMakerChatProvider("default", client=_runtime_client(server_url), endpoint="strata-chat")
    request = ChatRequest(messages=(Message("user", "hi"),), max_tokens=20)

    with pytest.raises(ModelWakingError) as raised:
        list(provider.stream(request))
    with pytest.raises(ModelWakingError):
        provider.complete(request)  # still waking
    clock.advance(WAKE_S)
    events = list(provider.stream(request))

    assert raised.value.target == "default"
    assert raised.value.retry_after
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "one two three"
