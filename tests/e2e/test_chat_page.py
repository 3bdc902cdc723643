"""The chat page in a real browser (Debian's Chromium, driven by Playwright), against the local stack:
streaming, citations and their passages, trust notes, stop, history, keyboard and phone widths."""

from __future__ import annotations

from typing import Any

from bench.mock_upstream import MockUpstream
from strata.documents import document_id_for
from tests.e2e.conftest import PageStack
from tests.e2e.pages import ask, open_chat, screenshot, wait_for_state
from tests.support import DATASET, RunningStack, wait_until

# Counts the changes of answers' text while they stream, and the layout shifts of the page.
OBSERVE = """
window.answerUpdates = 0;
const inAnswer = (node) => (node.closest ? node : node.parentElement)?.closest('.answer');
new MutationObserver((records) => {
  if (records.some((record) => inAnswer(record.target))) window.answerUpdates += 1;
}).observe(document.getElementById('conversation'), {subtree: true, childList: true, characterData: true});
window.layoutShift = 0;
window.shifted = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.hadRecentInput) continue;
    window.layoutShift += entry.value;
    window.shifted.push(...entry.sources.map((s) => s.node?.className || s.node?.nodeName || "?"));
  }
}).observe({type: 'layout-shift', buffered: true});
window.announcements = [];
new MutationObserver(() => {
  const text = document.getElementById('announcer').textContent;
  if (text) window.announcements.push(text);
}).observe(document.getElementById('announcer'), {subtree: true, childList: true, characterData: true});
"""


def ingest(stack: RunningStack, tenant: str, name: str, dataset_file: str, api_key: str | None = None) -> str:
    """Drops a wiki-qa article into the tenant's prefix and waits until it is indexed (``api_key``:
    a key of that tenant, the dev key by default)."""
    key = f"tenants/{tenant}/{name}"
    stack.boto3_client("s3").put_object(
        Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"], Key=key, Body=(DATASET / "documents" / dataset_file).read_bytes()
    )
    stack.wait_for_status(document_id_for(key), "indexed", key=api_key)
    return key


def test_the_local_model_streams_an_answer_with_its_sources_grouped_per_document(
    stack: RunningStack, browser: Any
) -> None:
    ingest(stack, stack.env["STRATA_TENANT"], "page/otter.txt", "s08_set1_a7_otter.txt")
    page = open_chat(browser, stack.base_url, stack.env["STRATA_API_KEY"])
    assert "key=" not in page.url, "the key leaves the address bar once stored"
    page.evaluate(OBSERVE)

    turn = ask(page, "What do otters eat?")
    assert wait_for_state(turn, "done", "failed") == "done", turn.inner_text()

    assert turn.locator(".answer").inner_text().strip()
    # A short answer from the local model: the counted, paced stream is the next test's.
    assert page.evaluate("window.answerUpdates") > 2, "the answer is rendered as it streams"
    cited = turn.locator(".source-list .source-name").all_text_contents()
    uncited = turn.locator(".uncited-list .source-name").all_text_contents()
    assert "otter" in cited + uncited
    assert len(set(cited)) == len(cited) and len(set(uncited)) == len(uncited), "a document once, with its passages"
    assert turn.locator(".sources button.cite").count() > len(cited + uncited), "several passages of one document"
    assert "Done in" in turn.locator(".state-line").inner_text()
    assert "first token" in turn.locator(".state-line").inner_text()
    assert not page.errors, page.errors
    page.context.close()


def test_the_answer_streams_through_every_state_without_shifting_the_layout(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    upstream.configure(chunks=40, chunk_text="Word{i}. ", chunk_delay_s=0.05, first_byte_delay_s=1.0)
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-states"))
    page.evaluate(OBSERVE)
    page.evaluate("""window.states = [];
      new MutationObserver(() => { const t = document.querySelector('#conversation .turn:last-child');
        if (t && window.states.at(-1) !== t.dataset.state) window.states.push(t.dataset.state); })
      .observe(document.getElementById('conversation'), {subtree: true, attributes: true, childList: true});""")

    turn = ask(page, "Tell me about the words")
    page.wait_for_function("() => document.querySelector('.turn .elapsed').textContent.endsWith(' s')")
    page.locator('.turn[data-state="waiting"]').wait_for()
    screenshot(page, "waiting")
    page.locator('.turn[data-state="streaming"]').wait_for()
    screenshot(page, "streaming")
    assert wait_for_state(turn, "done") == "done"

    states = page.evaluate("window.states")
    assert states[-3:] == ["waiting", "streaming", "done"], states
    assert "searching" in states[:2]
    assert page.evaluate("window.answerUpdates") > 10, "40 chunks over 2 s: rendered as they come"
    assert page.evaluate("window.layoutShift") < 0.01, page.evaluate("window.shifted")  # nothing moves
    announcements = page.evaluate("window.announcements")
    assert 1 < len(announcements) < 40, "the answer is announced in sentences, not per token"
    assert "Word39." in announcements[-1]
    timing = turn.locator(".state-line").inner_text()
    first_token_s = float(timing.split("first token ")[1].split(" s")[0])
    assert first_token_s >= 1.0, timing  # the upstream waited a second before its first token
    assert not page.errors, page.errors
    page.context.close()


def test_a_citation_marker_opens_its_passage_and_the_trust_notes_show(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    key = page_stack.key("t-cites")
    ingest(page_stack.stack, "t-cites", "animals/otter.txt", "s08_set1_a7_otter.txt", key)
    ingest(page_stack.stack, "t-cites", "animals/kangaroo.txt", "s08_set1_a1_kangaroo.txt", key)
    upstream.configure(
        chunks=1, chunk_text="Sea otters eat **sea urchins** and crabs [1]. Write to ann@example.com [9]."
    )
    page = open_chat(browser, page_stack.stack.base_url, key)

    turn = ask(page, "What do sea otters eat?")
    assert wait_for_state(turn, "done") == "done"

    assert turn.locator(".answer strong").inner_text() == "sea urchins"
    notes = turn.locator(".notes").inner_text()
    assert "1 citation pointing at no source was removed" in notes
    assert "Personal data hidden: 1 e-mail address" in notes
    assert "ann@example.com" not in turn.inner_text()
    confidence = turn.locator(".confidence-label").inner_text()
    assert "confidence" in confidence
    screenshot(page, "answer")
    assert turn.locator(".confidence-tip").is_hidden()
    turn.locator(".confidence-badge").focus()
    assert turn.locator(".confidence-tip").is_visible(), "the explanation shows on focus"
    assert "appear in the passages it cites" in turn.locator(".confidence-tip").inner_text()
    page.keyboard.press("Escape")
    assert turn.locator(".confidence-tip").is_hidden(), "and Escape hides it"

    marker = turn.locator(".answer button.cite").first
    assert marker.inner_text() == "1"
    assert "otter" in marker.get_attribute("aria-label")
    marker.click()
    panel = page.locator("#passage")
    panel.wait_for(state="visible")
    assert panel.locator(".passage-title").inner_text() == "otter"
    assert panel.locator(".passage-path").inner_text() == "animals/otter.txt"
    assert "otter" in panel.locator(".passage-text").inner_text().lower()
    assert page.evaluate("document.activeElement.id") == "passage-title"
    screenshot(page, "passage")
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.classList.contains('cite')"), "focus returns to the marker"
    assert not page.errors, page.errors
    page.context.close()


def test_hostile_markdown_from_the_model_renders_as_inert_text(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    hostile = (
        '<script>window.pwned = 1</script> <img src=x onerror="window.pwned = 2"> '
        "[click](javascript:window.pwned=3) [tab](java\tscript:window.pwned=4) "
        '![pic](javascript:window.pwned=5) <a href="javascript:window.pwned=6">a</a> '
        '[data](data:text/html,<script>window.pwned=7</script>) <iframe src="javascript:window.pwned=8"></iframe> '
        "**<svg onload=window.pwned=9>** [ok](https://example.com/a_(b))"
    )
    upstream.configure(chunks=1, chunk_text=hostile.replace("{", "{{").replace("}", "}}"))
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-hostile"))

    turn = ask(page, "Say something hostile")
    assert wait_for_state(turn, "done") == "done"
    answer = turn.locator(".answer")

    assert page.evaluate("window.pwned") is None
    assert answer.locator("script, img, iframe, svg, object, embed").count() == 0
    hrefs = [a.get_attribute("href") for a in answer.locator("a").all()]
    assert hrefs == ["https://example.com/a_(b)"], hrefs
    assert "<script>window.pwned = 1</script>" in answer.inner_text(), "raw HTML shows as the text it is"
    assert not [e for e in page.errors if "pwned" in e]
    page.context.close()


def test_the_stop_button_stops_the_stream_and_the_server_sees_the_disconnect(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    upstream.configure(chunks=400, chunk_delay_s=0.05)
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-stop"))

    turn = ask(page, "A long answer, please")
    page.locator('.turn[data-state="streaming"]').wait_for()
    assert page.locator("#send").inner_text() == "Stop"
    page.click("#send")
    assert wait_for_state(turn, "stopped") == "stopped"

    kept = turn.locator(".answer").inner_text()
    assert kept.startswith("tok0 tok1") and "tok399" not in kept
    assert "incomplete" in turn.locator(".state-line").inner_text()
    assert page.locator("#send").inner_text() == "Ask"
    wait_until(
        lambda: upstream.stats()["counters"]["disconnects"] >= 1,
        timeout_s=10,
        what="the upstream to see the stack leave",
    )
    assert upstream.stats()["counters"]["chunks"] < 400
    wait_until(
        lambda: any("tenant=t-stop" in line and "client_disconnected" in line for line in _requests(page_stack.stack)),
        timeout_s=10,
        what="the request record of the stopped answer",
    )
    page.context.close()


def _requests(stack: RunningStack) -> list[str]:
    """The request log's lines (one per request: route, status, outcome, tenant, tokens, timings)."""
    log = stack.state_dir / "logs" / "strata.log"
    return [line for line in log.read_text(errors="replace").splitlines() if "strata.requests" in line]


def test_the_conversation_survives_a_reload_goes_back_as_context_and_starts_anew(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    key = page_stack.key("t-history")
    page = open_chat(browser, page_stack.stack.base_url, key)
    first = ask(page, "First question [req:first]")
    assert wait_for_state(first, "done") == "done"
    upstream.reset_stats()

    page.reload()
    page.wait_for_selector("#conversation .turn[data-state=done]")
    assert page.locator("#conversation .turn").count() == 1
    second = ask(page, "And a follow-up?")
    assert wait_for_state(second, "done") == "done"
    # The follow-up's request carried the first question (and its tag) as context.
    assert upstream.stats(tags=True)["tags"] == {"first": ["ok"]}

    second.locator(".copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == "".join(f"tok{i} " for i in range(20))

    def sign_in_with(key: str) -> None:  # the key through the address, as the local stack's link gives it
        page.goto(f"{page_stack.stack.base_url}/#key={key}")
        page.reload()
        page.wait_for_function("() => document.querySelectorAll('#model option').length > 1")

    sign_in_with(page_stack.key("t-someone-else"))
    assert page.locator("#conversation .turn").count() == 0, "another key does not see this conversation"
    sign_in_with(key)
    assert page.locator("#conversation .turn").count() == 2
    page.click("#new-chat")
    assert page.locator("#conversation .turn").count() == 0
    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 0")
    assert page.locator("#conversation .turn").count() == 0
    page.context.close()


def test_the_page_works_by_keyboard_alone(page_stack: PageStack, upstream: MockUpstream, browser: Any) -> None:
    key = page_stack.key("t-keys")
    ingest(page_stack.stack, "t-keys", "otter.txt", "s08_set1_a7_otter.txt", key)
    upstream.configure(chunks=1, chunk_text="Otters eat fish [1].")
    page = open_chat(browser, page_stack.stack.base_url, key)
    assert page.evaluate("document.activeElement.id") == "question", "the question box has focus at start"

    page.keyboard.type("What do otters eat?")
    page.keyboard.press("Enter")
    turn = page.locator("#conversation .turn").last
    assert wait_for_state(turn, "done") == "done"
    assert page.evaluate("document.activeElement.id") == "question"

    for _ in range(40):  # Tab until the citation marker
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.classList.contains('cite')"):
            break
    else:
        raise AssertionError("the citation marker cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.locator("#passage").wait_for(state="visible")
    page.keyboard.press("Escape")
    page.locator("#passage").wait_for(state="hidden")

    page.focus("#documents-toggle")
    page.keyboard.press("Enter")
    page.locator("#documents").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "documents-title"
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == "documents-toggle"
    page.context.close()


def test_the_page_fits_a_375_pixel_phone_screen(page_stack: PageStack, upstream: MockUpstream, browser: Any) -> None:
    wide = (
        f"A long link https://example.com/{'a' * 120} and a table:\n\n| name | value |\n|---|---|\n"
        f"| {'x' * 90} | 1 |\n\n```\n{'code ' * 40}\n```"
    )
    upstream.configure(chunks=1, chunk_text=wide)
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-phone"), width=375, height=740)

    turn = ask(page, "Something wide")
    assert wait_for_state(turn, "done") == "done"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "no sideways scrolling"
    for selector in ("#question", "#send", "#documents-toggle", "#model"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
    screenshot(page, "phone")
    page.click("#documents-toggle")
    box = page.locator("#documents").bounding_box()
    assert box["width"] <= 375
    page.context.close()
