"""The running local stack against its own ``/openapi.json``: schemathesis, every check, no failure.

The run is the CLI's (``st run``), in a subprocess, with this module as its hooks module
(``SCHEMATHESIS_HOOKS``). What the run is told, and why:

- ``PUT /v1/limits`` runs apart, with a tenant of its own: it sets the tenant's rate limits, and
  tiny ones on the tenant the main run uses would turn its later requests into 429s, which are
  documented but would leave the chat and embeddings routes untested.
- The key schemathesis sends is kept out of its own hands: stateful links learn every key id
  from ``GET /v1/keys`` (the caller's too), and a ``PATCH`` or ``DELETE`` of the caller's key
  would strip its scopes or revoke it mid-run. ``before_call`` points such a request at a decoy
  key of the same tenant instead: the same operation, a real key, the same checks.
- ``expires_at`` of a new key must lie in the future, which JSON Schema cannot say: ``before_call``
  moves a generated past instant (still a valid date-time) into the future.
- The model's context window is a property of the deployment, not of the document: the stack's
  model takes more tokens than any body the 1 MiB limit admits, so a long conversation is not
  refused for its length (the unit tests hold the context-length check).
- ``filter_failure`` drops ``use_after_free`` on ``/v1/keys/{key_id}``: ``DELETE`` there revokes a
  key, and the record stays readable with its ``revoked_at`` (the keys routes' unit tests hold
  this), so a read after the ``DELETE`` answering 200 is the documented behaviour.
- ``filter_failure`` drops ``ensure_resource_availability`` on ``/v1/documents/{document_id}``: ``POST
  /v1/documents`` grants an upload (a presigned S3 POST); the document exists once its file lands
  in S3, so a read right after the grant answering 404 is the documented behaviour.
- ``filter_failure`` drops ``not_a_server_error`` on ``/v1/chat/completions`` answered 502
  ``invalid_model_output``: the mock upstream writes words, never JSON, so a request for a JSON
  ``response_format`` gets, as documented, a 502 after the one repair attempt (the unit tests
  hold the check and the repair against a model that can write JSON).
- Three rules of the prompts that JSON Schema cannot say are kept by ``before_call``: a new
  version's template uses exactly the variables it declares (it is replaced by one that does);
  ``GET /v1/prompts/{name}`` takes a version or a label, not both (the label is dropped); a chat
  request's prompt variables must be the ones its prompt declares (they are emptied).
- Each request may take 60 s: 2048 inputs to the CPU embedding model take longer than 10 s.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.common import start_strata_with_models
from bench.mock_upstream import Behaviour, MockUpstream
from strata.auth import parse_api_key
from tests.support import REPO_ROOT, RunningStack

# Hooks run inside the `st` process; these name the caller's key and its decoy.
OWN_KEY_ENV = "STRATA_CONFORMANCE_OWN_KEY_ID"
DECOY_KEY_ENV = "STRATA_CONFORMANCE_DECOY_KEY_ID"
KEY_PATH = "/v1/keys/{key_id}"
DOCUMENT_PATH = "/v1/documents/{document_id}"
CHAT_PATH = "/v1/chat/completions"
# CI-sized: every operation, every phase, 3 examples each (about 2.5 minutes on 2 cores, most of
# it POST /v1/documents: generating paths from its exact pattern is slow).
MAX_EXAMPLES = int(os.environ.get("STRATA_CONFORMANCE_EXAMPLES", "3"))
SEED = os.environ.get("STRATA_CONFORMANCE_SEED", "1")


# --- schemathesis hooks (loaded by `st` through SCHEMATHESIS_HOOKS) ---------------------------

try:
    import schemathesis
except ImportError:  # pragma: no cover - schemathesis is a dev dependency
    schemathesis = None

if schemathesis is not None:

    @schemathesis.hook
    def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
        # Here, not in map_* hooks: the coverage phase builds its cases without those.
        endpoint = (case.operation.method.upper(), case.operation.path)
        if endpoint in (("PATCH", KEY_PATH), ("DELETE", KEY_PATH)):
            _spare_the_callers_key(case)
        elif endpoint == ("POST", "/v1/keys"):
            _expire_in_the_future(case)
        elif endpoint == ("POST", "/v1/prompts"):
            _a_template_using_its_variables(case)
        elif endpoint == ("GET", "/v1/prompts/{name}"):
            _version_or_label(case)
        elif endpoint == ("POST", "/v1/chat/completions"):
            _no_prompt_variables(case)

    @schemathesis.hook
    def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
        """False for the two stateful checks whose premise these operations do not share."""
        kind = type(failure).__name__
        path = case.operation.path
        if kind == "UseAfterFree" and path == KEY_PATH:
            return False
        if kind == "ServerError" and path == CHAT_PATH and _invalid_model_output(response):
            return False
        return not (kind == "EnsureResourceAvailability" and path == DOCUMENT_PATH)


def _invalid_model_output(response: Any) -> bool:
    try:
        error = response.json().get("error", {})
    except Exception:
        return False
    return response.status_code == 502 and isinstance(error, dict) and error.get("code") == "invalid_model_output"


def _a_template_using_its_variables(case: Any) -> None:
    # A template must be Jinja that uses exactly the variables it declares: not a JSON Schema rule.
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("variables"), list):
        named = [v for v in body["variables"] if isinstance(v, dict) and isinstance(v.get("name"), str)]
        variables = list({v["name"]: v for v in named}.values())  # a name declared twice is a 400
        body["variables"] = variables
        for variable in variables:  # a default makes a variable optional: required with one is a 400
            if variable.get("required") is True and variable.get("default") is not None:
                del variable["default"]
        names = [v["name"] for v in variables]
        body["template"] = "Answer." + "".join(f" {{{{ {name} }}}}" for name in names)


def _version_or_label(case: Any) -> None:
    # Query parameters cannot be exclusive in OpenAPI: a version and a label together are a 400.
    query = case.query or {}
    if "version" in query and "label" in query:
        case.query = {key: value for key, value in query.items() if key != "label"}


def _no_prompt_variables(case: Any) -> None:
    # Which variables a prompt declares is the tenant's data, not the document's.
    strata = case.body.get("strata") if isinstance(case.body, dict) else None
    prompt = strata.get("prompt") if isinstance(strata, dict) else None
    if isinstance(prompt, dict):
        prompt["variables"] = {}


def _spare_the_callers_key(case: Any) -> None:
    own, decoy = os.environ.get(OWN_KEY_ENV), os.environ.get(DECOY_KEY_ENV)
    if own and decoy and (case.path_parameters or {}).get("key_id") == own:
        case.path_parameters = {**case.path_parameters, "key_id": decoy}


def _expire_in_the_future(case: Any) -> None:
    body = case.body
    if not (isinstance(body, dict) and isinstance(body.get("expires_at"), str)):
        return
    try:
        when = datetime.fromisoformat(body["expires_at"])
    except ValueError:
        return
    now = datetime.now(UTC)
    if when.tzinfo is not None and when <= now:
        # The same instant of a later year as leap as its own (29 February stays a date), the
        # string otherwise untouched: still the same date-time form, the time zone kept.
        year = now.year + 4 + (when.year - now.year) % 4
        case.body = {**body, "expires_at": body["expires_at"].replace(f"{when.year:04d}", f"{year:04d}", 1)}


# --- the stack and the runs ------------------------------------------------------------------


@dataclass
class Conformance:
    stack: RunningStack
    workdir: Path

    def key(self, tenant: str) -> str:
        return self.stack.create_key(tenant, "--scopes", "chat,documents:write,admin")

    def decoy(self, secret: str) -> str:
        with self.stack.http(secret) as client:
            response = client.post("/v1/keys", json={"name": "conformance decoy", "scopes": ["chat"]})
        assert response.status_code == 201, response.text
        return response.json()["key"]["id"]

    def run(self, secret: str, *selection: str, name: str) -> subprocess.CompletedProcess[str]:
        base = self.stack.base_url
        command = [
            str(Path(sys.executable).with_name("st")),
            "run",
            f"{base}/openapi.json",
            "--url",
            base,
            "-H",
            f"Authorization: Bearer {secret}",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            # One worker: CPython 3.11.7's ast.parse is not thread-safe ("AST constructor
            # recursion depth mismatch"), and hypothesis parses sources when it names a filter.
            "--workers",
            "1",
            "--seed",
            SEED,
            # Generating POST /v1/documents' paths from their exact pattern is slow, and slower on a
            # busy machine: hypothesis's "too slow" check says so about the generator, not the API.
            "--suppress-health-check",
            "too_slow",
            "--request-timeout",
            "60",
            "--max-response-time",
            "60",
            "--no-color",
            "--generation-database",
            "none",
            "--report",
            "junit",
            "--report-dir",
            str(self.workdir / f"report-{name}"),
            *selection,
        ]
        environment = {
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.e2e.test_conformance",
            "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
            OWN_KEY_ENV: parse_api_key(secret),
            DECOY_KEY_ENV: self.decoy(secret),
        }
        return subprocess.run(
            command, capture_output=True, text=True, cwd=REPO_ROOT, env=environment, timeout=900, check=False
        )


@pytest.fixture(scope="module")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conformance]:
    workdir = tmp_path_factory.mktemp("conformance")
    with MockUpstream(Behaviour(seed=1)) as upstream:
        default = {
            "provider": "openai",
            "base_url": upstream.base_url,
            "model": "mock",
            # More than any conversation within the body limit holds (see the module's docstring).
            "context_window": 16_000_000,
            "max_output_tokens": 64,
        }
        stack = start_strata_with_models(workdir, {"default": default})
        try:
            yield Conformance(stack, workdir)
        finally:
            stack.stop()


def summary(run: subprocess.CompletedProcess[str]) -> str:
    """The failures and the summary of an `st run`, for the assertion message."""
    output = run.stdout + run.stderr
    start = output.find("=== FAILURES ===")
    if start == -1:
        start = output.find("=== ERRORS ===")
    return output[start - 40 :] if start != -1 else output[-6000:]


def assert_clean(run: subprocess.CompletedProcess[str]) -> None:
    output = run.stdout + run.stderr
    assert run.returncode == 0, summary(run)
    # The last line reads e.g. "=== 123 passed in 45.6s ===": no failure, no error.
    assert not re.search(r"\b\d+ (failures?|errors?)\b", output.splitlines()[-1] if output else ""), summary(run)
    assert re.search(r"Test cases:\s+\d+ generated", output), summary(run)


def assert_key_intact(stack: RunningStack, secret: str) -> None:
    """The run cannot have changed the key it used (see ``before_call``)."""
    with stack.http(secret) as client:
        response = client.get(f"/v1/keys/{parse_api_key(secret)}")
    assert response.status_code == 200, response.text
    assert response.json()["revoked_at"] is None
    assert response.json()["scopes"] == ["admin", "chat", "documents:write"]


def test_every_operation_conforms_to_the_document(conformance: Conformance) -> None:
    secret = conformance.key("conformance")

    run = conformance.run(secret, "--exclude-name", "PUT /v1/limits", name="main")

    assert_clean(run)
    assert_key_intact(conformance.stack, secret)


def test_setting_limits_conforms_to_the_document(conformance: Conformance) -> None:
    secret = conformance.key("conformance-limits")

    run = conformance.run(secret, "--include-path", "/v1/limits", name="limits")

    assert_clean(run)
    with conformance.stack.http(secret) as client:
        assert client.get("/v1/limits").status_code == 200
