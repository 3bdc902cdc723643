"""OpenAI-compatible HTTP upstreams (vLLM, TGI, llama.cpp server, hosted APIs) through ``httpx``.

The API key comes from the environment variable the registry names, never from the client.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx

from strata.inference.base import ChatProvider, completion_from_openai, events_from_openai_chunk, openai_body
from strata.inference.exceptions import ModelRequestError, ModelTimeoutError, ModelUnavailableError
from strata.inference.types import ChatEvent, ChatRequest, Completion


class OpenAIChatProvider(ChatProvider):
    def __init__(
        self,
        name: str,
        *,
        client: httpx.Client,
        model: str,
        buffered_timeout_s: float | None = None,
        api_key_env: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(name)
        self._client = client
        self.model = model
        # A buffered answer's first byte comes when the whole answer is done: the client's read
        # timeout (the first-byte one) is lifted to this for ``complete``.
        self._buffered_timeout = (
            httpx.Timeout(
                client.timeout.connect, read=buffered_timeout_s, write=client.timeout.write, pool=client.timeout.pool
            )
            if buffered_timeout_s
            else None
        )
        self._headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ModelUnavailableError(f"target {name!r}: the environment variable {api_key_env} is not set")
            self._headers["Authorization"] = f"Bearer {key}"
        self._parameters = parameters or {}

    def complete(self, request: ChatRequest) -> Completion:
        body = openai_body(request, stream=False, model=self.model, **self._parameters)
        try:
            response = self._client.post(
                "chat/completions",
                content=json.dumps(body),
                headers=self._headers,
                timeout=self._buffered_timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as error:
            raise self._transport_error(error) from error
        if response.status_code != 200:
            raise self._status_error(response)
        try:
            return completion_from_openai(response.json(), self.name)
        except ValueError as error:
            raise ModelUnavailableError(f"target {self.name!r} sent a malformed reply", target=self.name) from error

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        body = openai_body(request, stream=True, model=self.model, **self._parameters)
        try:
            with self._client.stream(
                "POST", "chat/completions", content=json.dumps(body), headers=self._headers
            ) as response:
                if response.status_code != 200:
                    response.read()
                    raise self._status_error(response)
                done = False
                for line in response.iter_lines():
                    # After [DONE] the body is read to its end (nothing more comes), so the
                    # connection goes back to the pool instead of being closed half read.
                    if done or not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        done = True
                        continue
                    chunk = json.loads(payload)
                    if "error" in chunk:
                        message = (chunk["error"] or {}).get("message", "error")
                        raise ModelUnavailableError(f"target {self.name!r} stream error: {message}", target=self.name)
                    yield from events_from_openai_chunk(chunk)
                if not done:  # the connection ended without [DONE]: a cut, not an answer
                    raise ModelUnavailableError(f"target {self.name!r} ended its stream early", target=self.name)
        except httpx.HTTPError as error:
            raise self._transport_error(error) from error
        except ValueError as error:
            raise ModelUnavailableError(f"target {self.name!r} sent a malformed chunk", target=self.name) from error

    def close(self) -> None:
        self._client.close()

    def _transport_error(self, error: httpx.HTTPError) -> ModelUnavailableError:
        if isinstance(error, httpx.TimeoutException):
            return ModelTimeoutError(f"target {self.name!r} timed out ({type(error).__name__})", target=self.name)
        return ModelUnavailableError(f"target {self.name!r} is unreachable ({type(error).__name__})", target=self.name)

    def _status_error(self, response: httpx.Response) -> Exception:
        message = _error_message(response)
        status = response.status_code
        if 400 <= status < 500 and status not in (408, 409, 429):
            return ModelRequestError(f"the model refused the request: {message}", target=self.name)
        return ModelUnavailableError(
            f"target {self.name!r} answered {status}: {message}",
            target=self.name,
            retry_after=_retry_after(response.headers.get("retry-after")),
        )


def _error_message(response: httpx.Response) -> str:
    """The upstream's own error message when it sent OpenAI's error shape; never its raw body
    (an HTML error page or a stack trace is not for the caller)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "error"
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return str(message)[:300] if isinstance(message, str) and message else response.reason_phrase or "error"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from model servers; the backoff applies instead
