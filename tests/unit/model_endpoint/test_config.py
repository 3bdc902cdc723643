"""ServerConfig: the new knobs read from the environment and checked at start-up."""

from __future__ import annotations

import pytest

from model_endpoint import ServerConfig


def test_server_config_reads_batching_admission_and_shutdown_settings_from_env():
    env = {
        "STRATA_EMBEDDING_BATCHING": "off",
        "STRATA_EMBEDDING_BATCH_WINDOW_MS": "4.5",
        "STRATA_EMBEDDING_MAX_BATCH_SIZE": "64",
        "STRATA_MAX_QUEUED_GENERATIONS": "3",
        "STRATA_GRACEFUL_SHUTDOWN_S": "12",
    }

    config = ServerConfig.from_env(env)

    assert config.embedding_batching is False
    assert config.embedding_batch_window_ms == 4.5
    assert config.embedding_max_batch_size == 64
    assert config.max_queued_generations == 3
    assert config.graceful_shutdown_s == 12
    assert ServerConfig.from_env(env, embedding_batching=True).embedding_batching is True  # a flag wins


def test_server_config_defaults_batch_embeddings_and_bound_the_generation_queue():
    config = ServerConfig.from_env({})

    assert config.embedding_batching is True
    assert 0 < config.embedding_batch_window_ms <= 5
    assert config.max_concurrent_generations == 1
    assert config.max_queued_generations == 16


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"STRATA_EMBEDDING_BATCHING": "sometimes"}, "STRATA_EMBEDDING_BATCHING"),
        ({"STRATA_EMBEDDING_BATCH_WINDOW_MS": "soon"}, "STRATA_EMBEDDING_BATCH_WINDOW_MS"),
        ({"STRATA_EMBEDDING_MAX_BATCH_SIZE": "0"}, "embedding_max_batch_size"),
        ({"STRATA_MAX_QUEUED_GENERATIONS": "-1"}, "max_queued_generations"),
    ],
)
def test_server_config_fails_at_start_up_on_a_bad_value(env: dict[str, str], fragment: str):
    with pytest.raises(ValueError, match=fragment):
        ServerConfig.from_env(env)
