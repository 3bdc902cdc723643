"""The Bedrock provider against botocore's own parsing: a real ``bedrock-runtime`` client talks to a
local HTTP server that answers Converse with JSON and ConverseStream with AWS event-stream frames."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config

from model_endpoint.eventstream import encode_message
from strata.inference.bedrock import PLACEHOLDER_USER_TURN, BedrockChatProvider, converse_arguments
from strata.inference.exceptions import ModelRequestError, ModelTimeoutError, ModelUnavailableError
from strata.inference.types import ChatRequest, Finish, Message, TextDelta, Usage

MODEL_ID = "anthropic.claude-3-haiku-20240307-v1:0"
TARGET = "claude"


# -- the fake Bedrock runtime ------------------------------------------------------------------------


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":message-type": "event", ":content-type": "application/json"}
    return encode_message(headers, json.dumps(payload).encode())


def exception(exception_type: str, message: str) -> bytes:
    headers = {":exception-type": exception_type, ":message-type": "exception", ":content-type": "application/json"}
    return encode_message(headers, json.dumps({"message": message}).encode())


def delta(text: str) -> bytes:
    return event("contentBlockDelta", {"delta": {"text": text}, "contentBlockIndex": 0})


def answer_frames(*texts: str, stop_reason: str = "end_turn", usage: tuple[int, int] = (12, 3)) -> list[bytes]:
    return [
        event("messageStart", {"role": "assistant"}),
        *(delta(text) for text in texts),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop_reason}),
        event(
            "metadata",
            {
                "usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": sum(usage)},
                "metrics": {"latencyMs": 42},
            },
        ),
    ]


@dataclass
class Reply:
    """What the server answers next: JSON (``status``, ``body``) or event-stream ``frames``."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    frames: list[bytes] | None = None
    frame_delay_s: float = 0.0
    delay_s: float = 0.0  # before the status line


@dataclass
class Received:
    path: str
    body: dict[str, Any]


class FakeBedrock:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.received: list[Received] = []
        self.frames_sent = 0
        self.disconnected = threading.Event()
        self.stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.received.append(Received(urllib.parse.unquote(self.path), json.loads(body or b"{}")))
                reply = fake.replies.pop(0) if fake.replies else Reply(status=500, body={"message": "no reply"})
                if fake.stopping.wait(reply.delay_s):
                    return
                if reply.frames is None:
                    self._json(reply)
                else:
                    self._stream(reply)

            def _json(self, reply: Reply) -> None:
                data = json.dumps(reply.body or {}).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for frame in reply.frames or ():
                        self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                        self.wfile.flush()
                        fake.frames_sent += 1
                        if fake.stopping.wait(reply.frame_delay_s):
                            return
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except OSError:  # the client closed the connection
                    fake.disconnected.set()
                    self.close_connection = True

        return Handler


@pytest.fixture
def bedrock() -> Iterator[FakeBedrock]:
    fake = FakeBedrock()
    fake.start()
    yield fake
    fake.stop()


def make_client(url: str, *, read_timeout: float = 5.0) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, read_timeout=read_timeout, connect_timeout=1),
    )


@pytest.fixture
def provider(bedrock: FakeBedrock) -> BedrockChatProvider:
    return BedrockChatProvider(TARGET, client=make_client(bedrock.url), model_id=MODEL_ID)


def ask(text: str = "What is the capital of France?", **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),), max_tokens=kwargs.pop("max_tokens", 64), **kwargs)


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# -- streaming ---------------------------------------------------------------------------------------


def test_stream_yields_text_deltas_then_usage_then_finish(bedrock: FakeBedrock, provider: BedrockChatProvider):
    bedrock.replies.append(Reply(frames=answer_frames("The capital", " of France", " is Paris.", usage=(14, 7))))

    events = list(provider.stream(ask()))

    assert events == [
        TextDelta("The capital"),
        TextDelta(" of France"),
        TextDelta(" is Paris."),
        Usage(prompt_tokens=14, completion_tokens=7),
        Finish("stop"),
    ]
    (received,) = bedrock.received
    assert received.path == f"/model/{MODEL_ID}/converse-stream"


def test_stream_sends_nothing_before_the_first_next(bedrock: FakeBedrock, provider: BedrockChatProvider):
    bedrock.replies.append(Reply(frames=answer_frames("hi")))

    events = provider.stream(ask())
    assert bedrock.received == []

    assert next(events) == TextDelta("hi")
    assert len(bedrock.received) == 1


def test_request_body_carries_system_merged_turns_prefill_and_inference_config(
    bedrock: FakeBedrock, provider: BedrockChatProvider
):
    bedrock.replies.append(Reply(frames=answer_frames(" Paris.")))
    request = ChatRequest(
        messages=(
            Message("system", "You answer briefly."),
            Message("user", "Context: France is in Europe."),
            Message("user", "What is the capital of France?"),
            Message("system", "Cite your sources."),
        ),
        max_tokens=128,
        temperature=0.3,
        top_p=0.9,
        stop=("\n\nHuman:", "</answer>"),
        seed=7,
        prefix="The capital is ",
    )

    list(provider.stream(request))

    (received,) = bedrock.received
    assert received.body == {
        "system": [{"text": "You answer briefly."}, {"text": "Cite your sources."}],
        "messages": [
            {"role": "user", "content": [{"text": "Context: France is in Europe.\n\nWhat is the capital of France?"}]},
            {"role": "assistant", "content": [{"text": "The capital is"}]},  # no trailing whitespace
        ],
        "inferenceConfig": {
            "maxTokens": 128,
            "temperature": 0.3,
            "topP": 0.9,
            "stopSequences": ["\n\nHuman:", "</answer>"],
        },
    }


def test_conversation_starting_with_the_assistant_gets_a_user_turn_first():
    request = ChatRequest(
        messages=(
            Message("assistant", "Hello! How can I help?"),
            Message("user", ""),  # blank: dropped
            Message("assistant", "Ask me about France."),
            Message("user", "Capital?"),
            Message("tool", '{"capital": "Paris"}'),
        ),
        max_tokens=8,
    )

    arguments = converse_arguments(request, MODEL_ID)

    assert arguments["messages"] == [
        {"role": "user", "content": [{"text": PLACEHOLDER_USER_TURN}]},
        {"role": "assistant", "content": [{"text": "Hello! How can I help?\n\nAsk me about France."}]},
        {"role": "user", "content": [{"text": 'Capital?\n\n{"capital": "Paris"}'}]},
    ]
    assert "system" not in arguments


def test_parameters_add_converse_arguments_and_default_inference_config():
    parameters = {
        "inferenceConfig": {"temperature": 0.0, "maxTokens": 4096},
        "additionalModelRequestFields": {"top_k": 50},
    }

    arguments = converse_arguments(ask(max_tokens=32, temperature=0.5), MODEL_ID, parameters)

    assert arguments["inferenceConfig"] == {"temperature": 0.5, "maxTokens": 32}  # the request wins
    assert arguments["additionalModelRequestFields"] == {"top_k": 50}
    assert parameters["inferenceConfig"] == {"temperature": 0.0, "maxTokens": 4096}  # not consumed


@pytest.mark.parametrize(
    ("prefix", "continuation", "expected"),
    [
        ("The capital is ", [" Paris."], "Paris."),  # the model repeats the stripped space
        ("The capital is ", [" ", " ", "Paris."], " Paris."),  # a second space was meant: kept
        ("The capital is ", ["Paris."], "Paris."),  # no separator from the model: the client has one
        ("First point.\n", ["\n", "\nSecond", " point."], "\nSecond point."),  # the paragraph completes
        ("The capital is", [" Paris."], " Paris."),  # nothing stripped: nothing changed
        ("Done. ", [" "], ""),  # only whitespace came back
    ],
)
def test_prefix_trailing_whitespace_is_not_prefilled_and_not_repeated(
    bedrock: FakeBedrock, provider: BedrockChatProvider, prefix: str, continuation: list[str], expected: str
):
    bedrock.replies.append(Reply(frames=answer_frames(*continuation)))

    events = list(provider.stream(ask().continued(prefix)))

    assert prefix + text_of(events) == prefix + expected
    assert all(e.text for e in events if isinstance(e, TextDelta))  # no empty deltas
    assert bedrock.received[0].body["messages"][-1] == {"role": "assistant", "content": [{"text": prefix.rstrip()}]}


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("content_filtered", "content_filter"),
        ("guardrail_intervened", "content_filter"),
        ("tool_use", "tool_calls"),
    ],
)
def test_stop_reason_maps_to_finish(bedrock: FakeBedrock, provider: BedrockChatProvider, stop_reason, finish):
    bedrock.replies.append(Reply(frames=answer_frames("x", stop_reason=stop_reason)))

    assert list(provider.stream(ask()))[-1] == Finish(finish)


def test_stream_closed_when_the_consumer_stops_early(bedrock: FakeBedrock, provider: BedrockChatProvider):
    frames = [event("messageStart", {"role": "assistant"}), *(delta(f"w{i} ") for i in range(500))]
    bedrock.replies.append(Reply(frames=frames, frame_delay_s=0.01))

    events = provider.stream(ask())
    assert next(events) == TextDelta("w0 ")
    events.close()

    assert bedrock.disconnected.wait(5), "the server never saw the connection close"
    assert bedrock.frames_sent < len(frames)


@pytest.mark.parametrize(
    ("exception_type", "error_type", "fragment"),
    [
        ("throttlingException", ModelUnavailableError, "ThrottlingException"),
        ("modelStreamErrorException", ModelUnavailableError, "ModelStreamErrorException"),
        ("internalServerException", ModelUnavailableError, "InternalServerException"),
        ("serviceUnavailableException", ModelUnavailableError, "ServiceUnavailableException"),
        ("validationException", ModelRequestError, "refused the request"),
    ],
)
def test_in_stream_exception_raises_after_the_text_already_sent(
    bedrock: FakeBedrock, provider: BedrockChatProvider, exception_type: str, error_type: type, fragment: str
):
    frames = [event("messageStart", {"role": "assistant"}), delta("Partial"), exception(exception_type, "it broke")]
    bedrock.replies.append(Reply(frames=frames))

    events = provider.stream(ask())
    assert next(events) == TextDelta("Partial")
    with pytest.raises(error_type) as info:
        next(events)

    assert type(info.value) is error_type
    assert info.value.target == TARGET
    assert fragment in str(info.value)
    assert "it broke" in str(info.value)


def test_stream_ending_without_message_stop_is_broken(bedrock: FakeBedrock, provider: BedrockChatProvider):
    bedrock.replies.append(Reply(frames=[event("messageStart", {"role": "assistant"}), delta("Half an")]))

    events = provider.stream(ask())
    assert next(events) == TextDelta("Half an")
    with pytest.raises(ModelUnavailableError, match="without a stop reason") as info:
        next(events)
    assert info.value.target == TARGET


def test_stream_stalling_past_the_read_timeout_is_a_timeout(bedrock: FakeBedrock):
    provider = BedrockChatProvider(TARGET, client=make_client(bedrock.url, read_timeout=0.3), model_id=MODEL_ID)
    # The first write carries two messages, then the server stalls.
    frames = [event("messageStart", {"role": "assistant"}) + delta("Slow"), *answer_frames(" answer")[1:]]
    bedrock.replies.append(Reply(frames=frames, frame_delay_s=2.0))

    events = provider.stream(ask())
    assert next(events) == TextDelta("Slow")
    with pytest.raises(ModelTimeoutError) as info:
        next(events)
    assert info.value.target == TARGET


# -- errors before the stream / buffered -------------------------------------------------------------


def error_reply(status: int, code: str, message: str, **headers: str) -> Reply:
    return Reply(status=status, body={"message": message}, headers={"x-amzn-ErrorType": code, **headers})


@pytest.mark.parametrize("call", ["stream", "complete"])
@pytest.mark.parametrize(
    ("status", "code", "error_type", "fragment"),
    [
        (400, "ValidationException", ModelRequestError, "Input is too long"),
        (429, "ThrottlingException", ModelUnavailableError, "ThrottlingException"),
        (503, "ServiceUnavailableException", ModelUnavailableError, "ServiceUnavailableException"),
        (500, "InternalServerException", ModelUnavailableError, "InternalServerException"),
        (429, "ModelNotReadyException", ModelUnavailableError, "ModelNotReadyException"),
        (424, "ModelErrorException", ModelUnavailableError, "ModelErrorException"),
        (408, "ModelTimeoutException", ModelTimeoutError, "timed out"),
        (403, "AccessDeniedException", ModelUnavailableError, "Enable access to the model"),
        (404, "ResourceNotFoundException", ModelUnavailableError, "Check the model id"),
    ],
)
def test_error_responses_map_to_inference_errors(
    bedrock: FakeBedrock,
    provider: BedrockChatProvider,
    call: str,
    status: int,
    code: str,
    error_type: type,
    fragment: str,
):
    bedrock.replies.append(error_reply(status, code, "Input is too long" if status == 400 else "nope"))
    run: Callable[[], Any] = (
        (lambda: next(provider.stream(ask()))) if call == "stream" else (lambda: provider.complete(ask()))
    )

    with pytest.raises(error_type) as info:
        run()

    assert type(info.value) is error_type
    assert info.value.target == TARGET
    assert fragment in str(info.value)
    if code in {"AccessDeniedException", "ResourceNotFoundException"}:
        assert MODEL_ID in str(info.value) and TARGET in str(info.value)


@pytest.mark.parametrize("call", ["stream", "complete"])
def test_throttling_carries_retry_after(bedrock: FakeBedrock, provider: BedrockChatProvider, call: str):
    bedrock.replies.append(error_reply(429, "ThrottlingException", "Too many requests", **{"Retry-After": "7"}))

    with pytest.raises(ModelUnavailableError) as info:
        next(provider.stream(ask())) if call == "stream" else provider.complete(ask())

    assert info.value.retry_after == 7.0


def test_throttling_without_retry_after_has_none(bedrock: FakeBedrock, provider: BedrockChatProvider):
    bedrock.replies.append(error_reply(429, "ThrottlingException", "Too many requests"))

    with pytest.raises(ModelUnavailableError) as info:
        provider.complete(ask())

    assert info.value.retry_after is None


def test_read_timeout_is_a_model_timeout(bedrock: FakeBedrock):
    provider = BedrockChatProvider(TARGET, client=make_client(bedrock.url, read_timeout=0.3), model_id=MODEL_ID)
    bedrock.replies.append(Reply(body={}, delay_s=2.0))

    started = time.monotonic()
    with pytest.raises(ModelTimeoutError) as info:
        provider.complete(ask())

    assert time.monotonic() - started < 1.5
    assert info.value.target == TARGET


def test_unreachable_endpoint_is_unavailable():
    fake = FakeBedrock()  # bound but never serving, then closed: nothing listens on the port
    url = fake.url
    fake._server.server_close()
    provider = BedrockChatProvider(TARGET, client=make_client(url), model_id=MODEL_ID)

    with pytest.raises(ModelUnavailableError, match="could not be reached") as info:
        next(provider.stream(ask()))

    assert type(info.value) is ModelUnavailableError
    assert info.value.target == TARGET


def test_invalid_parameters_are_the_callers_error(bedrock: FakeBedrock, provider: BedrockChatProvider):
    with pytest.raises(ModelRequestError) as info:
        provider.complete(ask(max_tokens=0))  # botocore's own validation: maxTokens >= 1

    assert info.value.target == TARGET
    assert bedrock.received == []


# -- buffered ----------------------------------------------------------------------------------------


def test_complete_returns_text_finish_and_usage(bedrock: FakeBedrock, provider: BedrockChatProvider):
    bedrock.replies.append(
        Reply(
            body={
                "output": {"message": {"role": "assistant", "content": [{"text": "Paris"}, {"text": " it is."}]}},
                "stopReason": "max_tokens",
                "usage": {"inputTokens": 20, "outputTokens": 4, "totalTokens": 24},
                "metrics": {"latencyMs": 10},
            }
        )
    )

    completion = provider.complete(ask())

    assert completion.text == "Paris it is."
    assert completion.finish_reason == "length"
    assert completion.usage == Usage(20, 4)
    assert completion.target == TARGET
    (received,) = bedrock.received
    assert received.path == f"/model/{MODEL_ID}/converse"
    assert received.body["messages"] == [{"role": "user", "content": [{"text": "What is the capital of France?"}]}]


def test_complete_continuing_a_prefix_joins_its_whitespace(bedrock: FakeBedrock, provider: BedrockChatProvider):
    bedrock.replies.append(
        Reply(
            body={
                "output": {"message": {"role": "assistant", "content": [{"text": " Paris."}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 20, "outputTokens": 2, "totalTokens": 22},
                "metrics": {"latencyMs": 10},
            }
        )
    )

    completion = provider.complete(ask().continued("The capital is "))

    assert completion.text == "Paris."
    assert bedrock.received[0].body["messages"][-1]["content"] == [{"text": "The capital is"}]
