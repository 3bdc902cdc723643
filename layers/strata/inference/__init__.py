"""Inference: calls to the SageMaker chat and embedding endpoints."""

from strata.inference.exceptions import InferenceError, ModelUnavailableError, UnknownModelError
from strata.inference.sagemaker import SageMakerChatModel, SageMakerEmbedder
from strata.inference.sse import SSEDecoder, encode_sse, iter_sse_json

__all__ = (
    "InferenceError",
    "ModelUnavailableError",
    "SSEDecoder",
    "SageMakerChatModel",
    "SageMakerEmbedder",
    "UnknownModelError",
    "encode_sse",
    "iter_sse_json",
)
