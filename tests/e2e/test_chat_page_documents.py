"""The chat page's documents panel (uploads through the presigned POST, live status, delete) and
its feedback (sent with the answer's request id, kept across a reload)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from bench.mock_upstream import MockUpstream
from tests.e2e.conftest import PageStack
from tests.e2e.pages import ask, open_chat, screenshot, wait_for_state
from tests.support import DATASET

INDEXED_TIMEOUT_MS = 120_000


def test_an_upload_reaches_indexed_in_the_list_and_can_be_deleted(
    page_stack: PageStack, upstream: MockUpstream, browser: Any, tmp_path: Path
) -> None:
    key = page_stack.key("t-uploads")
    page = open_chat(browser, page_stack.stack.base_url, key)
    document = tmp_path / "kangaroo notes.txt"
    document.write_bytes((DATASET / "documents" / "s08_set1_a1_kangaroo.txt").read_bytes())
    unsupported = tmp_path / "tool.exe"
    unsupported.write_bytes(b"MZ")

    page.click("#documents-toggle")
    page.set_input_files("#documents .file-input", [str(document), str(unsupported)])
    row = page.locator("#documents .document", has_text="kangaroo notes.txt")
    row.wait_for()
    page.wait_for_function(
        "() => document.querySelector('#documents .document[data-status=indexed]')", timeout=INDEXED_TIMEOUT_MS
    )
    assert "Indexed" in row.locator(".status").inner_text()
    failed = page.locator("#documents .document", has_text="tool.exe")
    assert failed.get_attribute("data-status") == "upload_failed"
    assert "cannot index" in failed.locator(".reason").inner_text()
    screenshot(page, "documents")

    with httpx.Client(base_url=page_stack.stack.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
        listed = api.get("/v1/documents").json()["data"]
        assert [(d["source_key"], d["status"]) for d in listed] == [("tenants/t-uploads/kangaroo notes.txt", "indexed")]

        delete = row.locator(".delete")
        delete.click()
        assert delete.inner_text() == "Confirm delete"
        delete.click()
        row.wait_for(state="detached", timeout=60_000)
        assert api.get("/v1/documents").json()["data"] == []
    page.context.close()


def test_feedback_reaches_the_api_and_sticks_after_a_reload(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    key = page_stack.key("t-feedback")
    page = open_chat(browser, page_stack.stack.base_url, key)
    turn = ask(page, "Rate me")
    assert wait_for_state(turn, "done") == "done"

    turn.locator(".rate[data-rating='-1']").click()
    turn.locator(".comment-text").fill("Too vague.")
    turn.locator(".comment button[type=submit]").click()
    page.wait_for_function("() => document.querySelector('.feedback-status').textContent.includes('saved')")

    with httpx.Client(base_url=page_stack.stack.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
        stored = api.get("/v1/feedback").json()["data"]
    assert [(f["rating"], f["comment"]) for f in stored] == [(-1, "Too vague.")]

    page.reload()
    restored = page.locator("#conversation .turn").last
    restored.wait_for()
    assert restored.locator(".rate[data-rating='-1']").get_attribute("aria-pressed") == "true"
    assert restored.locator(".rate[data-rating='1']").get_attribute("aria-pressed") == "false"
    assert restored.locator(".comment-text").input_value() == "Too vague."
    page.context.close()
