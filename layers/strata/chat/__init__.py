"""The chat flow behind ``POST /v1/chat/completions``: a pipeline of stages over one turn."""

from strata.chat.exceptions import ChatError, ContextWindowExceededError
from strata.chat.pipeline import ChatPipeline
from strata.chat.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    StrataResponseExtension,
    StreamProgress,
)
from strata.chat.turn import ChatTurn, RequestContext, new_request_id

__all__ = (
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatError",
    "ChatMessage",
    "ChatPipeline",
    "ChatTurn",
    "ContextWindowExceededError",
    "RequestContext",
    "StrataResponseExtension",
    "StreamProgress",
    "new_request_id",
)
