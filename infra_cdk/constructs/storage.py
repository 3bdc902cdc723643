"""Storage: the document drop (S3 bucket → event notifications → ingest SQS queue + dead-letter
queue) and the interaction log's bucket, whose records expire after the configured retention."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.constructs.buckets import private_bucket
from strata.config.resources import RESOURCES, BucketSpec, LogBucketSpec, QueueSpec


@dataclass(frozen=True, slots=True)
class StorageProps:
    """Props of :class:`Storage`.

    bucket
        Prefix and events that notify the queue. Default ``RESOURCES.documents_bucket``.
    interactions
        The interaction log's bucket. Default ``RESOURCES.interactions_bucket``.
    interactions_retention_days
        Days an interaction record is kept (it holds prompts and answers). Default 90.
    queue
        Visibility timeout, redrive count and retention. Default ``RESOURCES.ingest_queue``.
    removal_policy
        What deleting the stack does to the buckets. Default ``RETAIN``.
    noncurrent_version_days
        Days an overwritten or deleted document version is kept (the bucket is versioned).
        Default 30.
    """

    bucket: BucketSpec = RESOURCES.documents_bucket
    interactions: LogBucketSpec = RESOURCES.interactions_bucket
    interactions_retention_days: int = 90
    queue: QueueSpec = RESOURCES.ingest_queue
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    noncurrent_version_days: int = 30


class Storage(Construct):
    """Documents bucket whose object events under the tenant prefix feed the ingest queue, and the
    interaction log's bucket.

    Attributes
    ----------
    bucket
        Versioned, SSE-S3, TLS-only, public access blocked, server access logs on.
    interactions_bucket
        The same protections, not versioned (records are written once); records expire after
        ``interactions_retention_days``.
    access_logs
        Bucket receiving both buckets' server access logs.
    queue
        The ingest queue (SSE-SQS, TLS-only), redriving to ``dlq`` after ``max_receive_count``.
    dlq
        The dead-letter queue where poison documents end up.
    """

    def __init__(self, scope: Construct, construct_id: str, props: StorageProps | None = None) -> None:
        super().__init__(scope, construct_id)
        props = props or StorageProps()

        self.dlq = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(props.queue.dlq_retention_days),
        )
        # SSE-SQS (not a customer KMS key) so that S3 can deliver notifications without a key grant.
        self.queue = sqs.Queue(
            self,
            "IngestQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(props.queue.visibility_timeout_s),
            retention_period=Duration.days(props.queue.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=props.queue.max_receive_count, queue=self.dlq),
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,  # log delivery supports SSE-S3 only
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=props.removal_policy,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        self.bucket = private_bucket(
            self,
            "Documents",
            access_logs=self.access_logs,
            access_logs_prefix="documents/",
            removal_policy=props.removal_policy,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    noncurrent_version_expiration=Duration.days(props.noncurrent_version_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                # The parts of an ingestion that never finished (its run was abandoned): a run
                # removes its own when it lands or is superseded.
                s3.LifecycleRule(
                    prefix=props.bucket.staging_prefix,
                    expiration=Duration.days(2),
                    noncurrent_version_expiration=Duration.days(1),
                ),
            ],
        )

        self.interactions_bucket = private_bucket(
            self,
            "Interactions",
            access_logs=self.access_logs,
            access_logs_prefix="interactions/",
            removal_policy=props.removal_policy,
            lifecycle_rules=[
                s3.LifecycleRule(
                    prefix=props.interactions.prefix,
                    expiration=Duration.days(props.interactions_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )

        destination = s3n.SqsDestination(self.queue)
        key_filter = s3.NotificationKeyFilter(prefix=props.bucket.prefix)
        for event in props.bucket.events:
            self.bucket.add_event_notification(s3_event_type(event), destination, key_filter)


def s3_event_type(event: str) -> s3.EventType:
    """``"s3:ObjectCreated:*"`` → ``EventType.OBJECT_CREATED``, ``"s3:ObjectRemoved:Delete"`` → ..."""
    parts = [part for part in event.removeprefix("s3:").split(":") if part != "*"]
    name = "_".join(re.sub(r"(?<!^)(?=[A-Z])", "_", part).upper() for part in parts)
    try:
        return s3.EventType[name]
    except KeyError:
        raise ValueError(f"unknown S3 event type {event!r}") from None
