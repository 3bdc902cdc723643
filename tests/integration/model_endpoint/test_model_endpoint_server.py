"""The model server against the real local models (SmolLM2-135M GGUF, all-MiniLM-L6-v2).

One server process for the whole module (`python -m model_endpoint`), reached over HTTP with
httpx, the openai SDK and boto3's `sagemaker-runtime` client, exactly as Strata reaches it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from model_endpoint import ChatBackend, EmbeddingBackend, ServerConfig, create_app
from model_endpoint.backends.base import ChatParams, GenerationEnd, GenerationEvent, TokenText, Usage

REPO_ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 120
FRANCE = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
STORY = [{"role": "user", "content": "Write a very long story about a dragon, at least 2000 words."}]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "model_endpoint", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_until_ready(url, process, log_path)
    return process, url


def _stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = _start_server(tmp_path_factory.mktemp("model_endpoint") / "server.log")
    try:
        yield url
    finally:
        _stop_server(process)


def _wait_until_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"model server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    pytest.fail(f"model server not ready after {READY_TIMEOUT_S}s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def runtime(server_url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=server_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, read_timeout=60),
    )


def parse_sse(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, checking its framing on the way."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), "SSE events end with a blank line"
    events = [event for event in text.split("\n\n") if event]
    assert all(event.startswith("data: ") for event in events), events
    return [event[len("data: ") :] for event in events]


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


# -- container contract: /ping and /invocations ------------------------------------------------


def test_ping_answers_200_when_models_are_loaded(http: httpx.Client):
    response = http.get("/ping")

    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_buffered_chat_answers_openai_completion_with_usage(http: httpx.Client):
    response = http.post("/invocations", json={"messages": FRANCE, "max_tokens": 24, "temperature": 0})

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert "Paris" in choice["message"]["content"]  # the chat template is applied correctly
    assert choice["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["prompt_tokens"] > 10
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_chat_stop_string_ends_the_answer_before_it(http: httpx.Client):
    body = http.post(
        "/invocations", json={"messages": FRANCE, "max_tokens": 24, "temperature": 0, "stop": ["Paris"]}
    ).json()

    assert "Paris" not in body["choices"][0]["message"]["content"]
    assert body["choices"][0]["finish_reason"] == "stop"


def test_streamed_chat_sends_role_first_then_tokens_as_made_then_finish_and_done(http: httpx.Client):
    request = {
        "messages": STORY,
        "max_tokens": 32,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    arrivals: list[tuple[float, str]] = []
    with http.stream("POST", "/invocations", json=request) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                arrivals.append((time.monotonic(), line))

    payloads = [line.removeprefix("data: ") for _, line in arrivals]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) >= 10  # one chunk per token, not one blob
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == "length" and finish["delta"] == {}
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage["completion_tokens"] == 32
    # Tokens are sent as they are generated, not buffered until the end.
    first_token_at = arrivals[1][0]
    done_at = arrivals[-1][0]
    assert done_at - first_token_at > 0.1


def _abandon_stream(client: httpx.Client, path: str, body: dict) -> None:
    with client.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        for _ in range(3):
            next(chunks)
    # leaving the block closes the connection mid-stream


def _abandon_buffered(client: httpx.Client, path: str, body: dict) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.post(path, json=body, timeout=1.0)


@pytest.mark.parametrize(
    ("path", "stream", "abandon"),
    [
        ("/invocations", True, _abandon_stream),
        ("/invocations", False, _abandon_buffered),
        ("/endpoints/strata-chat/invocations-response-stream", True, _abandon_stream),
    ],
    ids=["sse", "buffered", "runtime-eventstream"],
)
def test_generation_stops_when_the_client_disconnects(server_url: str, http: httpx.Client, path, stream, abandon):
    # GIVEN a request that would run for ~1500 tokens (tens of seconds on a CPU)
    body = {"messages": STORY, "max_tokens": 1500, "temperature": 0, "stream": stream}

    # WHEN its client goes away after the first tokens
    with httpx.Client(base_url=server_url, timeout=60) as client:
        abandon(client, path, body)

    # THEN the model is free again at once: the next request is not queued behind 1500 tokens
    started = time.monotonic()
    reply = http.post("/invocations", json={"messages": FRANCE, "max_tokens": 4})
    assert reply.status_code == 200
    assert time.monotonic() - started < 5


def test_generation_queued_behind_another_stops_when_its_client_left_before_the_first_token(
    server_url: str, http: httpx.Client
):
    long_stream = {"messages": STORY, "max_tokens": 1500, "temperature": 0, "stream": True}
    # GIVEN a long generation holding the model
    with (
        httpx.Client(base_url=server_url, timeout=60) as client,
        client.stream("POST", "/invocations", json=long_stream) as response,
    ):
        chunks = response.iter_bytes()  # keep a reference: a dropped iterator closes the response
        next(chunks)
        # WHEN a second stream queues behind it and its client gives up before any byte came
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{server_url}/invocations", json=long_stream, timeout=1.0)
    # (and the first client leaves too)

    # THEN the queued one does not run its 1500 tokens for nobody once the model frees up
    started = time.monotonic()
    assert http.post("/invocations", json={"messages": FRANCE, "max_tokens": 4}).status_code == 200
    assert time.monotonic() - started < 5


def test_streamed_stop_string_is_held_back_across_tokens(http: httpx.Client):
    # "capital of France" spans several tokens: none of them may leak before the match completes.
    request = {"messages": FRANCE, "max_tokens": 24, "temperature": 0, "stream": True, "stop": "capital of France"}

    payloads = parse_sse(http.post("/invocations", json=request).content)

    chunks = [json.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "capital" not in text
    assert text.strip() == "The"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_continue_final_message_goes_on_with_the_assistant_text_instead_of_starting_a_new_turn(http: httpx.Client):
    prefix = "The capital of France is"
    messages = [{"role": "user", "content": "What is the capital of France?"}, {"role": "assistant", "content": prefix}]
    request = {"messages": messages, "max_tokens": 12, "temperature": 0}

    continued = http.post("/invocations", json={**request, "continue_final_message": True}).json()
    new_turn = http.post("/invocations", json=request).json()

    text = continued["choices"][0]["message"]["content"]
    assert "Paris" in text
    assert text.startswith(" ")  # the next word of the open sentence, not a fresh message
    assert prefix not in text  # only the new text comes back
    assert "<|im_start|>" not in text and "assistant" not in text
    # The same conversation without continuation gets the open message closed and a new turn:
    # one more turn's markers in the prompt than the continuation has.
    assert new_turn["usage"]["prompt_tokens"] > continued["usage"]["prompt_tokens"]


def test_embeddings_are_384_dim_normalized_and_similar_texts_are_closer(http: httpx.Client):
    texts = [
        "The cat sat on the mat.",
        "A kitten was sitting on the rug.",
        "Quarterly revenue grew by eight percent.",
    ]

    response = http.post("/invocations", json={"inputs": texts})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    vectors = response.json()
    assert len(vectors) == 3
    assert all(len(v) == 384 for v in vectors)
    assert all(abs(math.hypot(*v) - 1.0) < 1e-3 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2


def test_concurrent_embedding_requests_get_the_vectors_each_would_get_alone(server_url: str, http: httpx.Client):
    # Coalesced into shared forward passes (padded to the longest text), each still gets its own vector.
    texts = [f"Sentence number {i} is {'quite ' * i}long." for i in range(12)]
    alone = [http.post("/invocations", json={"inputs": text}).json()[0] for text in texts]

    with httpx.Client(base_url=server_url, timeout=60) as client, ThreadPoolExecutor(len(texts)) as pool:
        together = list(pool.map(lambda text: client.post("/invocations", json={"inputs": text}).json()[0], texts))

    for single, merged in zip(alone, together, strict=True):
        assert max(abs(a - b) for a, b in zip(single, merged, strict=True)) < 1e-4


def test_embeddings_single_string_and_normalize_false(http: httpx.Client):
    vectors = http.post("/invocations", json={"inputs": "hello world", "normalize": False}).json()

    assert len(vectors) == 1 and len(vectors[0]) == 384
    assert abs(math.hypot(*vectors[0]) - 1.0) > 1e-2  # raw mean-pooled vector, as TEI answers


def test_long_input_is_truncated_by_default_and_rejected_when_truncate_is_false(http: httpx.Client):
    long_text = "word " * 600  # well over the model's 256 tokens

    assert http.post("/invocations", json={"inputs": long_text}).status_code == 200
    response = http.post("/invocations", json={"inputs": long_text, "truncate": False})

    assert response.status_code == 413
    assert response.json()["error_type"] == "Validation"
    assert "at most 256" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"prompt": "hi"}', 400, "`messages`"),
        (json.dumps({"messages": []}).encode(), 400, "messages"),
        (json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(), 400, "role"),
        (json.dumps({"messages": FRANCE, "temperature": 5}).encode(), 400, "temperature"),
        (json.dumps({"messages": FRANCE, "n": 2}).encode(), 400, "n:"),
        (json.dumps({"messages": FRANCE, "max_tokens": 4000}).encode(), 400, "maximum context length"),
        (json.dumps({"messages": [{"role": "user", "content": "hi " * 3000}]}).encode(), 400, "context"),
        (
            json.dumps({"messages": FRANCE, "continue_final_message": True}).encode(),
            400,
            "last message to be from the assistant",
        ),
        (
            json.dumps(
                {
                    "messages": [*FRANCE, {"role": "assistant", "content": "Paris"}],
                    "continue_final_message": True,
                    "add_generation_prompt": True,
                }
            ).encode(),
            400,
            "Cannot set both",
        ),
    ],
    ids=[
        "bad-json",
        "not-object",
        "unknown-shape",
        "no-messages",
        "bad-role",
        "bad-temperature",
        "n>1",
        "max-tokens-over-context",
        "prompt-over-context",
        "continue-non-assistant",
        "continue-and-generation-prompt",
    ],
)
def test_bad_chat_input_answers_400_with_openai_error(http: httpx.Client, body: bytes, status: int, fragment: str):
    response = http.post("/invocations", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == status
    error = response.json()["error"]
    assert fragment in error["message"]
    assert error["code"] == status


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"inputs": [1, 2]}, 422, "valid string"),
        ({"inputs": []}, 400, "cannot be empty"),
        ({"inputs": ["ok", ""]}, 400, "empty strings"),
        ({"inputs": ["x"] * 33}, 413, "batch size 33"),
        ({"inputs": "x", "normalize": "sometimes"}, 422, "normalize"),
    ],
    ids=["not-strings", "empty-batch", "empty-string", "batch-too-big", "bad-normalize"],
)
def test_bad_embedding_input_answers_4xx_with_tei_error(http: httpx.Client, body: dict, status: int, fragment: str):
    response = http.post("/invocations", json=body)

    assert response.status_code == status
    assert fragment in response.json()["error"]


def test_openai_sdk_streams_from_the_vllm_style_route(server_url: str):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server_url}/v1", api_key="unused")

    stream = client.chat.completions.create(model="default", messages=FRANCE, max_tokens=16, temperature=0, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)

    assert "Paris" in text


# -- SageMaker runtime API through boto3 -------------------------------------------------------


def test_boto3_invoke_endpoint_chat_returns_body_and_content_type(runtime):
    response = runtime.invoke_endpoint(
        EndpointName="strata-chat",
        ContentType="application/json",
        Accept="application/json",
        Body=json.dumps({"messages": FRANCE, "max_tokens": 16, "temperature": 0}),
    )

    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    body = json.loads(response["Body"].read())
    assert body["object"] == "chat.completion"
    assert body["usage"]["completion_tokens"] > 0


def test_boto3_invoke_endpoint_embeddings_without_content_type(runtime):
    # boto3 sends no Content-Type unless told; the server still reads the JSON body.
    response = runtime.invoke_endpoint(EndpointName="strata-embed", Body=json.dumps({"inputs": ["a", "b"]}))

    assert response["ContentType"] == "application/json"
    vectors = json.loads(response["Body"].read())
    assert [len(v) for v in vectors] == [384, 384]


def test_boto3_response_stream_yields_payload_parts_that_join_into_sse(runtime):
    response = runtime.invoke_endpoint_with_response_stream(
        EndpointName="strata-chat",
        ContentType="application/json",
        Accept="text/event-stream",
        Body=json.dumps({"messages": FRANCE, "max_tokens": 16, "temperature": 0, "stream": True}),
    )

    assert response["ContentType"].startswith("text/event-stream")
    events = list(response["Body"])
    assert len(events) >= 5
    assert all(set(event) == {"PayloadPart"} for event in events)
    payloads = parse_sse(b"".join(event["PayloadPart"]["Bytes"] for event in events))
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert "Paris" in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)


def test_boto3_buffered_invoke_of_a_streaming_body_returns_the_whole_sse(runtime):
    response = runtime.invoke_endpoint(
        EndpointName="strata-chat", Body=json.dumps({"messages": FRANCE, "max_tokens": 8, "stream": True})
    )

    assert response["ContentType"].startswith("text/event-stream")
    assert parse_sse(response["Body"].read())[-1] == "[DONE]"


def test_raw_response_stream_frames_pass_botocore_checks(http: httpx.Client):
    response = http.post("/endpoints/strata-embed/invocations-response-stream", json={"inputs": ["framed"]})

    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    assert response.headers["x-amzn-sagemaker-content-type"] == "application/json"
    buffer = EventStreamBuffer()
    buffer.add_data(response.content)
    messages = list(buffer)  # raises ChecksumMismatch on a bad prelude or message CRC
    assert [m.headers[":event-type"] for m in messages] == ["PayloadPart"]
    assert len(json.loads(b"".join(m.payload for m in messages))[0]) == 384


@pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "response-stream"])
def test_boto3_unknown_endpoint_raises_validation_error(runtime, streaming: bool):
    call = runtime.invoke_endpoint_with_response_stream if streaming else runtime.invoke_endpoint

    with pytest.raises(ClientError) as caught:
        call(EndpointName="no-such-endpoint", Body=b'{"inputs": "x"}')

    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationError"
    assert "no-such-endpoint" in error["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_boto3_bad_body_raises_model_error_with_the_container_message(runtime):
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="strata-chat", Body=json.dumps({"messages": FRANCE, "temperature": 9}))

    error = caught.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 400
    assert "temperature" in error["Error"]["Message"]


def test_boto3_body_for_the_other_model_raises_model_error(runtime):
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint_with_response_stream(EndpointName="strata-embed", Body=json.dumps({"messages": FRANCE}))

    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert "serves embeddings" in caught.value.response["Error"]["Message"]


# -- graceful shutdown, on a server of its own -----------------------------------------------------


def test_sigterm_lets_the_stream_in_flight_finish_then_the_server_exits(tmp_path: Path):
    process, url = _start_server(tmp_path / "server.log")
    try:
        body = {"messages": STORY, "max_tokens": 48, "temperature": 0, "stream": True}
        with (
            httpx.Client(base_url=url, timeout=60) as client,
            client.stream("POST", "/invocations", json=body) as response,
        ):
            lines = response.iter_lines()
            received = [next(lines)]  # the role chunk: the generation is running
            # WHEN the container is told to stop mid-stream
            process.send_signal(signal.SIGTERM)
            # THEN a new request is turned away (503 while draining, or no longer accepted at all)
            try:
                late = httpx.post(f"{url}/invocations", json={"messages": FRANCE, "max_tokens": 2}, timeout=5)
                assert late.status_code == 503
            except httpx.TransportError:
                pass
            # AND the stream in flight still runs to its end
            received += list(lines)

        payloads = [line.removeprefix("data: ") for line in received if line]
        assert payloads[-1] == "[DONE]"
        chunks = [json.loads(p) for p in payloads[:-1]]
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        assert sum(bool(c["choices"][0]["delta"].get("content")) for c in chunks) >= 20
        # uvicorn exits cleanly (it re-raises the captured SIGTERM once shut down)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "closing the models anyway" not in (tmp_path / "server.log").read_text()
    finally:
        if process.poll() is None:
            _stop_server(process)


# -- readiness, with backends whose loading the test controls -----------------------------------


class _GatedChat(ChatBackend):
    def __init__(self, gate: threading.Event) -> None:
        self._gate = gate

    @property
    def model_name(self) -> str:
        return "gated"

    def load(self) -> None:
        self._gate.wait(timeout=10)

    def generate(self, params: ChatParams, cancelled: threading.Event) -> Iterator[GenerationEvent]:
        yield TokenText("ok")
        yield GenerationEnd("stop", Usage(1, 1))


class _InstantEmbeddings(EmbeddingBackend):
    model_name = "instant"
    dimensions = 2
    max_input_tokens = 8

    def load(self) -> None:
        pass

    def embed(self, texts, *, normalize, truncate, truncate_left=False) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]


def test_ping_is_503_until_models_load_and_requests_wait_for_it():
    gate = threading.Event()
    app = create_app(ServerConfig(), chat_backend=_GatedChat(gate), embedding_backend=_InstantEmbeddings())
    with TestClient(app) as client:
        assert client.get("/ping").status_code == 503
        assert client.post("/invocations", json={"inputs": "x"}).status_code == 503
        not_ready = client.post("/endpoints/strata-chat/invocations", json={"messages": FRANCE})
        assert not_ready.status_code == 503
        assert not_ready.headers["x-amzn-errortype"] == "ServiceUnavailable"

        gate.set()
        deadline = time.monotonic() + 5
        while client.get("/ping").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.02)

        assert client.get("/ping").status_code == 200
        reply = client.post("/invocations", json={"messages": FRANCE})
        assert reply.json()["choices"][0]["message"]["content"] == "ok"


def test_server_config_reads_strata_env_and_explicit_values_win():
    env = {
        "STRATA_CHAT_ENDPOINT_NAME": "chat-x",
        "STRATA_EMBEDDING_MODEL_PATH": "/models/minilm",
        "STRATA_LLAMA_N_CTX": "4096",
        "SAGEMAKER_BIND_TO_PORT": "9000",
        "PORT": "7000",
    }

    config = ServerConfig.from_env(env, n_ctx=1024, host=None)

    assert config.chat_endpoint == "chat-x"
    assert config.embedding_model_path == Path("/models/minilm")
    assert config.port == 9000  # SageMaker's variable wins over the generic PORT
    assert config.n_ctx == 1024  # an explicit value (CLI flag) wins over the environment
    assert config.host == "127.0.0.1"  # None means "not given"
    with pytest.raises(ValueError, match="STRATA_LLAMA_N_THREADS"):
        ServerConfig.from_env({"STRATA_LLAMA_N_THREADS": "many"})
