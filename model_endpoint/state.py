"""What the running server holds: its config, its backends and, once loaded, the serving objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from model_endpoint.exceptions import ModelNotReadyError, ServerDrainingError, ServiceUnavailableError
from model_endpoint.scale_to_zero import ScaleToZero

if TYPE_CHECKING:
    from starlette.requests import Request

    from model_endpoint.backends.base import ChatBackend, EmbeddingBackend
    from model_endpoint.config import ServerConfig
    from model_endpoint.serving_chat import OpenAIServingChat
    from model_endpoint.serving_embeddings import TEIServingEmbeddings

__all__ = ("ServerState", "server_state")


@dataclass(slots=True)
class ServerState:
    config: ServerConfig
    chat_backend: ChatBackend
    embedding_backend: EmbeddingBackend
    # None until the models are loaded: /ping answers 503 and requests are refused until then.
    chat: OpenAIServingChat | None = None
    embeddings: TEIServingEmbeddings | None = None
    load_error: str | None = None
    # Set when shutdown begins (SIGTERM): requests in flight finish, new ones are refused with 503
    # and /ping turns 503 so a load balancer stops sending any.
    draining: bool = False
    # Set (from the config, unless given) when the chat model scales to zero; None: always on.
    # A test swaps in one with a fake clock.
    chat_capacity: ScaleToZero | None = None

    def __post_init__(self) -> None:
        idle_s = self.config.scale_to_zero_after_s
        if self.chat_capacity is None and idle_s is not None:
            self.chat_capacity = ScaleToZero(idle_s=idle_s, wake_s=self.config.wake_s)

    @property
    def ready(self) -> bool:
        """Both models loaded and not shutting down: what /ping reports."""
        return self.chat is not None and self.embeddings is not None and not self.draining

    def unavailable_error(self) -> ServiceUnavailableError:
        """Why the server cannot take a request now (call it when ``ready`` is false)."""
        if self.draining:
            return ServerDrainingError(
                "the server is shutting down; retry, another instance will answer",
                retry_after_s=self.config.retry_after_s,
            )
        if self.load_error:
            return ModelNotReadyError(f"the models failed to load: {self.load_error}")
        return ModelNotReadyError("the models are still loading; retry when GET /ping answers 200")


def server_state(request: Request) -> ServerState:
    return request.app.state.server
