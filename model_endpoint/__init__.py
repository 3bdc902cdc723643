"""Strata's model server: SageMaker's container contract on the CPU.

``POST /invocations`` takes OpenAI chat completions (``messages``; buffered or SSE) or TEI
embeddings (``inputs``); ``/endpoints/{name}/invocations[-response-stream]`` answer the
SageMaker runtime API so boto3's ``sagemaker-runtime`` client works against it unchanged.
"""

from __future__ import annotations

from model_endpoint.app import create_app
from model_endpoint.backends.base import ChatBackend, EmbeddingBackend
from model_endpoint.config import ENV, ServerConfig

__all__ = ("ENV", "ChatBackend", "EmbeddingBackend", "ServerConfig", "create_app")
