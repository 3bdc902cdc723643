"""Amazon Bedrock chat models through the Converse and ConverseStream APIs (boto3 ``bedrock-runtime``).

Converse is Bedrock's one request shape for every chat model it hosts, so this provider needs no
per-vendor body. The request is translated as follows:

* system messages become ``system`` text blocks, in order;
* user and assistant messages become ``messages``. Converse requires the roles to alternate and
  the conversation to start with a user turn, so consecutive messages of the same role are merged
  (their texts joined by a blank line), blank messages are dropped (Converse rejects blank text),
  and a conversation that would start with the assistant (a greeting shown by the UI) gets a
  short placeholder user turn first. A ``tool`` message (a tool result, which the typed message
  carries as plain text without the ``toolUseId`` a Converse ``toolResult`` needs) is sent as
  user text;
* ``request.prefix`` (an answer already streamed to the client by a target that failed) becomes
  a final assistant message: Bedrock *prefills* it and the model continues that text (the
  stream carries only the continuation);
* ``max_tokens``, ``temperature``, ``top_p`` and ``stop`` go to ``inferenceConfig``; Converse has
  no seed, so ``seed`` is not sent.

Prefill and whitespace. Anthropic's models reject a final assistant message that ends with
whitespace ("final assistant content cannot end with trailing whitespace"), and a prefix cut
mid-stream often does (``"The capital is "``). The prefill is sent with its trailing whitespace
stripped, so the model continues right after the last visible character; its continuation then
usually starts with the separator again (``" Paris."``), but the client already holds the
stripped whitespace. The continuation's leading whitespace is therefore held back until its
first visible character, and the part of it that the client already has (the longest common
prefix of the two) is dropped: ``"The capital is " + "Paris."`` reads as one answer, and a model
that opens a new paragraph where the client has one newline still gets its second one.

``parameters`` are extra Converse arguments for every call of this target, for instance
``{"additionalModelRequestFields": {"top_k": 50}, "guardrailConfig": {...}}``; an
``inferenceConfig`` among them supplies defaults that the request's own values override.

Failures become the package's exceptions, naming the target: ``ValidationException`` (and
botocore's own parameter validation) is the caller's error (``ModelRequestError``),
``ModelTimeoutException`` and read/connect timeouts are ``ModelTimeoutError``, and everything
else (throttling, with its ``Retry-After`` when sent; an unready, failing or overloaded model;
denied access or an unknown model id, with a message that says so) is ``ModelUnavailableError``.
Exceptions that arrive inside the stream (botocore raises them as ``EventStreamError`` with
camel-cased codes such as ``throttlingException``) are mapped the same way. A stream that ends
without ``messageStop`` is broken, not finished.
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from botocore.eventstream import ParserError as EventStreamParserError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    ParamValidationError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as URLLib3HTTPError
from urllib3.exceptions import TimeoutError as URLLib3TimeoutError

from strata.inference.base import ChatProvider
from strata.inference.exceptions import InferenceError, ModelRequestError, ModelTimeoutError, ModelUnavailableError
from strata.inference.types import ChatEvent, ChatRequest, Completion, Finish, FinishReason, TextDelta, Usage

__all__ = ("BedrockChatProvider", "converse_arguments")

logger = logging.getLogger(__name__)

# Converse insists on a first user turn; this stands in when the conversation opens with the assistant.
PLACEHOLDER_USER_TURN = "(The conversation begins.)"
_TURN_SEPARATOR = "\n\n"

_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "tool_use": "tool_calls",
}

_UNAVAILABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
        "ModelErrorException",
        "ModelStreamErrorException",
    }
)


class BedrockChatProvider(ChatProvider):
    """A chat model on Amazon Bedrock, called through Converse (buffered) and ConverseStream.

    Parameters
    ----------
    name
        The registry alias of this target (named by every error).
    client
        A boto3 ``bedrock-runtime`` client. Build it with botocore's retries off: the router retries.
    model_id
        A Bedrock model id, inference profile id or ARN (``anthropic.claude-3-haiku-20240307-v1:0``).
    parameters
        Extra Converse arguments sent on every call; see the module docstring.

    Examples
    --------
    >>> client = boto3.client("bedrock-runtime", config=Config(retries={"total_max_attempts": 1}))  # doctest: +SKIP
    >>> model_id = "anthropic.claude-3-haiku-20240307-v1:0"
    >>> provider = BedrockChatProvider("claude", client=client, model_id=model_id)  # doctest: +SKIP
    >>> request = ChatRequest(messages=(Message("user", "Hi"),), max_tokens=64)  # doctest: +SKIP
    >>> "".join(e.text for e in provider.stream(request) if isinstance(e, TextDelta))  # doctest: +SKIP
    """

    def __init__(
        self,
        name: str,
        *,
        client: Any,
        model_id: str,
        parameters: dict[str, Any] | None = None,
        buffered_client: Any = None,
    ) -> None:
        super().__init__(name)
        self._client = client
        # Buffered calls may use a client with a longer read timeout (the answer comes whole).
        self._buffered_client = buffered_client or client
        self.model_id = model_id
        self._parameters = dict(parameters or {})

    def complete(self, request: ChatRequest) -> Completion:
        arguments = converse_arguments(request, self.model_id, self._parameters)
        try:
            response = self._buffered_client.converse(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise self._error(error) from error
        blocks = ((response.get("output") or {}).get("message") or {}).get("content") or []
        join = _PrefixJoin(_trailing_whitespace(request.prefix))
        text = join.feed("".join(block["text"] for block in blocks if "text" in block)) + join.flush()
        return Completion(
            text=text,
            finish_reason=_finish_reason(response.get("stopReason")),
            usage=_usage(response.get("usage") or {}),
            target=self.name,
        )

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        """Text deltas as Bedrock sends them, then ``Usage`` and ``Finish``.

        Bedrock sends ``messageStop`` before the ``metadata`` event that carries the usage, so the
        finish reason is held until the stream ends, to keep the interface's order.
        """
        arguments = converse_arguments(request, self.model_id, self._parameters)
        try:
            response = self._client.converse_stream(**arguments)
        except (ClientError, BotoCoreError) as error:
            raise self._error(error) from error
        events = response["stream"]
        join = _PrefixJoin(_trailing_whitespace(request.prefix))
        finish: FinishReason | None = None
        usage: Usage | None = None
        try:
            for event in events:
                if "contentBlockDelta" in event:
                    text = (event["contentBlockDelta"].get("delta") or {}).get("text")
                    if text and (piece := join.feed(text)):
                        yield TextDelta(piece)
                elif "messageStop" in event:
                    finish = _finish_reason(event["messageStop"].get("stopReason"))
                elif "metadata" in event:
                    usage = _usage(event["metadata"].get("usage") or {})
        except (ClientError, BotoCoreError, URLLib3HTTPError, EventStreamParserError) as error:
            raise self._error(error) from error
        finally:
            events.close()  # also when the consumer stops early: the upstream generation stops too
        if finish is None:
            raise ModelUnavailableError(
                f"Bedrock model {self.model_id!r} ended its stream without a stop reason", target=self.name
            )
        if tail := join.flush():
            yield TextDelta(tail)
        if usage is not None:
            yield usage
        yield Finish(finish)

    def _error(self, error: Exception) -> InferenceError:
        """One classification for buffered calls, stream starts and in-stream exception events."""
        model = f"Bedrock model {self.model_id!r} (target {self.name!r})"
        if isinstance(error, ReadTimeoutError | ConnectTimeoutError | URLLib3TimeoutError):
            return ModelTimeoutError(f"{model} timed out: {error}", target=self.name)
        if isinstance(error, ParamValidationError):
            return ModelRequestError(f"{model} cannot take the request: {error}", target=self.name)
        if isinstance(error, ClientError):
            details = error.response.get("Error") or {}
            code = str(details.get("Code") or "")
            message = details.get("Message") or str(error)
            # In-stream exception events are named in camel case (throttlingException).
            code = code[:1].upper() + code[1:]
            if code == "ValidationException":
                return ModelRequestError(f"{model} refused the request: {message}", target=self.name)
            if code == "ModelTimeoutException":
                return ModelTimeoutError(f"{model} timed out: {message}", target=self.name)
            if code == "AccessDeniedException":
                return ModelUnavailableError(
                    f"{model} is not accessible to these credentials: {message}. Enable access to the model "
                    "in the Bedrock console and allow bedrock:InvokeModel and "
                    "bedrock:InvokeModelWithResponseStream on it.",
                    target=self.name,
                )
            if code == "ResourceNotFoundException":
                return ModelUnavailableError(
                    f"{model} was not found: {message}. Check the model id and the region, or use an "
                    "inference profile id where the model requires one.",
                    target=self.name,
                )
            retry_after = _retry_after(error.response) if code == "ThrottlingException" else None
            if code not in _UNAVAILABLE_CODES:
                logger.warning("unexpected Bedrock error code %r for target %s", code, self.name)
            return ModelUnavailableError(
                f"{model} is unavailable ({code or 'error'}): {message}", target=self.name, retry_after=retry_after
            )
        if isinstance(error, BotoCoreError | URLLib3HTTPError | EventStreamParserError):
            return ModelUnavailableError(f"{model} could not be reached: {error}", target=self.name)
        return ModelUnavailableError(f"{model} failed: {error}", target=self.name)  # pragma: no cover


def converse_arguments(request: ChatRequest, model_id: str, parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments of ``converse`` / ``converse_stream`` for ``request``."""
    parameters = dict(parameters or {})
    system = [{"text": m.content} for m in request.messages if m.role == "system" and m.content.strip()]
    turns: list[tuple[str, list[str]]] = []
    for message in request.messages:
        if message.role == "system" or not message.content.strip():
            continue
        _add_turn(turns, "assistant" if message.role == "assistant" else "user", message.content)
    prefill = request.prefix.rstrip()
    if prefill:
        _add_turn(turns, "assistant", prefill)
    if not turns or turns[0][0] != "user":
        turns.insert(0, ("user", [PLACEHOLDER_USER_TURN]))
    messages = [{"role": role, "content": [{"text": _TURN_SEPARATOR.join(texts)}]} for role, texts in turns]
    if messages[-1]["role"] == "assistant":
        # A final assistant message is prefilled; Anthropic rejects one that ends with whitespace.
        messages[-1]["content"][0]["text"] = messages[-1]["content"][0]["text"].rstrip()

    inference: dict[str, Any] = {**(parameters.pop("inferenceConfig", None) or {}), "maxTokens": request.max_tokens}
    if request.temperature is not None:
        inference["temperature"] = request.temperature
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    arguments: dict[str, Any] = {**parameters, "modelId": model_id, "messages": messages, "inferenceConfig": inference}
    if system:
        arguments["system"] = system
    return arguments


def _add_turn(turns: list[tuple[str, list[str]]], role: str, text: str) -> None:
    if turns and turns[-1][0] == role:
        turns[-1][1].append(text)
    else:
        turns.append((role, [text]))


def _trailing_whitespace(prefix: str) -> str:
    return prefix[len(prefix.rstrip()) :]


class _PrefixJoin:
    """Joins a continuation to a prefix whose trailing whitespace was not prefilled.

    The continuation's leading whitespace is held until its first visible character; the part of
    it the client already has (``sent``) is dropped. See the module docstring.
    """

    def __init__(self, sent: str) -> None:
        self._sent = sent
        self._held = ""
        self._joined = not sent

    def feed(self, text: str) -> str:
        if self._joined:
            return text
        self._held += text
        visible = self._held.lstrip()
        if not visible:
            return ""
        lead = self._held[: len(self._held) - len(visible)]
        self._joined, self._held = True, ""
        return _unsent(lead, self._sent) + visible

    def flush(self) -> str:
        if self._joined:
            return ""
        self._joined = True
        return _unsent(self._held, self._sent)


def _unsent(lead: str, sent: str) -> str:
    return lead[len(os.path.commonprefix([lead, sent])) :]


def _finish_reason(value: str | None) -> FinishReason:
    return _FINISH_REASONS.get(value or "", "stop")


def _usage(usage: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(usage.get("inputTokens") or 0), completion_tokens=int(usage.get("outputTokens") or 0)
    )


def _retry_after(response: dict[str, Any]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), if one was sent."""
    value = ((response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
