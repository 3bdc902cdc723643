from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata_local.aws import create_tables


@pytest.fixture
def table() -> Iterator[Any]:
    """The prompts table, in moto's DynamoDB."""
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield boto3.resource("dynamodb", region_name="us-east-1").Table("strata-prompts")
