"""Model backends. The concrete ones import their heavy libraries only when loaded."""

from __future__ import annotations

from model_endpoint.backends.base import (
    ChatBackend,
    ChatMessage,
    ChatParams,
    EmbeddingBackend,
    GenerationEnd,
    GenerationEvent,
    TokenText,
    Usage,
)
from model_endpoint.backends.llama_cpp import LlamaCppChatBackend, default_gguf_path
from model_endpoint.backends.sentence_transformers import (
    SentenceTransformersEmbeddingBackend,
    default_embedding_model_path,
)

__all__ = (
    "ChatBackend",
    "ChatMessage",
    "ChatParams",
    "EmbeddingBackend",
    "GenerationEnd",
    "GenerationEvent",
    "LlamaCppChatBackend",
    "SentenceTransformersEmbeddingBackend",
    "TokenText",
    "Usage",
    "default_embedding_model_path",
    "default_gguf_path",
)
