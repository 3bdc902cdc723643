"""AWS on loopback: moto's server, with the resources the CDK app defines (from RESOURCES)."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto import backends as moto_backends
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer

from strata.config import RESOURCES, StackResources
from strata.config.resources import IndexSpec, TableSpec

logger = logging.getLogger(__name__)

# moto's fixed account; any credentials are accepted.
LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "strata-local", "AWS_SECRET_ACCESS_KEY": "strata-local"}


@dataclass(frozen=True, slots=True)
class LocalQueues:
    queue_url: str
    queue_arn: str
    dlq_url: str


def start_moto(host: str, port: int) -> ThreadedMotoServer:
    _cache_moto_module_list()
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    return server


def serialize_dynamodb() -> Callable[[], None]:
    """Make moto's DynamoDB answer one request at a time; return the function that undoes it.

    moto evaluates a ConditionExpression and then applies the write in plain Python with no lock,
    so two threads can both pass the same condition: 32 threads incrementing a counter under
    ``c < 100`` see ~250 successes, and two prompt writers both take version 3. Real DynamoDB
    applies each conditional write to an item atomically; this lock around moto's request dispatch
    gives the local stack (and the tests) the same guarantee, coarser: all requests, not per item.
    """
    lock = threading.Lock()
    original = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with lock:
            return original(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]

    def undo() -> None:
        DynamoHandler.call_action = original  # type: ignore[method-assign]

    return undo


def _cache_moto_module_list() -> None:
    """moto's server lists its own package folder from disk on every request to find the service
    (1.6 ms of CPU here, in the gateway's process); the list cannot change while it runs."""
    listing = moto_backends.list_of_moto_modules
    if not hasattr(listing, "cache_info"):
        modules = tuple(listing())
        moto_backends.list_of_moto_modules = functools.lru_cache(maxsize=1)(lambda: modules)


def create_buckets(s3: Any, resources: StackResources = RESOURCES) -> None:
    """The documents bucket and the interaction log's bucket."""
    for bucket in (resources.documents_bucket.name, resources.interactions_bucket.name):
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=bucket)


def create_queues(sqs: Any, resources: StackResources = RESOURCES) -> LocalQueues:
    spec = resources.ingest_queue
    dlq_url = sqs.create_queue(
        QueueName=spec.dlq_name,
        Attributes={"MessageRetentionPeriod": str(spec.dlq_retention_days * 86400)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=spec.name,
        Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_s),
            "MessageRetentionPeriod": str(spec.retention_days * 86400),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return LocalQueues(queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url)


def create_tables(dynamodb: Any, resources: StackResources = RESOURCES) -> None:
    existing = set(dynamodb.list_tables()["TableNames"])
    for spec in resources.tables:
        if spec.name in existing:
            continue
        indexes = [
            {"IndexName": index.name, "KeySchema": _key_schema(index), "Projection": {"ProjectionType": "ALL"}}
            for index in spec.indexes
        ]
        attributes = {
            key["AttributeName"] for schema in [_key_schema(spec), *(i["KeySchema"] for i in indexes)] for key in schema
        }
        dynamodb.create_table(
            TableName=spec.name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=_key_schema(spec),
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in sorted(attributes)],
            **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
        )
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=spec.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )


def _key_schema(spec: TableSpec | IndexSpec) -> list[dict[str, str]]:
    keys = [(spec.partition_key, "HASH")] + ([(spec.sort_key, "RANGE")] if spec.sort_key else [])
    return [{"AttributeName": name, "KeyType": kind} for name, kind in keys]


def enable_notifications(s3: Any, queue_arn: str, resources: StackResources = RESOURCES) -> None:
    """The bucket → queue notification, as the CDK app configures it (same events, same prefix)."""
    spec = resources.documents_bucket
    s3.put_bucket_notification_configuration(
        Bucket=spec.name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "strata-ingest",
                    "QueueArn": queue_arn,
                    "Events": list(spec.events),
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": spec.prefix}]}},
                }
            ]
        },
    )
