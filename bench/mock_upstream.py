"""A flaky OpenAI-compatible upstream for the tests and the benchmarks (not product code).

It answers ``POST /v1/chat/completions`` (buffered JSON, or SSE in OpenAI's chunk shape when ``stream`` is
true, ``data: [DONE]`` at the end, a usage chunk when ``stream_options.include_usage``), ``GET /v1/models`` and
``GET /health``. The answer is deterministic: content chunk ``i`` carries ``chunk_text.format(i=i)``, so by
default "tok0 ", "tok1 ", ... "tok19 ". A request whose last message is an assistant prefix and that sets
vLLM's ``continue_final_message: true`` gets the rest of that answer, so a continuation after a cut stream
completes it exactly.

Faults are drawn per completion request with the configured probabilities (one draw, so the rates add up):
an error status before the first byte (``error_status``, with ``Retry-After`` when ``retry_after_s`` is set),
a hang before the first byte (``hang_s``, longer than any client timeout), a stream cut after ``cut_after``
content chunks (the connection closed without the terminating chunk and without ``[DONE]``; a buffered reply is
cut half way through its body) and a malformed chunk (invalid JSON in the data line that should carry the middle
chunk; a buffered reply is invalid JSON). ``seed`` makes the draws reproducible.

It is a raw asyncio server (httptools parses HTTP/1.1, keep-alive; uvloop when installed) so that it is not the
bottleneck when a gateway in front of it is measured. While it runs:

- ``GET /_control`` returns the behaviour; ``POST /_control`` with a partial JSON object changes it
  (``"reset_stats": true`` also zeroes the counters);
- ``GET /_stats`` returns the counters of what it did; ``GET /_stats?tags=1`` adds, for every request whose
  body carried a tag (``[req:ID]`` by default, see ``tag_pattern``), the outcomes it met, in order.

Run it on its own, from a benchmark in a subprocess, or from pytest in a thread::

    .venv/bin/python -m bench.mock_upstream --port 8001 --chunks 20 --error-rate 0.1 --seed 1

    with spawn_mock(Behaviour(chunks=20)) as mock:  # a subprocess, for benchmarks
        httpx.post(f"{mock.base_url}/chat/completions", json=...)

    with MockUpstream(Behaviour(hang_rate=1.0)) as mock:  # a thread, on a free port
        mock.configure(hang_rate=0.0)
        mock.stats()["counters"]["hangs"]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import dataclasses
import json
import logging
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httptools
import httpx

try:  # the bench is faster with it; plain asyncio works too
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

T = TypeVar("T")
logger = logging.getLogger(__name__)
DONE_EVENT = b"data: [DONE]\n\n"
READY_LINE = "mock upstream listening on "
COUNTERS = (
    "requests",
    "completions",
    "streams",
    "buffered",
    "ok",
    "errors",
    "hangs",
    "cuts",
    "malformed",
    "continuations",
    "continuation_mismatches",
    "chunks",
    "models",
    "health",
    "control",
    "bad_requests",
    "not_found",
    "disconnects",
)


@dataclass(frozen=True)
class Behaviour:
    """What the mock does; every field can be changed while it runs (``POST /_control``)."""

    chunks: int = 20
    chunk_text: str = "tok{i} "
    first_byte_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    retry_after_s: float | None = None
    hang_rate: float = 0.0
    hang_s: float = 3600.0
    cut_rate: float = 0.0
    cut_after: int = 5
    malformed_rate: float = 0.0
    seed: int | None = None
    models: tuple[str, ...] = ("mock",)
    tag_pattern: str = r"\[req:([A-Za-z0-9_.:-]+)\]"

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.hang_rate, self.cut_rate, self.malformed_rate)
        if any(not 0 <= rate <= 1 for rate in rates) or sum(rates) > 1 + 1e-9:
            raise ValueError(f"fault rates must lie in [0, 1] and add up to at most 1 (given {rates})")
        if self.chunks < 0 or self.cut_after < 0:
            raise ValueError("chunks and cut_after must not be negative")
        if not 400 <= self.error_status <= 599:
            raise ValueError(f"error_status must be an HTTP error status (given {self.error_status})")
        object.__setattr__(self, "models", tuple(self.models))
        re.compile(self.tag_pattern)
        self.chunk_text.format(i=0)

    def updated(self, changes: dict[str, Any]) -> Behaviour:
        unknown = set(changes) - {field.name for field in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown behaviour fields: {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "models": list(self.models)}

    def answer(self) -> list[str]:
        """The deterministic answer, chunk by chunk."""
        return [self.chunk_text.format(i=i) for i in range(self.chunks)]


class Fault(Enum):
    NONE = "ok"
    ERROR = "error"
    HANG = "hang"
    CUT = "cut"
    MALFORMED = "malformed"


_FAULT_COUNTER = {
    Fault.NONE: "ok",
    Fault.ERROR: "errors",
    Fault.HANG: "hangs",
    Fault.CUT: "cuts",
    Fault.MALFORMED: "malformed",
}


class BadRequest(Exception):
    pass


class ClientGone(Exception):
    """The client closed the connection while the mock was still answering."""


class MockState:
    """The behaviour, the random draws and the counters; used on the server's event loop only."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.rng = random.Random(behaviour.seed)
        self.tag_re = re.compile(behaviour.tag_pattern) if behaviour.tag_pattern else None
        self.counters: collections.Counter[str] = collections.Counter({name: 0 for name in COUNTERS})
        self.tags: dict[str, list[str]] = {}
        self.completion_ids = 0

    def configure(self, changes: dict[str, Any]) -> Behaviour:
        changes = dict(changes)
        reset = bool(changes.pop("reset_stats", False))
        behaviour = self.behaviour.updated(changes)
        if "seed" in changes:
            self.rng = random.Random(behaviour.seed)
        if "tag_pattern" in changes:
            self.tag_re = re.compile(behaviour.tag_pattern) if behaviour.tag_pattern else None
        self.behaviour = behaviour
        if reset:
            self.reset_stats()
        return behaviour

    def reset_stats(self) -> None:
        self.counters = collections.Counter({name: 0 for name in COUNTERS})
        self.tags = {}

    def stats(self, *, tags: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {"counters": dict(self.counters), "behaviour": self.behaviour.as_dict()}
        if tags:
            result["tags"] = {tag: list(outcomes) for tag, outcomes in self.tags.items()}
        return result

    def draw(self) -> Fault:
        b = self.behaviour
        r = self.rng.random()
        for fault, rate in (
            (Fault.ERROR, b.error_rate),
            (Fault.HANG, b.hang_rate),
            (Fault.CUT, b.cut_rate),
            (Fault.MALFORMED, b.malformed_rate),
        ):
            if r < rate:
                return fault
            r -= rate
        return Fault.NONE

    def record(self, body: bytes, outcome: str) -> None:
        if self.tag_re is None:
            return
        match = self.tag_re.search(body.decode("utf-8", "replace"))
        if match:
            self.tags.setdefault(match.group(1), []).append(outcome)


@dataclass(slots=True)
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


# --- HTTP framing ------------------------------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _head(status: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}", "server: mock-upstream"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not keep_alive:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _event(data: str) -> bytes:
    return _chunk(f"data: {data}\n\n".encode())


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 404: "invalid_request_error", 429: "rate_limit_error"}.get(
        status, "server_error"
    )
    code = {429: "rate_limit_exceeded"}.get(status)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _text(content: Any) -> str:
    """A message's text: a string, or OpenAI's list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


# --- the server --------------------------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests are parsed by httptools and served one after another."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.queue: collections.deque[_Request] = collections.deque()
        self.task: asyncio.Task[None] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self.writable.set()
        if self.task is not None and not self.task.done():
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.write(_head(400, [("content-length", "0")], keep_alive=False))
            self.close()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = _Request(
            method=self.parser.get_method().decode(),
            target=self._url.decode("latin-1"),
            headers=self._headers,
            body=b"".join(self._body),
            keep_alive=self.parser.should_keep_alive(),
        )
        self.queue.append(request)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._serve())

    # serving
    async def _serve(self) -> None:
        state = self.server.state
        while self.queue and not self.closed:
            request = self.queue.popleft()
            state.counters["requests"] += 1
            try:
                await self.server.handle(request, self)
            except (asyncio.CancelledError, ClientGone):
                state.counters["disconnects"] += 1
                return
            except Exception as error:  # a bug here must not leave the client waiting
                logger.exception("mock upstream failed on %s %s", request.method, request.target)
                self.send_json(500, _error_body(500, f"mock upstream bug: {error!r}"), keep_alive=False)
                self.close()
                return
            if not request.keep_alive:
                self.close()
                return

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if not self.writable.is_set():
            await self.writable.wait()
        if self.closed:
            raise ClientGone

    def close(self) -> None:
        """Closes after what was written is flushed: to the client, the body just stops."""
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def send_json(
        self, status: int, payload: Any, keep_alive: bool, headers: list[tuple[str, str]] | None = None
    ) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        head = [("content-type", "application/json"), ("content-length", str(len(body))), *(headers or [])]
        self.write(_head(status, head, keep_alive) + body)


class _Server:
    def __init__(self, state: MockState) -> None:
        self.state = state
        self.connections: set[_Connection] = set()

    async def handle(self, request: _Request, conn: _Connection) -> None:
        path, _, query = request.target.partition("?")
        route = (request.method, path)
        keep = request.keep_alive
        if route == ("POST", "/v1/chat/completions"):
            await self.chat(request, conn)
        elif route == ("GET", "/v1/models"):
            self.state.counters["models"] += 1
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "mock"} for m in self.state.behaviour.models]
            conn.send_json(200, {"object": "list", "data": data}, keep)
        elif route == ("GET", "/health"):
            self.state.counters["health"] += 1
            conn.send_json(200, {"status": "ok"}, keep)
        elif path == "/_control" and request.method in ("GET", "POST"):
            self.state.counters["control"] += 1
            try:
                changes = json.loads(request.body or b"{}") if request.method == "POST" else {}
                if not isinstance(changes, dict):
                    raise ValueError("the control body must be a JSON object")
                behaviour = self.state.configure(changes)
            except (ValueError, TypeError, KeyError, IndexError, re.error) as error:
                conn.send_json(400, _error_body(400, f"bad behaviour: {error!r}"), keep)
                return
            conn.send_json(200, behaviour.as_dict(), keep)
        elif route == ("GET", "/_stats"):
            tags = parse_qs(query).get("tags", ["0"])[0] not in ("0", "false", "")
            conn.send_json(200, self.state.stats(tags=tags), keep)
        elif path in ("/v1/chat/completions", "/v1/models", "/health", "/_stats"):
            conn.send_json(405, _error_body(405, f"{request.method} is not allowed on {path}"), keep)
        else:
            self.state.counters["not_found"] += 1
            conn.send_json(404, _error_body(404, f"no route {request.method} {path}"), keep)

    async def chat(self, request: _Request, conn: _Connection) -> None:
        state, b, keep = self.state, self.state.behaviour, request.keep_alive
        try:
            body = json.loads(request.body)
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
                raise BadRequest("'messages' must be a non-empty list")
            pieces, continued = self.pieces(body, b)
        except (ValueError, BadRequest) as error:
            state.counters["bad_requests"] += 1
            conn.send_json(400, _error_body(400, f"bad request: {error}"), keep)
            return
        stream = bool(body.get("stream"))
        state.counters["completions"] += 1
        state.counters["streams" if stream else "buffered"] += 1
        state.counters["continuations"] += continued
        fault = state.draw()
        state.counters[_FAULT_COUNTER[fault]] += 1
        state.record(request.body, fault.value + ("/continue" if continued else ""))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if isinstance(limit, int) and 0 <= limit < len(pieces):
            pieces, finish = pieces[:limit], "length"

        if fault is Fault.HANG:
            await asyncio.sleep(b.hang_s)
            conn.close()
            return
        if b.first_byte_delay_s:
            await asyncio.sleep(b.first_byte_delay_s)
        if fault is Fault.ERROR:
            headers = [("retry-after", f"{b.retry_after_s:g}")] if b.retry_after_s is not None else []
            message = f"injected failure: {b.error_status}"
            conn.send_json(b.error_status, _error_body(b.error_status, message), keep, headers)
            return
        state.completion_ids += 1
        reply = _Reply(
            id=f"chatcmpl-mock{state.completion_ids}",
            created=int(time.time()),
            model=str(body.get("model") or b.models[0]),
            prompt_tokens=sum(len(_text(m.get("content")).split()) for m in body["messages"] if isinstance(m, dict)),
            pieces=pieces,
            finish=finish,
        )
        if stream:
            options = body.get("stream_options") or {}
            await self.stream(conn, reply, fault, include_usage=bool(options.get("include_usage")), keep=keep)
        else:
            self.buffered(conn, reply, fault, keep)

    def pieces(self, body: dict[str, Any], b: Behaviour) -> tuple[list[str], bool]:
        """The chunks to send: the whole answer, or the rest of it after an assistant prefix."""
        answer = b.answer()
        last = body["messages"][-1]
        if not (body.get("continue_final_message") and isinstance(last, dict) and last.get("role") == "assistant"):
            return answer, False
        prefix = _text(last.get("content"))
        if "".join(answer).startswith(prefix):
            # The prefix may end inside a chunk (a trailing space stripped): send the rest of that chunk too.
            rest, offset = [], 0
            for text in answer:
                start = max(len(prefix) - offset, 0)
                if start < len(text):
                    rest.append(text[start:])
                offset += len(text)
            return rest, True
        # Not a prefix of our answer: count the chunk texts it holds, in order, and send the rest.
        self.state.counters["continuation_mismatches"] += 1
        held, offset = 0, 0
        for text in answer:
            found = prefix.find(text.strip() or text, offset)
            if found < 0:
                break
            held, offset = held + 1, found + len(text.strip() or text)
        return answer[held:], True

    def buffered(self, conn: _Connection, reply: _Reply, fault: Fault, keep: bool) -> None:
        self.state.counters["chunks"] += len(reply.pieces)
        payload = json.dumps(reply.completion(), separators=(",", ":")).encode()
        if fault is Fault.MALFORMED:
            payload = payload[: len(payload) // 2]
        head = _head(200, [("content-type", "application/json"), ("content-length", str(len(payload)))], keep)
        if fault is Fault.CUT:
            conn.write(head + payload[: len(payload) // 2])
            conn.close()
            return
        conn.write(head + payload)

    async def stream(self, conn: _Connection, reply: _Reply, fault: Fault, *, include_usage: bool, keep: bool) -> None:
        b, counters = self.state.behaviour, self.state.counters
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("transfer-encoding", "chunked"),
        ]
        usage_null = ',"usage":null' if include_usage else ""
        conn.write(_head(200, headers, keep) + _event(reply.chunk('{"role":"assistant","content":""}', usage_null)))
        malformed_at = len(reply.pieces) // 2 if fault is Fault.MALFORMED else -1
        for i, text in enumerate(reply.pieces):
            if fault is Fault.CUT and i >= b.cut_after:
                conn.close()
                return
            if b.chunk_delay_s and i:
                await asyncio.sleep(b.chunk_delay_s)
            data = reply.chunk('{"content":' + json.dumps(text) + "}", usage_null)
            conn.write(_event(data[: len(data) // 2] if i == malformed_at else data))
            counters["chunks"] += 1
            await conn.drain()
        if fault is Fault.CUT:
            conn.close()
            return
        tail = _event(reply.chunk("{}", usage_null, finish=reply.finish))
        if include_usage:
            tail += _event(reply.usage_chunk())
        conn.write(tail + _chunk(DONE_EVENT) + b"0\r\n\r\n")


@dataclass(slots=True)
class _Reply:
    id: str
    created: int
    model: str
    prompt_tokens: int
    pieces: list[str]
    finish: str

    def usage(self) -> dict[str, int]:
        completion = len(self.pieces)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }

    def _envelope(self, kind: str) -> str:
        return (
            f'{{"id":"{self.id}","object":"{kind}","created":{self.created},"model":{json.dumps(self.model)},'
            '"system_fingerprint":"fp_mock"'
        )

    def chunk(self, delta: str, usage_null: str, finish: str | None = None) -> str:
        reason = "null" if finish is None else f'"{finish}"'
        return (
            self._envelope("chat.completion.chunk")
            + f',"choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{reason}}}]{usage_null}}}'
        )

    def usage_chunk(self) -> str:
        return self._envelope("chat.completion.chunk") + ',"choices":[],"usage":' + json.dumps(self.usage()) + "}"

    def completion(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_mock",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(self.pieces), "refusal": None},
                    "logprobs": None,
                    "finish_reason": self.finish,
                }
            ],
            "usage": self.usage(),
        }


def _new_loop() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


async def _start(state: MockState, host: str, port: int) -> tuple[asyncio.AbstractServer, _Server]:
    server = _Server(state)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: _Connection(server), host, port, reuse_address=True, backlog=1024)
    return listener, server


# --- in process: a thread on a free port -------------------------------------------------------------------------


class MockUpstream:
    """The mock in a background thread with its own event loop, for pytest; a context manager."""

    def __init__(self, behaviour: Behaviour | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = MockState(behaviour or Behaviour())
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def __enter__(self) -> MockUpstream:
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._loop = loop = _new_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                listener, server = loop.run_until_complete(_start(self.state, self.host, self.port))
            except BaseException as error:
                started.set_exception(error)
                return
            self._listener, self._server = listener, server
            started.set_result(listener.sockets[0].getsockname()[1])
            loop.run_forever()
            listener.close()
            for conn in list(server.connections):
                conn.abort()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(listener.wait_closed())
            loop.close()

        self._thread = threading.Thread(target=run, name="mock-upstream", daemon=True)
        self._thread.start()
        self.port = started.result(timeout=10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def _call(self, fn: Callable[[], T]) -> T:
        assert self._loop is not None, "the mock is not running"
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                done.set_result(fn())
            except BaseException as error:
                done.set_exception(error)

        self._loop.call_soon_threadsafe(call)
        return done.result(timeout=10)

    def configure(self, **changes: Any) -> Behaviour:
        return self._call(lambda: self.state.configure(changes))

    def stats(self, *, tags: bool = False) -> dict[str, Any]:
        return self._call(lambda: self.state.stats(tags=tags))

    def reset_stats(self) -> None:
        self._call(self.state.reset_stats)


# --- in a subprocess, for the benchmarks -------------------------------------------------------------------------


@dataclass
class MockProcess:
    """A mock running in a subprocess (``spawn_mock``); controlled over HTTP."""

    process: subprocess.Popen[str]
    url: str

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def pid(self) -> int:
        return self.process.pid

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/_control", json=changes, timeout=10)
        response.raise_for_status()
        return response.json()

    def stats(self, *, tags: bool = False) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_stats", params={"tags": int(tags)}, timeout=30)
        response.raise_for_status()
        return response.json()

    def reset_stats(self) -> None:
        self.configure(reset_stats=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def spawn_mock(behaviour: Behaviour | None = None, *, host: str = "127.0.0.1", port: int = 0) -> Iterator[MockProcess]:
    """``python -m bench.mock_upstream`` in a subprocess (its own core and GIL), stopped on exit."""
    config = json.dumps((behaviour or Behaviour()).as_dict())
    command = [sys.executable, "-m", "bench.mock_upstream", "--host", host, "--port", str(port), "--behaviour", config]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    mock = MockProcess(process, "")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith(READY_LINE):
            raise RuntimeError(f"the mock upstream did not start (exit {process.poll()}): {line!r}")
        mock.url = line.removeprefix(READY_LINE).strip()
        yield mock
    finally:
        mock.stop()


# --- command line ------------------------------------------------------------------------------------------------


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Behaviour]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port (printed at start)")
    parser.add_argument("--behaviour", type=json.loads, default={}, help="a JSON object of behaviour fields")
    d = Behaviour()
    flags: list[tuple[str, type, str]] = [
        ("chunks", int, "content chunks per answer"),
        ("chunk-text", str, "chunk i's text, with {i}"),
        ("first-byte-delay-s", float, "seconds before the first byte"),
        ("chunk-delay-s", float, "seconds between chunks"),
        ("error-rate", float, "probability of an error status"),
        ("error-status", int, "the error status (500, 503, 429, ...)"),
        ("retry-after-s", float, "Retry-After on errors"),
        ("hang-rate", float, "probability of a hang before the first byte"),
        ("hang-s", float, "how long a hang lasts"),
        ("cut-rate", float, "probability of a stream cut"),
        ("cut-after", int, "content chunks sent before a cut"),
        ("malformed-rate", float, "probability of a malformed chunk"),
        ("seed", int, "seed of the fault draws"),
    ]
    for flag, kind, text in flags:
        name = flag.replace("-", "_")
        parser.add_argument(
            f"--{flag}", dest=name, type=kind, default=None, help=f"{text} (default {getattr(d, name)})"
        )
    parser.add_argument("--models", nargs="+", default=None, help="ids listed by GET /v1/models")
    args = parser.parse_args(argv)
    changes = dict(args.behaviour)
    for flag, _, _ in flags:
        name = flag.replace("-", "_")
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    if args.models:
        changes["models"] = args.models
    if "models" in changes:
        changes["models"] = tuple(changes["models"])
    return args, Behaviour().updated(changes)


def main(argv: list[str] | None = None) -> None:
    args, behaviour = _parse_args(argv)
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    listener, _ = loop.run_until_complete(_start(MockState(behaviour), args.host, args.port))
    host, port = listener.sockets[0].getsockname()[:2]
    print(f"{READY_LINE}http://{host}:{port}", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, loop.stop)
    try:
        loop.run_forever()
    finally:
        listener.close()


if __name__ == "__main__":
    main()
