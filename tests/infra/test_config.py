"""The cdk.json context is validated before any construct is built, with errors that name the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra_cdk.app import read_cdk_json_context
from infra_cdk.config import CONTEXT_KEY, ConfigError, StrataConfig
from strata.config import RESOURCES
from strata.config.resources import EventSourceSpec, StackResources


@pytest.fixture
def raw() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_json_context()[CONTEXT_KEY])


def _load(raw: dict[str, Any] | str, stage: str | None = None) -> StrataConfig:
    return StrataConfig.from_context(raw, stage=stage)


def test_cdk_json_context_is_a_valid_config_for_each_stage(raw: dict[str, Any]) -> None:
    dev, prod = _load(raw), _load(raw, "prod")

    assert (dev.stage, dev.prefix, prod.prefix) == ("dev", "strata-dev", "strata-prod")
    assert dev.chat_endpoint_name != dev.embedding_endpoint_name
    assert dev.chat_model.instance_type and dev.chat_model.instance_type.startswith("ml.")
    # dev is cheap at idle, prod keeps a warm copy and embedding instances.
    assert dev.chat_model.scaling.scale_to_zero and not prod.chat_model.scaling.scale_to_zero
    assert dev.embedding_model.serverless is not None and prod.embedding_model.instance_type is not None
    assert dev.search.data_nodes == 1 and prod.search.data_nodes == 3


def test_a_stage_overrides_only_what_it_names_and_objects_merge_key_by_key(raw: dict[str, Any]) -> None:
    raw["environments"]["qa"] = {
        "chat_model": {"scaling": {"max_copies": 3}},
        "embedding_model": {"serverless": {}},
        "search": {"volume_size_gb": 30},
    }

    qa = _load(raw, "qa")

    assert qa.chat_model.scaling.max_copies == 3
    assert qa.chat_model.model_id == raw["chat_model"]["model_id"]  # the shared value, kept
    assert qa.search.volume_size_gb == 30 and qa.search.index == raw["search"]["index"]


def test_an_unknown_stage_names_the_stages_there_are(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="no stage 'staging'; the stages are dev, prod"):
        _load(raw, "staging")


def test_images_are_resolved_for_the_region_from_the_sagemaker_sdk_tables(raw: dict[str, Any]) -> None:
    raw["region"] = "eu-west-1"
    config = _load(raw)

    chat, embedding = config.image_uri(config.chat_model), config.image_uri(config.embedding_model)

    assert ".dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.36.0-lmi" in chat
    assert ".dkr.ecr.eu-west-1.amazonaws.com/tei-cpu:" in embedding and "tei1.8.2" in embedding


def test_an_image_version_the_sdk_does_not_know_is_rejected_with_the_versions_it_knows(raw: dict[str, Any]) -> None:
    raw["chat_model"]["image"]["version"] = "0.1.0"

    with pytest.raises(ConfigError, match=r"strata\.chat_model\.image: Unsupported djl-lmi version: 0\.1\.0.*0\.36\.0"):
        _load(raw)


def test_the_ingest_function_may_not_outlive_its_queues_visibility_timeout() -> None:
    with pytest.raises(ValueError, match="exceeds the ingest queue's visibility timeout"):
        StackResources(
            **{
                **{name: getattr(RESOURCES, name) for name in ("documents_bucket", "interactions_bucket")},
                **{
                    spec: getattr(RESOURCES, spec)
                    for spec in (
                        "keys_table",
                        "documents_table",
                        "breakers_table",
                        "response_cache_table",
                        "tenants_table",
                        "rate_limits_table",
                        "prompts_table",
                        "feedback_table",
                    )
                },
                "ingest_queue": RESOURCES.ingest_queue,
                "ingest_source": EventSourceSpec(function_timeout_s=RESOURCES.ingest_queue.visibility_timeout_s + 1),
            }
        )
    assert RESOURCES.ingest_source.function_timeout_s * 6 <= RESOURCES.ingest_queue.visibility_timeout_s


def test_context_given_as_a_json_string_is_parsed(raw: dict[str, Any]) -> None:
    assert _load(json.dumps(raw)) == _load(raw)


def test_missing_context_is_reported() -> None:
    with pytest.raises(ConfigError, match="'strata' is missing"):
        StrataConfig.from_context(None)


def test_every_invalid_field_is_named_in_one_error(raw: dict[str, Any]) -> None:
    raw["chat_model"]["instance_type"] = "g5.xlarge"
    raw["environments"]["prod"]["search"]["data_nodes"] = 0
    raw["environments"]["prod"]["chat_model"]["scaling"]["max_copies"] = -1

    with pytest.raises(ConfigError) as excinfo:
        _load(raw, "prod")

    message = str(excinfo.value)
    assert "stage 'prod'" in message
    assert "strata.chat_model.instance_type" in message
    assert "strata.search.data_nodes" in message
    assert "strata.chat_model.scaling.max_copies" in message


def test_cross_field_problems_are_named(raw: dict[str, Any]) -> None:
    raw["environments"]["dev"]["embedding_model"]["instance_type"] = "ml.c6i.xlarge"  # and serverless
    raw["environments"]["dev"]["chat_model"]["scaling"].update(min_copies=3, max_copies=2)
    raw["chat_model"]["image_uri"] = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:x"  # and image

    with pytest.raises(ConfigError) as excinfo:
        _load(raw)

    message = str(excinfo.value)
    assert "strata.embedding_model: set exactly one of instance_type and serverless" in message
    assert "strata.chat_model.scaling.max_copies: 2 is below min_copies (3)" in message
    assert "strata.chat_model: set exactly one of image" in message


def test_unknown_keys_are_rejected_so_typos_do_not_pass_silently(raw: dict[str, Any]) -> None:
    raw["search"]["instance_typ"] = "m7g.large.search"

    with pytest.raises(ConfigError, match=r"strata\.search\.instance_typ"):
        _load(raw)


def test_image_from_another_region_is_rejected(raw: dict[str, Any]) -> None:
    del raw["embedding_model"]["image"]
    raw["embedding_model"]["image_uri"] = (
        "683313688378.dkr.ecr.eu-west-1.amazonaws.com/tei-cpu:2.0.1-tei1.8.2-cpu-py310-ubuntu22.04"
    )

    with pytest.raises(ConfigError, match=r"embedding_model\.image_uri: image is in 'eu-west-1'"):
        _load(raw)


def test_image_outside_ecr_is_rejected(raw: dict[str, Any]) -> None:
    del raw["chat_model"]["image"]
    raw["chat_model"]["image_uri"] = "docker.io/vllm/vllm-openai:latest"

    with pytest.raises(ConfigError, match=r"chat_model\.image_uri: .* is not an ECR image URI"):
        _load(raw)


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


COGNITO_DOMAIN = "https://strata-dev.auth.us-east-1.amazoncognito.com"


@pytest.mark.parametrize("origin", [COGNITO_DOMAIN, "https://login.example.com:8443"])
def test_a_sign_in_origin_with_an_issuer_lets_the_page_sign_in(raw: dict[str, Any], origin: str) -> None:
    raw.update(jwt_issuer=COGNITO_ISSUER, jwt_audience="client", jwt_sign_in_origin=origin)

    assert _load(raw).jwt_sign_in_origin == origin


def test_a_sign_in_origin_without_an_issuer_is_rejected(raw: dict[str, Any]) -> None:
    raw["jwt_sign_in_origin"] = COGNITO_DOMAIN

    with pytest.raises(ConfigError, match=r"stage 'dev':\n  strata\.jwt_sign_in_origin: set only with jwt_issuer"):
        _load(raw)


@pytest.mark.parametrize(
    "origin",
    [
        "http://strata-dev.auth.us-east-1.amazoncognito.com",
        "strata-dev.auth.us-east-1.amazoncognito.com",
        f"{COGNITO_DOMAIN}/",
        f"{COGNITO_DOMAIN}/oauth2/token",
        f"{COGNITO_DOMAIN}?a=b",
        f"{COGNITO_DOMAIN}#top",
        "https://user@strata-dev.auth.us-east-1.amazoncognito.com",
        "https://login.example.com:port",
        "https://",
    ],
)
def test_a_sign_in_origin_that_is_not_an_https_origin_is_rejected(raw: dict[str, Any], origin: str) -> None:
    raw.update(jwt_issuer=COGNITO_ISSUER, jwt_audience="client", jwt_sign_in_origin=origin)

    with pytest.raises(ConfigError, match=r"stage 'dev':\n  strata\.jwt_sign_in_origin: .* is not an https origin"):
        _load(raw)
