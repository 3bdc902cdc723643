"""One chat request's state as it moves through the pipeline's stages."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from strata.auth import Principal
from strata.chat.protocol import ChatCompletionRequest, PromptUsed, UsageInfo
from strata.inference import ChatRequest, ModelTarget, RouteOutcome, Usage
from strata.observability import Timings
from strata.prompts import AssembledPrompt
from strata.validation import StreamValidator

if TYPE_CHECKING:
    from strata.throttle import Reservation


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the gateway knows of a request before the pipeline runs."""

    request_id: str  # ours: in the completion id and ``strata.request_id``, the key of feedback
    correlation_id: str = ""  # API Gateway's request id (the local gateway makes one too)
    auth_ms: float | None = None  # the authorizer's time, when the gateway measured it


@dataclass(slots=True)
class ChatTurn:
    request: ChatCompletionRequest
    principal: Principal
    context: RequestContext
    target: ModelTarget
    created: int = field(default_factory=lambda: int(time.time()))
    timings: Timings = field(default_factory=Timings)
    reservation: Reservation | None = None
    prompt: AssembledPrompt | None = None
    prompt_used: PromptUsed | None = None
    below_floor: int = 0  # sources found but less similar to the question than the floor
    not_in_documents: bool = False  # sources were found, none relevant: answered without the model
    json_schema: dict[str, Any] | None = None  # the schema the answer must match (response_format)
    json_outcome: Literal["valid", "repaired"] | None = None
    confidence: float | None = None
    model_request: ChatRequest | None = None
    prompt_tokens: int = 0  # the assembled prompt, counted with the model's own tokenizer
    cache_key: str | None = None
    cache_hit: bool = False
    outcome: RouteOutcome = field(default_factory=RouteOutcome)
    validators: list[StreamValidator] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)
    reported_usage: Usage = field(default_factory=Usage)  # what the upstream said it used
    usage: UsageInfo | None = None  # set once the answer is complete
    finish_reason: str | None = None
    status: str = "started"  # ok | error | client_disconnected | rate_limited | invalid_output
    error: str | None = None

    @property
    def request_id(self) -> str:
        return self.context.request_id

    @property
    def completion_id(self) -> str:
        return f"chatcmpl-{self.context.request_id}"

    @property
    def rate_limit_headers(self) -> dict[str, str]:
        return self.reservation.headers if self.reservation is not None else {}
