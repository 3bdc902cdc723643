"""What the running server holds: its config, its backends and, once loaded, the serving objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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

    @property
    def ready(self) -> bool:
        return self.chat is not None and self.embeddings is not None


def server_state(request: Request) -> ServerState:
    return request.app.state.server
