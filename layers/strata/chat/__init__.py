"""The chat flow behind ``POST /v1/chat/completions``."""

from strata.chat.exceptions import ChatError, ContextWindowExceededError
from strata.chat.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Citation,
    StrataResponseExtension,
)
from strata.chat.service import ChatService, PreparedChat, new_request_id

__all__ = (
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatError",
    "ContextWindowExceededError",
    "ChatMessage",
    "ChatService",
    "Citation",
    "PreparedChat",
    "StrataResponseExtension",
    "new_request_id",
)
