from __future__ import annotations

from pathlib import Path

import pytest

from strata.config import Settings
from strata.inference import ModelRegistryError, UnknownModelError, load_registry, registry_from_settings

CONTRACT = """
models:
  default:                 # the alias a client sends as "model"
    provider: openai       # openai | sagemaker | bedrock
    base_url: http://127.0.0.1:18080/v1
    model: mock            # the upstream's own model name
    context_window: 8192
    fallbacks: [backup]    # tried in order when this target is open or fails before the first byte
  backup:
    provider: sagemaker
    endpoint: strata-chat
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_the_contract_file_loads(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, CONTRACT))
    assert registry.aliases == ["default", "backup"]
    assert registry.chain("default") == ["default", "backup"]
    assert registry.target("default").context_window == 8192
    assert registry.target("backup").endpoint == "strata-chat"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "models:\n  default:\n    provider: openai\n    model: m\n",
            "models.default: Value error, provider 'openai' needs base_url",
        ),
        ("models:\n  default:\n    provider: azure\n    model: m\n", "models.default.provider: Input should be"),
        ("models:\n  other:\n    provider: sagemaker\n    endpoint: e\n", "an alias named 'default' is required"),
        (
            "models:\n  default:\n    provider: sagemaker\n    endpoint: e\n    fallbacks: [nope]\n",
            "default.fallbacks: unknown alias 'nope'",
        ),
        ("models:\n  default:\n    provider: sagemaker\n    endpoint: e\n    contxt_window: 9\n", "contxt_window"),
        ("models: [\n", "not valid YAML"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ModelRegistryError) as raised:
        load_registry(path)
    assert str(path) in str(raised.value) or "YAML" in str(raised.value)
    assert message in str(raised.value)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelRegistryError, match="cannot read the models file"):
        load_registry(tmp_path / "absent.yaml")


def test_without_a_registry_default_is_the_sagemaker_chat_endpoint() -> None:
    registry = registry_from_settings(Settings(chat_endpoint="my-chat"))
    assert registry.aliases == ["default"]
    assert registry.target("default").provider == "sagemaker"
    assert registry.target("default").endpoint == "my-chat"


def test_the_settings_document_wins_over_the_file(tmp_path: Path) -> None:
    settings = Settings(
        models='{"models": {"default": {"provider": "bedrock", "model": "anthropic.claude"}}}',
        models_file=write(tmp_path, CONTRACT),
    )
    assert registry_from_settings(settings).target("default").provider == "bedrock"


def test_an_unknown_alias_is_unknown_model() -> None:
    with pytest.raises(UnknownModelError):
        registry_from_settings(Settings()).target("gpt-9")


def test_the_registry_can_come_from_an_ssm_parameter() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("ssm", region_name="us-east-1").put_parameter(Name="/strata/models", Value=CONTRACT, Type="String")
        registry = registry_from_settings(Settings(models_parameter="/strata/models"))
        assert registry.chain("default") == ["default", "backup"]
        with pytest.raises(ModelRegistryError, match="SSM parameter /strata/absent: cannot be read"):
            registry_from_settings(Settings(models_parameter="/strata/absent"))
