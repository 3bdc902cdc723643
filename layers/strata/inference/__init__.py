"""Inference: calls to the SageMaker chat and embedding endpoints."""

from strata.inference.exceptions import InferenceError, ModelRequestError, ModelUnavailableError, UnknownModelError
from strata.inference.sagemaker import SageMakerChatModel, SageMakerEmbedder
from strata.inference.sse import DONE, SSEDecoder, encode_sse, iter_sse_json

__all__ = (
    "DONE",
    "InferenceError",
    "ModelRequestError",
    "ModelUnavailableError",
    "SSEDecoder",
    "SageMakerChatModel",
    "SageMakerEmbedder",
    "UnknownModelError",
    "encode_sse",
    "iter_sse_json",
)
