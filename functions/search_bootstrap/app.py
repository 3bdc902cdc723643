"""Search bootstrap: the CloudFormation custom resource that readies the chunk index at deploy time.

On Create and Update it runs the library's own ``OpenSearchVectorStore.bootstrap()`` (the index
with its mapping, the hybrid search pipeline: defined once, in :mod:`strata.retrieval.opensearch`)
and, when the managed domain has fine-grained access control, writes the read and write roles of
the chunk index and maps the stack's IAM roles to them (:mod:`functions.search_bootstrap.access`).
Every step is idempotent. Delete does nothing: the index holds the tenants' data.

CloudFormation waits for a response at the pre-signed ``ResponseURL`` (an hour, by default, when
none comes), so a response is always sent: SUCCESS, FAILED with the error, or FAILED from a timer
shortly before the function's own timeout.

Resource properties (set by ``infra_cdk.constructs.search.Search.add_bootstrap``; CloudFormation
passes scalars as strings):

``Index`` / ``Pipeline``
    Must match the function's settings (``STRATA_OPENSEARCH_INDEX``, ``<index>-hybrid``).
``Definition``
    A hash of the index and pipeline bodies: a new definition in the library makes an Update.
``FineGrainedAccess``
    ``"true"``: write the security-plugin roles and mappings.
``ReadRoles`` / ``WriteRoles``
    IAM role ARNs for the ``<index>-read`` and ``<index>-write`` mappings.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import TransportError

from functions.search_bootstrap.access import apply_index_roles, index_roles
from strata.config import Settings, get_settings
from strata.observability import function_logger, with_lambda_context
from strata.retrieval import OpenSearchVectorStore, VectorStoreUnavailableError, build_vector_store
from strata.retrieval.base import VectorStore

logger = function_logger("strata-search-bootstrap")

Status = Literal["SUCCESS", "FAILED"]
T = TypeVar("T")

RESPONSE_MARGIN_S = 10.0
"""Left before the function's timeout to send FAILED if the work has not finished."""
RETRY_BASE_S = 2.0
RETRY_MAX_S = 20.0
TRANSIENT_STATUS = frozenset({401, 403, 429, 502, 503, 504})
"""Retried: a new collection's data access policy or a new domain's security plugin takes a while
to take effect (401/403), and an overloaded or still-starting cluster answers 429/5xx."""
REASON_LIMIT = 1000


class BootstrapError(Exception):
    """The bootstrap cannot run with this configuration (wrong vector store, mismatched index)."""


@dataclass(frozen=True, slots=True)
class BootstrapProperties:
    """The custom resource's properties (see the module docstring)."""

    index: str
    pipeline: str
    fine_grained_access: bool
    read_roles: tuple[str, ...]
    write_roles: tuple[str, ...]

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> BootstrapProperties:
        properties = event.get("ResourceProperties", {})
        try:
            return cls(
                index=str(properties["Index"]),
                pipeline=str(properties["Pipeline"]),
                fine_grained_access=str(properties.get("FineGrainedAccess", "false")).lower() == "true",
                read_roles=tuple(properties.get("ReadRoles", ())),
                write_roles=tuple(properties.get("WriteRoles", ())),
            )
        except KeyError as exc:
            raise BootstrapError(f"the custom resource has no {exc.args[0]} property") from exc


def is_transient(exc: BaseException) -> bool:
    """Whether retrying ``exc`` later may succeed (it or its cause)."""
    for error in (exc, exc.__cause__):
        if isinstance(error, VectorStoreUnavailableError | OpenSearchConnectionError):
            return True
        if isinstance(error, TransportError) and error.status_code in TRANSIENT_STATUS:
            return True
    return False


def with_retries(call: Callable[[], T], *, deadline: float, sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, retried with exponential backoff on transient errors until ``deadline``
    (``time.monotonic()``); the last error propagates."""
    delay = RETRY_BASE_S
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay >= deadline:
                raise
            logger.warning("OpenSearch is not ready (%s); retrying in %.0f s", exc, delay)
        sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)


def bootstrap(
    event: dict[str, Any],
    *,
    deadline: float,
    settings: Settings | None = None,
    store_factory: Callable[[Settings], VectorStore] = build_vector_store,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str]:
    """Do what the request asks; returns the response's ``Data``."""
    if event["RequestType"] == "Delete":
        logger.info("stack delete or replacement: the index %s is kept", event.get("PhysicalResourceId"))
        return {}
    properties = BootstrapProperties.from_event(event)
    store = store_factory(settings or get_settings())
    if not isinstance(store, OpenSearchVectorStore):
        raise BootstrapError("STRATA_VECTOR_STORE must be 'opensearch' for the search bootstrap")
    if (store.index, store.pipeline) != (properties.index, properties.pipeline):
        raise BootstrapError(
            f"the function's settings name index {store.index!r} and pipeline {store.pipeline!r}; "
            f"the stack asks for {properties.index!r} and {properties.pipeline!r}"
        )
    created = with_retries(store.bootstrap, deadline=deadline, sleep=sleep)
    logger.info("index %s %s; pipeline %s written", store.index, "created" if created else "kept", store.pipeline)
    if properties.fine_grained_access:
        roles = index_roles(store.index, read_roles=properties.read_roles, write_roles=properties.write_roles)
        with_retries(lambda: apply_index_roles(store.client, roles), deadline=deadline, sleep=sleep)
        logger.info("mapped %s", {role.name: role.backend_roles for role in roles})
    return {"Index": store.index, "Pipeline": store.pipeline, "IndexCreated": str(created).lower()}


def physical_resource_id(event: dict[str, Any]) -> str:
    """The same id for the life of the resource, so an Update never looks like a replacement."""
    existing = event.get("PhysicalResourceId")
    if existing:
        return str(existing)
    return f"strata-search-bootstrap-{event.get('ResourceProperties', {}).get('Index', 'unknown')}"


Opener = Callable[[urllib.request.Request], Any]


class Responder:
    """Sends the one response CloudFormation waits for; later calls do nothing."""

    def __init__(self, event: dict[str, Any], *, opener: Opener | None = None) -> None:
        self._event = event
        self._opener = opener or (lambda request: urllib.request.urlopen(request, timeout=10))  # noqa: S310
        self._lock = threading.Lock()
        self.sent: Status | None = None

    def send(self, status: Status, *, reason: str = "", data: dict[str, str] | None = None) -> bool:
        with self._lock:
            if self.sent is not None:
                return False
            self.sent = status
        event = self._event
        body = json.dumps(
            {
                "Status": status,
                "Reason": reason[:REASON_LIMIT] or status,
                "PhysicalResourceId": physical_resource_id(event),
                "StackId": event["StackId"],
                "RequestId": event["RequestId"],
                "LogicalResourceId": event["LogicalResourceId"],
                "NoEcho": False,
                "Data": data or {},
            }
        ).encode()
        # The pre-signed S3 URL is signed for an empty content type.
        request = urllib.request.Request(
            event["ResponseURL"],
            data=body,
            method="PUT",
            headers={"Content-Type": "", "Content-Length": str(len(body))},
        )
        for attempt in range(3):
            try:
                self._opener(request)
                return True
            except OSError:
                logger.exception("sending the %s response failed (attempt %d)", status, attempt + 1)
                time.sleep(1.0)
        return False


def run(
    event: dict[str, Any],
    remaining_s: float,
    *,
    responder: Responder | None = None,
    work: Callable[..., dict[str, str]] = bootstrap,
) -> Status:
    """Run ``work`` and respond; a timer responds FAILED if the work outlives ``remaining_s``."""
    responder = responder or Responder(event)
    budget = max(remaining_s - RESPONSE_MARGIN_S, 0.0)
    timer = threading.Timer(budget, responder.send, args=("FAILED",), kwargs={"reason": "search bootstrap timed out"})
    timer.daemon = True
    timer.start()
    try:
        data = work(event, deadline=time.monotonic() + budget)
    except Exception as exc:
        logger.exception("search bootstrap failed")
        responder.send("FAILED", reason=f"{type(exc).__name__}: {exc}")
    else:
        responder.send("SUCCESS", data=data)
    finally:
        timer.cancel()
    assert responder.sent is not None
    return responder.sent


@with_lambda_context(logger)
def handler(event: dict[str, Any], context: Any) -> None:
    run(event, context.get_remaining_time_in_millis() / 1000)
