"""The search bootstrap custom resource against the in-memory OpenSearch and a fake response URL:
what it writes (the library's own index and pipeline, the fine-grained access roles), that it is
idempotent, that Delete keeps the index, and that CloudFormation always gets exactly one answer."""

from __future__ import annotations

import json
import threading
from functools import partial
from typing import Any

import pytest

from functions.search_bootstrap import app as bootstrap_app
from functions.search_bootstrap.access import SECURITY_API
from functions.search_bootstrap.app import Responder, bootstrap, run
from strata.config import Settings
from strata.retrieval import OpenSearchVectorStore, build_vector_store
from tests.unit.retrieval.fake_opensearch import FakeCluster, Reply, Request, fake_client

INDEX = "strata-chunks"
PIPELINE = f"{INDEX}-hybrid"
READER = "arn:aws:iam::111111111111:role/strata-chat"
WRITER = "arn:aws:iam::111111111111:role/strata-ingest"
RESPONSE_URL = "https://cloudformation-custom-resource-response.s3.amazonaws.com/signed"


class SecuredCluster(FakeCluster):
    """The fake cluster plus the security plugin's REST API (roles and role mappings), and a
    scripted queue of replies served before the normal routing (to inject errors)."""

    def __init__(self) -> None:
        super().__init__()
        self.roles: dict[str, Any] = {}
        self.mappings: dict[str, Any] = {}
        self.scripted: list[Reply] = []

    def handle(self, request: Request) -> Reply:
        if self.scripted:
            self.requests.append(request)
            return self.scripted.pop(0)
        if request.path.startswith(SECURITY_API):
            self.requests.append(request)
            kind, name = request.path.removeprefix(SECURITY_API + "/").split("/")
            if kind == "rolesmapping" and name not in self.roles:
                return 404, {"status": "NOT_FOUND", "message": f"role {name} not found"}
            (self.roles if kind == "roles" else self.mappings)[name] = request.body
            return 200, {"status": "OK"}
        return super().handle(request)


class FakeResponseUrl:
    """Records what would be PUT to CloudFormation's pre-signed URL."""

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []
        self.received = threading.Event()

    def __call__(self, request: Any) -> None:
        assert request.get_method() == "PUT" and request.full_url == RESPONSE_URL
        assert request.get_header("Content-type") == ""
        self.responses.append(json.loads(request.data))
        self.received.set()


def _event(request_type: str, *, fine_grained: bool = False, physical_id: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "ServiceToken": "arn:aws:lambda:us-east-1:111111111111:function:bootstrap",
        "Index": INDEX,
        "Pipeline": PIPELINE,
        "Definition": "abc",
        "FineGrainedAccess": "true" if fine_grained else "false",
    }
    if fine_grained:
        properties |= {"ReadRoles": [READER], "WriteRoles": [WRITER]}
    event = {
        "RequestType": request_type,
        "ResponseURL": RESPONSE_URL,
        "StackId": "arn:aws:cloudformation:us-east-1:111111111111:stack/strata/1",
        "RequestId": "request-1",
        "LogicalResourceId": "SearchBootstrap",
        "ResourceType": "Custom::StrataSearchBootstrap",
        "ResourceProperties": properties,
    }
    if physical_id:
        event["PhysicalResourceId"] = physical_id
    return event


@pytest.fixture
def cluster() -> SecuredCluster:
    return SecuredCluster()


@pytest.fixture
def url() -> FakeResponseUrl:
    return FakeResponseUrl()


def _settings(index: str = INDEX) -> Settings:
    return Settings(vector_store="opensearch", opensearch_endpoint="https://search.test", opensearch_index=index)


def _run(
    event: dict[str, Any],
    cluster: SecuredCluster,
    url: FakeResponseUrl,
    *,
    settings: Settings | None = None,
    sleeps: list[float] | None = None,
) -> str:
    sleeps = [] if sleeps is None else sleeps
    work = partial(
        bootstrap,
        settings=settings or _settings(),
        store_factory=lambda s: build_vector_store(s, client=fake_client(cluster)),
        sleep=sleeps.append,
    )
    return run(event, 60.0, responder=Responder(event, opener=url), work=work)


def _library_store() -> OpenSearchVectorStore:
    store = build_vector_store(_settings(), client=fake_client(FakeCluster()))
    assert isinstance(store, OpenSearchVectorStore)
    return store


def test_create_writes_the_librarys_index_and_pipeline_and_answers_success(
    cluster: SecuredCluster, url: FakeResponseUrl
) -> None:
    assert _run(_event("Create"), cluster, url) == "SUCCESS"

    store = _library_store()
    assert cluster.indices[INDEX] == store.index_body()
    assert cluster.pipelines[PIPELINE] == store.pipeline_body()
    [response] = url.responses
    assert response["Status"] == "SUCCESS"
    assert response["PhysicalResourceId"] == f"strata-search-bootstrap-{INDEX}"
    assert (response["StackId"], response["RequestId"], response["LogicalResourceId"]) == (
        "arn:aws:cloudformation:us-east-1:111111111111:stack/strata/1",
        "request-1",
        "SearchBootstrap",
    )
    assert response["Data"] == {"Index": INDEX, "Pipeline": PIPELINE, "IndexCreated": "true"}


def test_update_on_an_existing_index_keeps_it_and_keeps_the_physical_id(
    cluster: SecuredCluster, url: FakeResponseUrl
) -> None:
    _run(_event("Create"), cluster, url)
    cluster.documents[INDEX]["chunk-1"] = {"tenant": "t1", "text": "kept"}

    assert _run(_event("Update", physical_id="kept-id"), cluster, url) == "SUCCESS"

    assert cluster.documents[INDEX] == {"chunk-1": {"tenant": "t1", "text": "kept"}}
    assert [r["Data"].get("IndexCreated") for r in url.responses] == ["true", "false"]
    assert url.responses[1]["PhysicalResourceId"] == "kept-id"
    assert not [r for r in cluster.requests if r.method == "DELETE"]


def test_delete_never_touches_the_index(cluster: SecuredCluster, url: FakeResponseUrl) -> None:
    _run(_event("Create"), cluster, url)
    before = len(cluster.requests)

    assert _run(_event("Delete", physical_id="kept-id"), cluster, url) == "SUCCESS"

    assert len(cluster.requests) == before
    assert INDEX in cluster.indices
    assert url.responses[-1]["Status"] == "SUCCESS"
    assert url.responses[-1]["PhysicalResourceId"] == "kept-id"


def test_fine_grained_access_maps_exactly_the_granted_roles_to_index_roles(
    cluster: SecuredCluster, url: FakeResponseUrl
) -> None:
    assert _run(_event("Create", fine_grained=True), cluster, url) == "SUCCESS"

    assert cluster.mappings == {
        f"{INDEX}-read": {"backend_roles": [READER]},
        f"{INDEX}-write": {"backend_roles": [WRITER]},
    }
    read, write = cluster.roles[f"{INDEX}-read"], cluster.roles[f"{INDEX}-write"]
    assert read["index_permissions"] == [{"index_patterns": [INDEX], "allowed_actions": ["read"]}]
    assert read["cluster_permissions"] == ["cluster_composite_ops_ro"]
    assert write["index_permissions"] == [
        {"index_patterns": [INDEX], "allowed_actions": ["crud", "create_index", "manage"]}
    ]
    assert "cluster:admin/search/pipeline/put" in write["cluster_permissions"]


def test_without_fine_grained_access_no_security_api_call_is_made(
    cluster: SecuredCluster, url: FakeResponseUrl
) -> None:
    _run(_event("Create"), cluster, url)
    assert not [r for r in cluster.requests if r.path.startswith(SECURITY_API)]


def test_an_authorization_error_while_policies_propagate_is_retried(
    cluster: SecuredCluster, url: FakeResponseUrl
) -> None:
    cluster.scripted = [(403, {"message": "User does not have permissions"})] * 2
    sleeps: list[float] = []

    assert _run(_event("Create"), cluster, url, sleeps=sleeps) == "SUCCESS"

    assert INDEX in cluster.indices
    assert sleeps == [bootstrap_app.RETRY_BASE_S, 2 * bootstrap_app.RETRY_BASE_S]


def test_a_rejected_request_answers_failed_with_the_error(cluster: SecuredCluster, url: FakeResponseUrl) -> None:
    cluster.scripted = [(400, {"error": {"type": "mapper_parsing_exception", "reason": "bad mapping"}})]
    sleeps: list[float] = []

    assert _run(_event("Create"), cluster, url, sleeps=sleeps) == "FAILED"

    assert sleeps == []  # not retried

    [response] = url.responses
    assert response["Status"] == "FAILED"
    assert "VectorStoreError" in response["Reason"] and "400" in response["Reason"]


def test_settings_that_name_another_index_fail_instead_of_bootstrapping_it(
    cluster: SecuredCluster, url: FakeResponseUrl
) -> None:
    assert _run(_event("Create"), cluster, url, settings=_settings("other-index")) == "FAILED"

    assert "BootstrapError" in url.responses[0]["Reason"]
    assert cluster.requests == []


def test_missing_properties_answer_failed(cluster: SecuredCluster, url: FakeResponseUrl) -> None:
    event = _event("Create")
    del event["ResourceProperties"]["Index"]

    assert _run(event, cluster, url) == "FAILED"
    assert "Index" in url.responses[0]["Reason"]


def test_work_that_outlives_the_function_is_answered_failed_before_the_timeout(url: FakeResponseUrl) -> None:
    event = _event("Create")
    responder = Responder(event, opener=url)

    def stuck(event: dict[str, Any], *, deadline: float) -> dict[str, str]:
        assert url.received.wait(timeout=5), "the timer did not answer"
        return {"late": "true"}

    status = run(event, bootstrap_app.RESPONSE_MARGIN_S + 0.05, responder=responder, work=stuck)

    assert status == "FAILED"
    assert [r["Status"] for r in url.responses] == ["FAILED"]
    assert "timed out" in url.responses[0]["Reason"]
