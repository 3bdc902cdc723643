from __future__ import annotations

from strata.config import Settings
from strata.inference import parse_registry
from strata.inference.factory import build_chat_provider


def test_model_clients_have_botocores_retries_off_and_a_buffered_read_timeout_of_total_s() -> None:
    registry = parse_registry(
        {
            "models": {
                "default": {"provider": "sagemaker", "endpoint": "e", "timeouts": {"first_byte_s": 7, "total_s": 90}},
                "claude": {"provider": "bedrock", "model": "anthropic.claude", "region": "eu-west-1"},
            }
        },
        source="test",
    )
    settings = Settings()
    sagemaker = build_chat_provider("default", registry.target("default"), settings)
    stream_config, buffered_config = sagemaker._client.meta.config, sagemaker._buffered_client.meta.config
    assert stream_config.read_timeout == 7 and buffered_config.read_timeout == 90
    assert stream_config.retries["total_max_attempts"] == 1 == buffered_config.retries["total_max_attempts"]

    bedrock = build_chat_provider("claude", registry.target("claude"), settings)
    assert bedrock._client.meta.region_name == "eu-west-1"
    assert bedrock._buffered_client.meta.config.read_timeout == 300
