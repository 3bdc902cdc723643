"""Wire shapes: OpenAI chat completions (as vLLM serves them) and TEI's /embed.

Requests tolerate unknown fields (OpenAI clients send many) but validate every field the
server acts on; responses are built from these models so their shape is checked too.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

__all__ = (
    "ChatCompletionChoice",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatCompletionStreamChoice",
    "ChatCompletionStreamResponse",
    "ChatMessage",
    "DeltaMessage",
    "EmbedRequest",
    "ErrorInfo",
    "ErrorResponse",
    "ResponseMessage",
    "StreamOptions",
    "TEIErrorResponse",
    "UsageInfo",
    "describe_validation_error",
)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- chat completions ---------------------------------------------------------------------------


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    # OpenAI allows a string or a list of content parts; only text parts mean anything to a
    # text model, so other parts are rejected rather than silently dropped.
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, value: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        if isinstance(value, list):
            for part in value:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError("only text content parts ({'type': 'text', 'text': ...}) are supported")
        return value

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part["text"] for part in self.content)

    def template_role(self) -> str:
        # "developer" is OpenAI's newer name for the system role; chat templates know "system".
        return "system" if self.role == "developer" else self.role


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    model: str | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    # OpenAI's newer name for max_tokens; either one is honoured.
    max_completion_tokens: Annotated[int | None, Field(ge=1)] = None
    temperature: Annotated[float | None, Field(ge=0.0, le=2.0)] = None
    top_p: Annotated[float | None, Field(gt=0.0, le=1.0)] = None
    stop: str | Annotated[list[str], Field(max_length=16)] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    frequency_penalty: Annotated[float, Field(ge=-2.0, le=2.0)] = 0.0
    # vLLM's extension: > 1 makes tokens already in the prompt or the answer less likely, which
    # keeps a small model from repeating a sentence until the token cap.
    repetition_penalty: Annotated[float, Field(gt=0.0, le=2.0)] = 1.0
    n: Annotated[int, Field(ge=1, le=1)] = 1
    # vLLM's extensions for prefilling the answer: with continue_final_message the last
    # (assistant) message is left open and the model goes on writing it, rather than a new turn
    # being started after it; add_generation_prompt=False renders no assistant header at all.
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self

    @model_validator(mode="after")
    def _continuation_is_coherent(self) -> ChatCompletionRequest:
        if not self.continue_final_message:
            return self
        # Like vLLM: only an explicit add_generation_prompt=true conflicts; its default gives way.
        if self.add_generation_prompt and "add_generation_prompt" in self.model_fields_set:
            raise ValueError("Cannot set both `continue_final_message` and `add_generation_prompt` to True.")
        final = self.messages[-1]
        if final.role != "assistant":
            raise ValueError(
                "`continue_final_message` needs the last message to be from the assistant "
                f"(its text is what the model continues); the last message is from the {final.role}"
            )
        if not final.text().strip():
            raise ValueError(
                "`continue_final_message` needs text in the last assistant message to continue; "
                "to start a fresh answer, leave `continue_final_message` out"
            )
        return self

    def generation_prompt(self) -> bool:
        """Whether to render the assistant header after the messages (never when continuing)."""
        return self.add_generation_prompt and not self.continue_final_message

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def token_budget(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatCompletionChoice(BaseModel):
    index: int = 0
    message: ResponseMessage
    logprobs: None = None
    finish_reason: str


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _now() -> int:
    return int(time.time())


class ChatCompletionResponse(BaseModel):
    id: str = Field(default_factory=_completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatCompletionChoice]
    usage: UsageInfo


class DeltaMessage(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # OpenAI sends only what changed: {"role": ...} first, then {"content": ...}, then {}.
        return {key: value for key, value in handler(self).items() if value is not None}


class ChatCompletionStreamChoice(BaseModel):
    index: int = 0
    delta: DeltaMessage
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionStreamResponse(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionStreamChoice]
    # OpenAI sends "usage": null on every chunk when include_usage is set, and the counts on
    # one extra chunk with empty choices at the end.
    usage: UsageInfo | None = None


class ErrorInfo(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: int


class ErrorResponse(BaseModel):
    """OpenAI's error object, as vLLM answers it."""

    error: ErrorInfo


# -- text-embeddings-inference -----------------------------------------------------------------


class EmbedRequest(_Request):
    """TEI's ``POST /embed`` body."""

    inputs: str | list[str]
    normalize: bool = True
    # None: the server's default (ServerConfig.auto_truncate), like TEI's --auto-truncate.
    truncate: bool | None = None
    truncation_direction: Literal["Left", "Right", "left", "right"] = "Right"

    def texts(self) -> list[str]:
        return [self.inputs] if isinstance(self.inputs, str) else list(self.inputs)


class TEIErrorResponse(BaseModel):
    """TEI's error body: ``{"error": "...", "error_type": "Validation"}``."""

    error: str
    error_type: str


def describe_validation_error(exc: ValidationError) -> str:
    """A one-line, human-readable summary of what was wrong with the request."""
    parts = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(item) for item in error["loc"]) or "body"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
