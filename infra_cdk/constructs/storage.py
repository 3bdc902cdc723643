"""Storage: the document drop (S3 bucket → event notifications → ingest SQS queue + dead-letter
queue) and the interaction log's bucket, whose records expire after the configured retention.

The chat page uploads straight to the documents bucket (a presigned POST the API grants), so the
bucket answers that page's origin with CORS. The page's CSP names the bucket and the bucket's CORS
rule names the page's distribution: a property of the bucket would make CloudFormation wait for
each before the other, so the rule is put by a custom resource once both exist (as CDK puts the
bucket's notifications).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra_cdk.constructs.buckets import private_bucket
from strata.config.resources import RESOURCES, BucketSpec, LogBucketSpec, QueueSpec

UPLOAD_CORS_RESOURCE_TYPE = "Custom::StrataUploadCors"
UPLOAD_CORS_MAX_AGE_S = 3600
"""How long a browser may cache the answer to an upload's preflight (Chromium caps it at 2 h)."""


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
    upload_origins
        Browser origins (``https://host``) that may POST files to the documents bucket: the chat
        page's, which sends the presigned uploads the API grants. May be deploy-time tokens.
        Default none: no CORS rule.
    log_retention
        Retention of the log group of the custom resource that puts the CORS rule. Default one
        month.
    """

    bucket: BucketSpec = RESOURCES.documents_bucket
    interactions: LogBucketSpec = RESOURCES.interactions_bucket
    interactions_retention_days: int = 90
    queue: QueueSpec = RESOURCES.ingest_queue
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    noncurrent_version_days: int = 30
    upload_origins: tuple[str, ...] = ()
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


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
    upload_origin
        ``https://<bucket>.s3.<region>.<url suffix>``: where the API's presigned POSTs send files
        (the library signs them for the bucket's regional virtual-hosted endpoint, see
        :func:`presigned_post_origin`); the page's CSP names it.
    upload_cors
        The custom resource that puts the bucket's one CORS rule (``POST`` from ``upload_origins``),
        or None without upload origins.
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

        stack = Stack.of(self)
        self.upload_origin = presigned_post_origin(self.bucket.bucket_name, stack.region, stack.url_suffix)
        self.upload_cors = (
            self._allow_uploads_from(props.upload_origins, props.log_retention) if props.upload_origins else None
        )

        destination = s3n.SqsDestination(self.queue)
        key_filter = s3.NotificationKeyFilter(prefix=props.bucket.prefix)
        for event in props.bucket.events:
            self.bucket.add_event_notification(s3_event_type(event), destination, key_filter)

    def _allow_uploads_from(self, origins: tuple[str, ...], log_retention: logs.RetentionDays) -> cr.AwsCustomResource:
        """Put the bucket's CORS configuration: one rule, ``POST`` from ``origins``.

        A form post of a ``FormData`` body sends only CORS-safelisted headers (its content type
        is ``multipart/form-data``), so the preflight a browser sends when the page watches the
        upload's progress asks for no header, and the rule allows none.
        """
        rule = {"AllowedMethods": ["POST"], "AllowedOrigins": list(origins), "MaxAgeSeconds": UPLOAD_CORS_MAX_AGE_S}
        put = cr.AwsSdkCall(
            service="S3",
            action="putBucketCors",
            parameters={"Bucket": self.bucket.bucket_name, "CORSConfiguration": {"CORSRules": [rule]}},
            physical_resource_id=cr.PhysicalResourceId.of(self.bucket.bucket_name),
        )
        # No on_delete: the rule goes with its bucket, and a retained bucket keeps a rule that
        # names a deleted distribution's domain, which no page can have.
        return cr.AwsCustomResource(
            self,
            "UploadCors",
            resource_type=UPLOAD_CORS_RESOURCE_TYPE,
            on_create=put,
            on_update=put,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["s3:PutBucketCORS"], resources=[self.bucket.bucket_arn])]
            ),
            install_latest_aws_sdk=False,
            log_group=logs.LogGroup(
                self, "UploadCorsLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
            ),
        )


def presigned_post_origin(bucket_name: str, region: str, url_suffix: str) -> str:
    """``https://<bucket>.s3.<region>.<url suffix>``: the origin of the presigned POSTs the library
    grants for ``bucket`` (``strata.documents.factory`` pins boto3 to the regional virtual-hosted
    endpoint, in us-east-1 too). Works on deploy-time tokens as on plain strings."""
    return f"https://{bucket_name}.s3.{region}.{url_suffix}"


def s3_event_type(event: str) -> s3.EventType:
    """``"s3:ObjectCreated:*"`` → ``EventType.OBJECT_CREATED``, ``"s3:ObjectRemoved:Delete"`` → ..."""
    parts = [part for part in event.removeprefix("s3:").split(":") if part != "*"]
    name = "_".join(re.sub(r"(?<!^)(?=[A-Z])", "_", part).upper() for part in parts)
    try:
        return s3.EventType[name]
    except KeyError:
        raise ValueError(f"unknown S3 event type {event!r}") from None
