"""build_rate_limiter: the DynamoDB table and lease settings from Settings."""

from __future__ import annotations

import time

from moto import mock_aws

from strata import aws
from strata.config import Settings
from strata.throttle import Limits, build_rate_limiter
from strata_local.aws import create_tables


def test_build_rate_limiter_uses_the_configured_table_and_lease_settings() -> None:
    settings = Settings(rate_limit_lease_fraction=0.5, rate_limit_lease_s=7.0, aws_region="us-east-1")
    with mock_aws():
        create_tables(aws.client("dynamodb", settings))
        table = aws.resource("dynamodb", settings).Table(settings.rate_limits_table)
        limiter = build_rate_limiter(settings)
        for _ in range(4):
            limiter.admit(
                tenant="acme", key_id="k1", key_limits=Limits(requests_per_minute=10), tenant_limits=Limits(), tokens=5
            ).settle(4)
        # Leases of 1 and then 5 requests (the cap is half of 10; 5% would cap them at 1): 6 taken.
        taken = float(table.get_item(Key={"bucket": "key#requests#k1"})["Item"]["tat"]) - time.time()
        limiter.close()
        items = {item["bucket"]: item for item in table.scan()["Items"]}

    assert 6 * 6 - 1 < taken <= 6 * 6
    assert limiter._lease_s == 7.0
    assert int(items[f"day#acme#{time.strftime('%Y-%m-%d', time.gmtime())}"]["used"]) == 16
