"""The chat page in a real browser (Debian's Chromium, driven by Playwright)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from strata.documents import document_id_for
from tests.support import DATASET, RunningStack

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium (make test does)")

# Counts how often the answer's text changes while it streams.
COUNT_UPDATES = """
window.answerUpdates = 0;
new MutationObserver(() => { window.answerUpdates += 1; })
  .observe(document.getElementById('conversation'), {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_page_streams_the_answer_and_lists_the_cited_documents(stack: RunningStack, browser: object) -> None:
    key = f"tenants/{stack.env['STRATA_TENANT']}/page/otter.txt"
    stack.boto3_client("s3").put_object(
        Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"],
        Key=key,
        Body=(DATASET / "documents" / "s08_set1_a7_otter.txt").read_bytes(),
    )
    stack.wait_for_status(document_id_for(key), "indexed")

    page = browser.new_page()
    page.goto(f"{stack.base_url}/#key={stack.env['STRATA_API_KEY']}")
    assert "key=" not in page.url, "the key leaves the address bar once stored"
    page.evaluate(COUNT_UPDATES)
    page.fill("#question", "What do otters eat?")
    page.click("#send")
    page.wait_for_selector(".turn.done", timeout=120_000)

    assert page.locator(".turn .text").text_content().strip()
    assert page.evaluate("window.answerUpdates") > 5, "the answer is rendered as it streams"
    citations = page.locator(".citations li").all_text_contents()
    assert any(key in citation for citation in citations)
    assert not page.locator(".status.error").count()
    page.close()


def test_page_asks_for_a_key_when_the_stored_one_is_refused(stack: RunningStack, browser: object) -> None:
    page = browser.new_page()
    page.goto(f"{stack.base_url}/#key=sk-strata-wrong")
    page.fill("#question", "Hello?")
    page.click("#send")
    page.wait_for_selector(".status.error", timeout=30_000)

    assert "API key" in page.locator(".status.error").text_content()
    assert page.locator("#key-form").is_visible()
    page.close()
