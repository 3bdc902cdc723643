from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.mock_upstream import Behaviour, MockUpstream
from tests.e2e.oidc import OidcIssuer, oidc_issuer
from tests.e2e.pages import CHROMIUM, launch_browser
from tests.support import RunningStack, start_stack

# The page's stack: "default" is a mock upstream the tests steer; "local" is the local model,
# scaled to zero, which wakes in WAKE_S; JWT sign-in is on, with an issuer that signs readers of
# SIGN_IN_TENANT in, beside the API keys.
WAKE_S = 8  # longer than the router waits by itself (max_retry_after_s), so the page sees it
BREAKER_COOLDOWN_S = 1
SIGN_IN_TENANT = "t-signin"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        running.stop()


@dataclass
class PageStack:
    stack: RunningStack
    upstream: MockUpstream
    issuer: OidcIssuer

    def key(self, tenant: str, *options: str) -> str:
        """A key of a tenant of its own (its own documents, limits and feedback)."""
        return self.stack.create_key(tenant, "--scopes", "chat,documents:write", *options)


@pytest.fixture(scope="session")
def page_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageStack]:
    workdir: Path = tmp_path_factory.mktemp("page-stack")
    with MockUpstream(Behaviour(seed=1)) as upstream, oidc_issuer(SIGN_IN_TENANT) as issuer:
        models = workdir / "models.yaml"
        models.write_text(
            "models:\n"
            "  default:\n"
            "    provider: openai\n"
            f"    base_url: {upstream.base_url}\n"
            "    model: mock\n"
            "    context_window: 8192\n"
            "    timeouts: {first_byte_s: 2}\n"
            "  local:\n"
            "    provider: sagemaker\n"
            "    endpoint: strata-chat\n"
        )
        env = {
            "STRATA_BREAKER_COOLDOWN_S": str(BREAKER_COOLDOWN_S),
            "STRATA_BREAKER_MIN_CALLS": "50",
            "STRATA_JWT_ISSUER": issuer.issuer,
            "STRATA_JWT_AUDIENCE": issuer.client_id,
        }
        args = ("--scale-to-zero", "600", "--wake-s", str(WAKE_S))
        running = start_stack(workdir, models_file=models, env=env, args=args)
        try:
            yield PageStack(running, upstream, issuer)
        finally:
            running.stop()


@pytest.fixture
def upstream(page_stack: PageStack) -> Iterator[MockUpstream]:
    """The page stack's upstream, healthy and answering at once, for each test."""
    mock = page_stack.upstream
    mock.configure(
        error_rate=0.0,
        hang_rate=0.0,
        cut_rate=0.0,
        malformed_rate=0.0,
        chunks=20,
        chunk_text="tok{i} ",
        chunk_delay_s=0.0,
        first_byte_delay_s=0.0,
        retry_after_s=None,
    )
    mock.reset_stats()
    time.sleep(BREAKER_COOLDOWN_S)  # a breaker an earlier test opened is half-open again
    yield mock


# Per module: Playwright's sync API runs an event loop on this thread while the browser is open,
# and the tests that come after the browser tests run loops of their own.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None:
        pytest.skip("needs Chromium: apt-get install chromium (make test does)")
    with launch_browser() as launched:
        yield launched
