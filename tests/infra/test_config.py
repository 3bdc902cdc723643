"""The cdk.json context is validated before any construct is built, with errors that name the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra_cdk.app import read_cdk_json_context
from infra_cdk.config import CONTEXT_KEY, ConfigError, StrataConfig
from strata.config import RESOURCES

VISIBILITY_S = RESOURCES.ingest_queue.visibility_timeout_s


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_json_context()[CONTEXT_KEY])


def _load(raw: dict[str, Any] | str) -> StrataConfig:
    return StrataConfig.from_context(raw, queue_visibility_timeout_s=VISIBILITY_S)


def test_cdk_json_context_is_a_valid_config(raw: dict[str, Any]) -> None:
    config = _load(raw)

    assert config.prefix == f"strata-{config.stage}"
    assert config.chat_endpoint_name != config.embedding_endpoint_name
    assert config.chat_model.instance_type.startswith("ml.")
    assert config.ingest.timeout_s * 6 <= VISIBILITY_S  # AWS: visibility timeout >= 6x function timeout


def test_context_given_as_a_json_string_is_parsed(raw: dict[str, Any]) -> None:
    assert _load(json.dumps(raw)) == _load(raw)


def test_missing_context_is_reported() -> None:
    with pytest.raises(ConfigError, match="'strata' is missing"):
        StrataConfig.from_context(None, queue_visibility_timeout_s=VISIBILITY_S)


def test_every_invalid_field_is_named_in_one_error(raw: dict[str, Any]) -> None:
    raw["chat_model"]["instance_type"] = "g5.xlarge"
    raw["search"]["data_nodes"] = 0
    raw["stage"] = "Prod"

    with pytest.raises(ConfigError) as excinfo:
        _load(raw)

    message = str(excinfo.value)
    assert "strata.chat_model.instance_type" in message
    assert "strata.search.data_nodes" in message
    assert "strata.stage" in message


def test_unknown_keys_are_rejected_so_typos_do_not_pass_silently(raw: dict[str, Any]) -> None:
    raw["search"]["instance_typ"] = "m7g.large.search"

    with pytest.raises(ConfigError, match=r"strata\.search\.instance_typ"):
        _load(raw)


def test_image_from_another_region_is_rejected(raw: dict[str, Any]) -> None:
    raw["embedding_model"]["image_uri"] = raw["embedding_model"]["image_uri"].replace(
        f".{raw['region']}.", ".eu-west-1."
    )

    with pytest.raises(ConfigError, match=r"embedding_model\.image_uri: image is in 'eu-west-1'"):
        _load(raw)


def test_image_outside_ecr_is_rejected(raw: dict[str, Any]) -> None:
    raw["chat_model"]["image_uri"] = "docker.io/vllm/vllm-openai:latest"

    with pytest.raises(ConfigError, match=r"chat_model\.image_uri: .* is not an ECR image URI"):
        _load(raw)


def test_ingest_timeout_longer_than_queue_visibility_is_rejected(raw: dict[str, Any]) -> None:
    raw["ingest"]["timeout_s"] = 300

    with pytest.raises(ConfigError, match=r"strata\.ingest\.timeout_s: 300 exceeds"):
        StrataConfig.from_context(raw, queue_visibility_timeout_s=120)


def test_a_model_registry_in_the_context_is_validated_and_passed_as_one_document(raw: dict[str, Any]) -> None:
    raw["models"] = {
        "default": {"provider": "sagemaker", "endpoint": "strata-dev-chat", "fallbacks": ["claude"]},
        "claude": {"provider": "bedrock", "model": "anthropic.claude-3-haiku-20240307-v1:0"},
    }
    config = _load(raw)
    assert json.loads(config.models_document)["models"]["claude"]["provider"] == "bedrock"

    raw["models"]["default"]["fallbacks"] = ["nope"]
    with pytest.raises(ConfigError, match=r"default\.fallbacks: unknown alias 'nope'"):
        _load(raw)


def test_without_a_registry_the_chat_window_comes_from_the_container_settings(raw: dict[str, Any]) -> None:
    config = _load(raw)
    assert config.models_document is None
    assert config.chat_context_window == int(raw["chat_model"]["environment"]["OPTION_MAX_MODEL_LEN"])


def test_models_and_models_parameter_exclude_each_other(raw: dict[str, Any]) -> None:
    raw["models"] = {"default": {"provider": "sagemaker", "endpoint": "e"}}
    raw["models_parameter"] = "/strata/models"
    with pytest.raises(ConfigError, match="either models or models_parameter"):
        _load(raw)


COGNITO_ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"


def test_jwt_sign_in_is_off_by_default(raw: dict[str, Any]) -> None:
    config = _load(raw)

    assert (config.jwt_issuer, config.jwt_audience, config.jwt_tenant_claim) == (None, None, None)


def test_a_cognito_issuer_with_an_audience_turns_jwt_sign_in_on(raw: dict[str, Any]) -> None:
    raw.update(jwt_issuer=COGNITO_ISSUER, jwt_audience="3n4b5urk1ft4fl3mg5e62d9ado", jwt_tenant_claim="custom:org")

    config = _load(raw)

    assert config.jwt_issuer == COGNITO_ISSUER
    assert config.jwt_audience == "3n4b5urk1ft4fl3mg5e62d9ado"
    assert config.jwt_tenant_claim == "custom:org"


@pytest.mark.parametrize(
    "issuer",
    [
        "http://cognito-idp.us-east-1.amazonaws.com/pool",
        "cognito-idp.us-east-1.amazonaws.com/pool",
        "https://",
        "https://h/?a=b",
    ],
)
def test_a_jwt_issuer_that_is_not_an_https_url_is_rejected(raw: dict[str, Any], issuer: str) -> None:
    raw.update(jwt_issuer=issuer, jwt_audience="client")

    with pytest.raises(ConfigError, match=r"strata\.jwt_issuer: .* is not an https URL"):
        _load(raw)


def test_a_jwt_issuer_without_an_audience_is_rejected(raw: dict[str, Any]) -> None:
    raw["jwt_issuer"] = COGNITO_ISSUER

    with pytest.raises(ConfigError, match=r"strata\.jwt_audience: required with jwt_issuer"):
        _load(raw)


def test_jwt_audience_or_tenant_claim_without_an_issuer_is_rejected(raw: dict[str, Any]) -> None:
    raw.update(jwt_audience="client", jwt_tenant_claim="custom:org")

    with pytest.raises(ConfigError) as excinfo:
        _load(raw)

    assert "strata.jwt_audience: set only with jwt_issuer" in str(excinfo.value)
    assert "strata.jwt_tenant_claim: set only with jwt_issuer" in str(excinfo.value)
