"""Inference: one provider interface (SageMaker, OpenAI-compatible HTTP, Bedrock), the model
registry, and the router that adds timeouts, retries, circuit breakers, fallbacks and caching."""

from strata.inference.base import ChatProvider, EmbeddingProvider, stream_from_completion
from strata.inference.bedrock import BedrockChatProvider
from strata.inference.breaker import (
    BreakerPolicy,
    BreakerRecord,
    BreakerState,
    CircuitBreakers,
    DynamoDBBreakerStore,
    InMemoryBreakerStore,
)
from strata.inference.cache import CachedEmbedder, ResponseCache, cache_key, is_cacheable
from strata.inference.exceptions import (
    AllTargetsUnavailableError,
    InferenceError,
    ModelRegistryError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    ModelWakingError,
    StreamInterruptedError,
    UnknownModelError,
)
from strata.inference.registry import (
    DEFAULT_ALIAS,
    ModelRegistry,
    ModelTarget,
    Timeouts,
    load_registry,
    parse_registry,
    registry_from_settings,
)
from strata.inference.router import InferenceRouter, RetryPolicy, RouteOutcome
from strata.inference.sagemaker import SageMakerChatProvider, SageMakerEmbedder
from strata.inference.sse import DONE, SSEDecoder, encode_sse, iter_sse_json
from strata.inference.tokens import TokenCounter, token_counter
from strata.inference.types import ChatEvent, ChatRequest, Completion, Finish, Message, TextDelta, Usage

__all__ = (
    "DEFAULT_ALIAS",
    "DONE",
    "AllTargetsUnavailableError",
    "BedrockChatProvider",
    "BreakerPolicy",
    "BreakerRecord",
    "BreakerState",
    "CachedEmbedder",
    "ChatEvent",
    "ChatProvider",
    "ChatRequest",
    "CircuitBreakers",
    "Completion",
    "DynamoDBBreakerStore",
    "EmbeddingProvider",
    "Finish",
    "InMemoryBreakerStore",
    "InferenceError",
    "InferenceRouter",
    "Message",
    "ModelRegistry",
    "ModelRegistryError",
    "ModelRequestError",
    "ModelTarget",
    "ModelTimeoutError",
    "ModelUnavailableError",
    "ModelWakingError",
    "ResponseCache",
    "RetryPolicy",
    "RouteOutcome",
    "SSEDecoder",
    "SageMakerChatProvider",
    "SageMakerEmbedder",
    "StreamInterruptedError",
    "TextDelta",
    "Timeouts",
    "TokenCounter",
    "UnknownModelError",
    "Usage",
    "cache_key",
    "encode_sse",
    "is_cacheable",
    "iter_sse_json",
    "load_registry",
    "parse_registry",
    "registry_from_settings",
    "stream_from_completion",
    "token_counter",
)
