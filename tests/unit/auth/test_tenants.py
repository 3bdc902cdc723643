"""Per-tenant limits against moto's DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from strata.auth import InvalidTenantError, Principal, TenantStore
from strata.throttle.types import Limits
from tests.unit.auth.support import create_auth_tables


@pytest.fixture
def tenants() -> Iterator[TenantStore]:
    with mock_aws():
        create_auth_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield TenantStore(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-tenants"))


def test_a_tenant_nobody_configured_is_unlimited(tenants: TenantStore) -> None:
    assert tenants.get_limits("acme") == Limits()


def test_setting_limits_replaces_them_as_a_whole(tenants: TenantStore) -> None:
    tenants.set_limits("acme", Limits(requests_per_minute=60, tokens_per_day=100_000))
    assert tenants.get_limits("acme") == Limits(requests_per_minute=60, tokens_per_day=100_000)

    tenants.set_limits("acme", Limits(tokens_per_minute=5000))

    # The fields left out are unlimited again, not kept.
    assert tenants.get_limits("acme") == Limits(tokens_per_minute=5000)


def test_one_tenants_limits_are_not_anothers(tenants: TenantStore) -> None:
    tenants.set_limits("acme", Limits(requests_per_minute=1))
    assert tenants.get_limits("globex") == Limits()


def test_setting_limits_keeps_the_tenants_other_settings() -> None:
    with mock_aws():
        create_auth_tables(boto3.client("dynamodb", region_name="us-east-1"))
        table = boto3.resource("dynamodb", region_name="us-east-1").Table("strata-tenants")
        table.put_item(Item={"tenant": "acme", "display_name": "ACME Corp"})

        TenantStore(table).set_limits("acme", Limits(requests_per_minute=3))

        assert table.get_item(Key={"tenant": "acme"})["Item"]["display_name"] == "ACME Corp"


@pytest.mark.parametrize("tenant", ["", "Acme", "../x"])
def test_tenant_names_unfit_for_keys_are_refused(tenants: TenantStore, tenant: str) -> None:
    with pytest.raises(InvalidTenantError):
        tenants.set_limits(tenant, Limits())


def test_personal_data_redaction_is_on_until_a_tenant_opts_out_and_survives_a_limits_change(
    tenants: TenantStore,
) -> None:
    assert tenants.get("acme").redact_pii is True
    tenants.set_pii_redaction("acme", False)
    tenants.set_limits("acme", Limits(requests_per_minute=5))
    assert tenants.get("acme").redact_pii is False and tenants.get("acme").limits == Limits(requests_per_minute=5)
    assert tenants.get("globex").redact_pii is True


def test_the_tenants_choice_travels_in_the_authorizer_context() -> None:
    principal = Principal(tenant="acme", key_id="k", redact_pii=False)
    assert Principal.from_context(principal.context()).redact_pii is False
    assert Principal.from_context(Principal(tenant="acme", key_id="k").context()).redact_pii is True


def test_a_tenant_can_have_its_own_chunking_and_go_back_to_the_default(tenants: TenantStore) -> None:
    assert tenants.get_chunking("acme") is None

    tenants.set_chunking("acme", 96, 16)
    tenants.set_pii_redaction("acme", False)

    assert tenants.get_chunking("acme") == (96, 16)
    assert tenants.get("acme").redact_pii is False, "other settings in the item survive"
    tenants.set_chunking("acme", None)
    assert tenants.get_chunking("acme") is None


@pytest.mark.parametrize(("tokens", "overlap"), [(8, 0), (300, 0), (64, 64), (64, -1)])
def test_chunk_sizes_the_embedding_model_cannot_read_are_refused(
    tenants: TenantStore, tokens: int, overlap: int
) -> None:
    with pytest.raises(ValueError, match="chunking needs"):
        tenants.set_chunking("acme", tokens, overlap)
