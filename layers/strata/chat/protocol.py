"""The public chat API: OpenAI's chat-completions schema plus Strata's ``strata`` extension."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from strata.retrieval import SearchMode


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text; content parts other than text are ignored."""
        if isinstance(self.content, str):
            return self.content
        parts = self.content or []
        return "".join(part.get("text", "") for part in parts if part.get("type") == "text")


class RetrievalOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    k: int | None = Field(default=None, ge=1, le=50)
    mode: SearchMode | None = None
    document_ids: list[str] | None = None


class StrataRequestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retrieval: RetrievalOptions = Field(default_factory=RetrievalOptions)
    # False: never answer from the response cache (nor store this answer in it).
    cache: bool = True


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    # Unknown OpenAI fields (logprobs, tools, ...) are accepted and ignored rather than refused,
    # so SDKs that always send them keep working.
    model_config = ConfigDict(extra="ignore")

    model: str = "default"
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    strata: StrataRequestOptions = Field(default_factory=StrataRequestOptions)

    def question(self) -> str:
        """The latest user message: what retrieval searches for."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""


class Citation(BaseModel):
    """A source the answer was given, named the way its owner knows it."""

    index: int  # the [n] marker in the prompt and the answer
    document_id: str
    source_key: str
    title: str
    chunk: int
    page: int | None = None
    score: float
    referenced: bool  # the answer contains the [n] marker


class StrataResponseExtension(BaseModel):
    request_id: str
    citations: list[Citation]
    cache_hit: bool = False
    target: str | None = None  # the alias whose model finished the answer (a fallback after a failover)
    failovers: int = 0


class UsageInfo(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class _OmitUnset(BaseModel):
    """Serialized without the fields that are ``None``, as OpenAI sends them."""

    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class ChunkDelta(_OmitUnset):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None  # sent as null until the last content chunk


class ChatCompletionChunk(_OmitUnset):
    """One ``chat.completion.chunk``: ``usage`` and ``strata`` appear only on the chunks that carry them."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageInfo | None = None
    strata: StrataResponseExtension | None = None


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class CompletionChoice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: str


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo
    strata: StrataResponseExtension
