"""The public chat API: OpenAI's chat-completions schema plus Strata's ``strata`` extension."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    Strict,
    WithJsonSchema,
    field_validator,
    model_serializer,
    model_validator,
)

from strata.prompts.types import NAME_PATTERN
from strata.retrieval import SearchMode
from strata.validation import Citation, check_json_schema


def _valid_unicode(text: str) -> str:
    # JSON may carry a lone surrogate ("\\ud800"); no tokenizer or upstream can encode it.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (found a lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_valid_unicode)]


def _integral(value: Any) -> Any:
    # JSON Schema's "integer" is any number with a zero fractional part: 26.0 is one.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def integer(*constraints: Any) -> Any:
    """An integer as JSON Schema means it: 26 and 26.0, never "26", 26.5 or true. The
    constraints (``annotated_types.Ge(1)``) go inside the conversion, so the schema states them."""
    return Annotated[int, Strict(), *constraints, BeforeValidator(_integral)]


Integer = integer()


def _allowed_schema(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if value == [] and isinstance(value, list):
        return {"type": "array", "maxItems": 0}
    if value == {} and isinstance(value, dict):
        return {"type": "object", "maxProperties": 0}
    if isinstance(value, list):
        return {"type": "array", "items": {"enum": value}, "minItems": len(value), "maxItems": len(value)}
    return {"const": value}


def _unsupported(what: str, *, allowed: tuple[Any, ...] = (None,)) -> tuple[AfterValidator, WithJsonSchema]:
    """A parameter accepted only with the value(s) that ask for nothing this API cannot do: any
    other value is a 400 naming it, and the OpenAPI document says exactly which values pass."""

    def check(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"{what} is not supported by this API")
        return value

    schema = {"anyOf": [_allowed_schema(v) for v in allowed], "description": f"{what} is not supported"}
    return AfterValidator(check), WithJsonSchema(schema)


MAX_MESSAGES = 2048  # OpenAI's limit per request


class _Strict(BaseModel):
    # No coercion ("yes" is not a boolean, "5" not a number) and no unknown fields, as OpenAI.
    model_config = ConfigDict(strict=True, extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: Text


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart] | None = None
    name: Text | None = None

    def text(self) -> str:
        """The message's text (its text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content or ())


class RetrievalOptions(_Strict):
    enabled: bool = True
    k: integer(Ge(1), Le(50)) | None = None
    mode: Annotated[SearchMode | None, Field(strict=False)] = None  # a JSON string names the member
    document_ids: list[Text] | None = Field(default=None, max_length=100)


class PromptSelector(_Strict):
    """Which of the tenant's prompts to use: a pinned ``version``, a ``label``, or neither (the
    ``production`` label, else the latest version). The name ``default`` without a stored
    prompt means the built-in one."""

    # The schema says "not both" too: a version and a label together are a 400.
    model_config = ConfigDict(
        json_schema_extra={
            "not": {
                "required": ["version", "label"],
                "properties": {"version": {"type": "integer"}, "label": {"type": "string"}},
            }
        }
    )

    # str, not Text: the pattern admits ASCII only, and on Text pydantic checks it but does not document it.
    name: Annotated[str, Field(pattern=NAME_PATTERN.pattern)] = "default"
    version: integer(Ge(1)) | None = None
    label: Text | None = None
    variables: dict[Text, Text] = Field(default_factory=dict, max_length=64)

    @model_validator(mode="after")
    def _one_way_to_pick(self) -> PromptSelector:
        if self.version is not None and self.label is not None:
            raise ValueError("give a version or a label, not both")
        return self


class StrataRequestOptions(_Strict):
    retrieval: RetrievalOptions = Field(default_factory=RetrievalOptions)
    prompt: PromptSelector | None = None
    # False: never answer from the response cache (nor store this answer in it).
    cache: bool = True
    # True: a stream opens once the request is admitted and says what it waits for
    # (``event: progress``); an error after that ends the stream as its error event.
    progress: bool = False


class StreamOptions(_Strict):
    include_usage: bool = False


class JsonSchemaFormat(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]  # str, as PromptSelector.name
    description: Text | None = None
    # "schema" would shadow a BaseModel attribute: the field is json_schema_ on the model.
    json_schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    @field_validator("json_schema_")
    @classmethod
    def _a_json_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            check_json_schema(schema)
        return schema


class ResponseFormat(_Strict):
    """``text``, or an answer that must be JSON: any object (``json_object``) or one matching a
    JSON Schema (``json_schema``), validated before it is sent and repaired once if it is not."""

    # The schema says it too: type json_schema needs its json_schema object.
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"type": {"enum": ["text", "json_object"]}}},
                {"required": ["json_schema"], "properties": {"json_schema": {"type": "object"}}},
            ]
        }
    )

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("json_schema is required with type json_schema")
        return self

    def required_schema(self) -> dict[str, Any] | None:
        """The schema an answer must match: ``{"type": "object"}`` for ``json_object``, none for text."""
        if self.type == "json_object":
            return {"type": "object"}
        if self.type == "json_schema" and self.json_schema is not None:
            return self.json_schema.json_schema_ or {}
        return None


class ChatCompletionRequest(_Strict):
    """OpenAI's chat-completions request: every standard parameter is honoured, or refused with a
    400 naming it when it asks for something this API does not do (tools, logprobs, n > 1, …)."""

    model: Text = "default"
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: integer(Ge(1)) | None = None
    max_completion_tokens: integer(Ge(1)) | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    # The bound on the list member itself: on the union pydantic would check it but not document it.
    stop: Text | Annotated[list[Text], Field(max_length=4)] | None = None
    seed: Integer | None = None
    n: Annotated[Integer | None, *_unsupported("n other than 1", allowed=(None, 1))] = None
    user: Text | None = None
    metadata: dict[Text, Text] | None = None
    service_tier: Annotated[Text | None, *_unsupported("service_tier", allowed=(None, "auto", "default"))] = None
    response_format: ResponseFormat | None = None
    presence_penalty: Annotated[float | None, *_unsupported("presence_penalty", allowed=(None, 0))] = None
    frequency_penalty: Annotated[float | None, *_unsupported("frequency_penalty", allowed=(None, 0))] = None
    logit_bias: Annotated[dict[Text, Integer] | None, *_unsupported("logit_bias", allowed=(None, {}))] = None
    logprobs: Annotated[bool | None, *_unsupported("logprobs", allowed=(None, False))] = None
    top_logprobs: Annotated[Integer | None, *_unsupported("top_logprobs", allowed=(None, 0))] = None
    tools: Annotated[list[dict[str, Any]] | None, *_unsupported("tool calling", allowed=(None, []))] = None
    tool_choice: Annotated[Any, *_unsupported("tool_choice", allowed=(None, "none"))] = None
    parallel_tool_calls: bool | None = None
    functions: Annotated[list[dict[str, Any]] | None, *_unsupported("function calling", allowed=(None, []))] = None
    function_call: Annotated[Any, *_unsupported("function_call", allowed=(None, "none"))] = None
    modalities: Annotated[list[Text] | None, *_unsupported("modalities other than text", allowed=(None, ["text"]))] = (
        None
    )
    audio: Annotated[Any, *_unsupported("audio output")] = None
    prediction: Annotated[Any, *_unsupported("prediction")] = None
    reasoning_effort: Annotated[Any, *_unsupported("reasoning_effort")] = None
    web_search_options: Annotated[Any, *_unsupported("web search")] = None
    store: Annotated[bool | None, *_unsupported("store", allowed=(None, False))] = None
    strata: StrataRequestOptions = Field(default_factory=StrataRequestOptions)

    def question(self) -> str:
        """The latest user message: what retrieval searches for."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text()
        return ""


class PromptUsed(BaseModel):
    name: str  # "builtin" for the built-in prompt
    version: int  # 0 for the built-in prompt


class ContextInfo(BaseModel):
    """What prompt assembly fitted into the model's window."""

    sources_used: int
    sources_dropped: int  # the lowest-ranked sources that did not fit
    sources_below_floor: int  # found, but less similar to the question than the relevance floor
    turns_dropped: int  # the oldest turns that did not fit
    prompt_tokens: int
    budget: int  # the window minus max_tokens


class ValidationReport(BaseModel):
    """What validation changed in the answer on its way out."""

    citations_removed: int = 0  # markers that pointed at no source the model was given
    citations_added: int = 0  # markers Strata put after sentences a source supports and the model left unmarked
    redacted: dict[str, int] = Field(default_factory=dict)  # personal data replaced, by kind
    response_format: Literal["valid", "repaired"] | None = None  # with a JSON response_format
    loop_stopped: bool = False  # the answer began repeating itself and was cut there


class StrataResponseExtension(BaseModel):
    request_id: str
    citations: list[Citation]
    cache_hit: bool = False
    target: str | None = None  # the alias whose model finished the answer (a fallback after a failover)
    failovers: int = 0
    prompt: PromptUsed | None = None
    context: ContextInfo | None = None
    # How well the answer's sentences are supported by the sources it cites, in [0, 1]
    # (strata.validation.confidence: token overlap); None when no answer was given from sources.
    confidence: float | None = None
    validation: ValidationReport | None = None


class StreamProgress(BaseModel):
    """Where a streamed answer stands before its first token (``strata.progress``): ``retrieving``
    once admitted, ``generating`` once the prompt is assembled and the model is asked."""

    stage: Literal["retrieving", "generating"]
    sources: int | None = None  # with ``generating``: the sources the model was given


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
