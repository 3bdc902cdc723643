"""One settings object, read once from ``STRATA_*`` environment variables.

The CDK app passes the same names to the Lambdas; the local stack writes them to
``.strata/local.env``. Explicit arguments win over the environment (``Settings(x=...)``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from strata.config.resources import RESOURCES

ENV_PREFIX = "STRATA_"


class Settings(BaseSettings):
    # Frozen: settings are read once and shared (and hashable, so clients can be cached per settings).
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # AWS: endpoint URLs stay unset in the cloud; locally they point at moto and the model server.
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    sagemaker_runtime_url: str | None = None
    bedrock_runtime_url: str | None = None

    # Resources (physical names; CDK overrides them with the generated ones).
    documents_bucket: str = RESOURCES.documents_bucket.name
    ingest_queue: str = RESOURCES.ingest_queue.name
    ingest_dlq: str = RESOURCES.ingest_queue.dlq_name
    keys_table: str = RESOURCES.keys_table.name
    documents_table: str = RESOURCES.documents_table.name
    breakers_table: str = RESOURCES.breakers_table.name
    response_cache_table: str = RESOURCES.response_cache_table.name
    tenants_table: str = RESOURCES.tenants_table.name
    rate_limits_table: str = RESOURCES.rate_limits_table.name
    prompts_table: str = RESOURCES.prompts_table.name
    feedback_table: str = RESOURCES.feedback_table.name
    tenant_prefix: str = RESOURCES.documents_bucket.prefix

    # Models: the registry of aliases (strata.inference.registry) comes from ``models`` (a YAML or
    # JSON document; the CDK app passes it), else ``models_parameter``, else ``models_file``, else
    # one alias ``default`` on the SageMaker chat endpoint below, with the local model's window
    # and tokenizer.
    models: str | None = None
    models_parameter: str | None = None  # an SSM parameter holding the document
    models_file: Path | None = None
    chat_endpoint: str = "strata-chat"
    # The inference component on that endpoint that serves the chat model (the CDK app's
    # scale-to-zero deployment); none: the endpoint's own model.
    chat_inference_component: str | None = None
    # What a caller is told to wait (Retry-After) while a scaled-to-zero target starts: a GPU
    # instance and its model take minutes; the local model server's wake takes --wake-s.
    model_wake_retry_after_s: float = Field(default=60.0, gt=0, le=3600)
    chat_context_window: int = Field(default=2048, ge=16)
    chat_tokenizer: str | None = "smollm2"
    embedding_endpoint: str = "strata-embed"
    max_output_tokens: int = Field(default=256, ge=1, le=4096)
    # Decoding defaults sent upstream with every call of the default alias, as a JSON object (a
    # registry file sets them per alias as ``parameters``), e.g. '{"repetition_penalty": 1.1}'.
    # Text, not a dict: settings are hashed (they key the cached clients).
    chat_parameters: str = "{}"
    # A target's breaker opens when this share of a container's last ``breaker_window`` calls to
    # it failed (at least ``breaker_min_calls`` of them), for ``breaker_cooldown_s``.
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_window: int = Field(default=20, ge=1)
    breaker_min_calls: int = Field(default=5, ge=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    response_cache_ttl_s: int = Field(default=3600, ge=0)  # 0 turns the response cache off

    # Authentication: API keys are stored as HMAC-SHA256 hashes keyed by a pepper. No default: a
    # public one would make the stored hashes guessable. In AWS it is read from Secrets Manager at
    # cold start (``key_pepper_secret``, never the environment); locally from a file in .strata/;
    # tests pass ``key_pepper`` itself.
    key_pepper: SecretStr | None = None
    key_pepper_secret: str | None = None  # Secrets Manager secret id (ARN or name)
    key_pepper_file: Path | None = None
    # Optional JWT sign-in (Cognito user pools): tokens signed by the issuer's JWKS, for this
    # audience (the app client id); the tenant comes from one claim, the scopes from another.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_jwks_url: str | None = None  # default: {issuer}/.well-known/jwks.json
    jwt_tenant_claim: str = "custom:tenant"
    jwt_scopes_claim: str = "scope"
    jwt_default_scopes: str = "chat"
    # Where the chat page signs in with that issuer (its hosted sign-in and token endpoint, e.g.
    # a Cognito user pool domain); read by the local stack for the page, default the issuer's origin.
    jwt_sign_in_origin: str | None = None

    # Rate limits: a container leases a slice of a bucket (at most this share of its limit) so
    # that most requests touch no table; unused units go back after ``rate_limit_lease_s``.
    rate_limit_lease_fraction: float = Field(default=0.05, gt=0, le=1)
    rate_limit_lease_s: float = Field(default=2.0, gt=0)

    # Request limits, checked before a body is parsed.
    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)

    # Browser origins allowed to call the API, comma-separated (the deployed frontend's); none
    # when the page is served from the API's own origin, as the local stack does.
    cors_origins: str = ""

    # Request logging: prompt and answer text only when asked, and redacted then.
    log_content: bool = False
    metrics_namespace: str = "Strata"

    # The interaction log (strata.interactions): every chat turn as JSON Lines under this prefix of
    # its own bucket.
    interaction_log: bool = True
    interactions_bucket: str = RESOURCES.interactions_bucket.name
    interactions_prefix: str = RESOURCES.interactions_bucket.prefix

    # Retrieval and ingestion.
    vector_store: Literal["local", "opensearch"] = "local"
    vector_store_path: Path = Path(".strata/vectors.db")
    opensearch_endpoint: str | None = None
    opensearch_index: str = "strata-chunks"
    # The OpenSearch chunks index (strata.retrieval.opensearch.IndexConfig): HNSW graph
    # parameters (m and ef_construction are fixed when the index is created), the query-time
    # ef_search, and whether the endpoint is Serverless (SigV4 service aoss).
    opensearch_knn_m: int = Field(default=16, ge=2, le=100)
    opensearch_knn_ef_construction: int = Field(default=128, ge=2)
    opensearch_knn_ef_search: int = Field(default=100, ge=2)
    opensearch_serverless: bool = False
    retrieval_k: int = Field(default=4, ge=1, le=50)
    retrieval_mode: Literal["vector", "keyword", "hybrid"] = "hybrid"
    # The least cosine similarity (query to chunk, all-MiniLM-L6-v2 locally) a source needs to be
    # given to the model. Found documents that all fall below it get an honest "not in your
    # documents" instead of an answer made up from unrelated text. Chosen on wiki-qa: see
    # bench/RESULTS.md, "Relevance floor". -1 turns it off.
    retrieval_min_similarity: float = Field(default=0.35, ge=-1, le=1)
    # After the search (strata.retrieval.retriever): a TEI-shaped `POST /rerank` endpoint
    # re-orders the candidates (None: no re-ranking), then MMR drops near-copies of hits already
    # kept (None: off; 1.0 relevance only, lower values favour variety). Either stage searches
    # `retrieval_candidates` hits first (at least k) and keeps k.
    rerank_url: str | None = None
    rerank_timeout_s: float = Field(default=5.0, gt=0)
    retrieval_mmr_lambda: float | None = Field(default=None, ge=0, le=1)
    retrieval_candidates: int = Field(default=20, ge=1, le=100)
    # all-MiniLM-L6-v2 reads at most 256 tokens, [CLS] and [SEP] included.
    chunk_tokens: int = Field(default=200, ge=16, le=254)
    chunk_overlap_tokens: int = Field(default=40, ge=0)
    max_document_bytes: int = 50 * 1024 * 1024
    # Ingestion's time budget per invocation: a longer document goes on in a continuation
    # message at the back of the queue, so that one tenant's big file does not hold up the
    # others (and no invocation outlives the function's timeout or the queue's visibility).
    ingest_time_budget_s: float = Field(default=300.0, gt=0)

    @field_validator("chat_parameters")
    @classmethod
    def _a_json_object(cls, value: str) -> str:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"chat_parameters is not JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise ValueError("chat_parameters must be a JSON object")
        return value

    @model_validator(mode="after")
    def _overlap_fits_the_chunk(self) -> Settings:
        if self.chunk_overlap_tokens >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap_tokens ({self.chunk_overlap_tokens}) must be below chunk_tokens ({self.chunk_tokens})"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once (FastAPI injects this with ``Depends``)."""
    return Settings()
