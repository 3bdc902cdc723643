"""The AWS resources Strata needs, defined once.

The CDK app builds the cloud resources from these specs and the local stack creates the same
resources in moto from them, so names, keys and queue settings cannot drift between the two.
In the cloud, CDK generates unique physical names and hands them to the Lambdas through the
``STRATA_*`` environment variables; locally the logical names below are used as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A global secondary index (string keys, every attribute projected)."""

    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A DynamoDB table: on-demand billing, string keys."""

    name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[IndexSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """An SQS queue with its dead-letter queue."""

    name: str
    dlq_name: str
    visibility_timeout_s: int
    max_receive_count: int
    retention_days: int = 4
    dlq_retention_days: int = 14


@dataclass(frozen=True, slots=True)
class EventSourceSpec:
    """How the ingest function consumes its queue: Lambda's event source mapping in the cloud and
    the local poller read the same values.

    ``function_timeout_s`` must stay within the queue's visibility timeout, or a message would
    come back while its first delivery is still being processed (AWS recommends a sixth of it).
    """

    batch_size: int = 5
    max_concurrency: int = 5
    function_timeout_s: int = 150
    report_batch_item_failures: bool = True


@dataclass(frozen=True, slots=True)
class LogBucketSpec:
    """The interaction log's bucket: records under ``prefix`` expire after the deployment's
    retention (the CDK config's ``interactions_retention_days``)."""

    name: str
    prefix: str = "interactions/"


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """The documents bucket; object events under ``prefix`` notify the ingest queue.

    ``staging_prefix`` holds the parts of long documents being ingested (strata.ingest.continuation),
    outside ``prefix`` so that no notification or ingestion ever sees them.
    """

    name: str
    prefix: str = "tenants/"
    staging_prefix: str = "ingest-staging/"
    events: tuple[str, ...] = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """The public API's gateway: how long an authorizer's policy is reused per ``Authorization``
    header (API Gateway's result cache; the local gateway keeps the same cache)."""

    authorizer_cache_ttl_s: int = 60


@dataclass(frozen=True, slots=True)
class StackResources:
    documents_bucket: BucketSpec
    interactions_bucket: LogBucketSpec
    ingest_queue: QueueSpec
    ingest_source: EventSourceSpec
    keys_table: TableSpec
    documents_table: TableSpec
    breakers_table: TableSpec
    response_cache_table: TableSpec
    tenants_table: TableSpec
    rate_limits_table: TableSpec
    prompts_table: TableSpec
    feedback_table: TableSpec
    api: ApiSpec = field(default_factory=ApiSpec)
    tables: tuple[TableSpec, ...] = field(init=False)

    def __post_init__(self) -> None:
        tables = tuple(
            value for value in (getattr(self, f.name) for f in fields(self) if f.init) if isinstance(value, TableSpec)
        )
        object.__setattr__(self, "tables", tables)
        if self.ingest_source.function_timeout_s > self.ingest_queue.visibility_timeout_s:
            raise ValueError(
                f"the ingest function's timeout ({self.ingest_source.function_timeout_s} s) exceeds the "
                f"ingest queue's visibility timeout ({self.ingest_queue.visibility_timeout_s} s)"
            )


RESOURCES = StackResources(
    documents_bucket=BucketSpec(name="strata-documents"),
    # Prompts and answers for the quality report and fine-tuning exports: their own bucket, so
    # that they expire on their own schedule and the operations team can read them without
    # reading the documents.
    interactions_bucket=LogBucketSpec(name="strata-interactions"),
    # Lambda needs the visibility timeout to be at least the ingest function's timeout
    # (AWS recommends six times); three receives before a poison document goes to the DLQ.
    ingest_queue=QueueSpec(
        name="strata-ingest",
        dlq_name="strata-ingest-dlq",
        visibility_timeout_s=900,
        max_receive_count=3,
    ),
    ingest_source=EventSourceSpec(batch_size=5, max_concurrency=5, function_timeout_s=150),
    # API keys by their visible id (the item holds only the keyed hash of the key), listed per tenant.
    keys_table=TableSpec(
        name="strata-keys", partition_key="key_id", indexes=(IndexSpec("by-tenant", "tenant", "created_at"),)
    ),
    # The document registry: one item per document, queried by tenant.
    documents_table=TableSpec(name="strata-documents", partition_key="tenant", sort_key="document_id"),
    # One circuit-breaker item per model target, shared by every container.
    breakers_table=TableSpec(name="strata-breakers", partition_key="target"),
    # Answers to deterministic requests, by a hash of everything that shaped them; they expire.
    response_cache_table=TableSpec(name="strata-response-cache", partition_key="key", ttl_attribute="expires_at"),
    # Per-tenant settings: the tenant's rate limits and daily token quota.
    tenants_table=TableSpec(name="strata-tenants", partition_key="tenant"),
    # Rate-limit buckets (per key and tenant, per minute and per day), updated only by atomic
    # conditional writes; a day's quota item expires after the day.
    rate_limits_table=TableSpec(name="strata-rate-limits", partition_key="bucket", ttl_attribute="expires_at"),
    # Prompt versions: one item per (tenant, name, version).
    prompts_table=TableSpec(name="strata-prompts", partition_key="tenant", sort_key="prompt_version"),
    # Ratings and comments on answers, by the request id the answer carried.
    feedback_table=TableSpec(name="strata-feedback", partition_key="tenant", sort_key="request_id"),
)
