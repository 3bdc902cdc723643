"""The chat page when the AI layer is not there: an outage, a stream cut short, a model waking from
zero, a rate limit — each said plainly, the question kept, and a way to ask again."""

from __future__ import annotations

from typing import Any

from bench.mock_upstream import MockUpstream
from tests.e2e.conftest import SIGN_IN_TENANT, WAKE_S, PageStack
from tests.e2e.pages import ask, open_chat, screenshot, wait_for_state


def test_an_outage_shows_the_fallback_and_a_retry_succeeds(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    upstream.configure(error_rate=1.0, error_status=500)
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-outage"))

    turn = ask(page, "Is anyone there?")
    assert wait_for_state(turn, "done", "failed") == "failed"
    notice = turn.locator(".notice")
    assert "unavailable" in notice.inner_text()
    assert "Your question is kept" in notice.inner_text()
    assert turn.locator(".question").inner_text() == "Is anyone there?"
    screenshot(page, "fallback")

    upstream.configure(error_rate=0.0)
    turn.locator(".retry").click()
    assert wait_for_state(turn, "done", "failed") == "done"
    assert turn.locator(".answer").inner_text().startswith("tok0 tok1")
    assert turn.locator(".notice").is_hidden()
    page.context.close()


def test_a_stream_that_breaks_is_shown_as_incomplete_never_as_an_answer(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    upstream.configure(cut_rate=1.0, cut_after=5)
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-cut"))

    turn = ask(page, "Tell me everything")
    assert wait_for_state(turn, "done", "failed") == "failed"
    assert turn.locator(".answer").inner_text().startswith("tok0 tok1")
    assert "cut off" in turn.locator(".state-line").inner_text()
    assert "cut off before it was complete" in turn.locator(".notice").inner_text()
    assert turn.locator(".foot .confidence").is_hidden(), "no confidence for a broken answer"
    page.context.close()


def test_the_network_going_away_is_a_fallback_too(page_stack: PageStack, upstream: MockUpstream, browser: Any) -> None:
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-offline"))
    page.route("**/v1/chat/completions", lambda route: route.abort("internetdisconnected"))

    turn = ask(page, "Anyone?")
    assert wait_for_state(turn, "failed") == "failed"
    assert "cannot be reached" in turn.locator(".notice").inner_text()
    page.unroute("**/v1/chat/completions")
    turn.locator(".retry").click()
    assert wait_for_state(turn, "done", "failed") == "done"
    page.context.close()


def test_a_model_waking_from_zero_shows_a_countdown_and_retries_by_itself(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-wake"))
    page.select_option("#model", "local")

    turn = ask(page, "Hello, are you awake?")
    countdown = turn.locator(".countdown")
    countdown.wait_for(state="visible", timeout=60_000)
    assert "Retrying in" in countdown.inner_text()
    seconds = int(countdown.inner_text().split("Retrying in ")[1].split(" s")[0])
    assert 0 < seconds <= WAKE_S
    assert "starting up" in turn.locator(".notice").inner_text()
    screenshot(page, "waking")

    assert wait_for_state(turn, "done", timeout_ms=60_000) == "done"
    assert turn.locator(".answer").inner_text().strip()
    page.context.close()


def test_a_rate_limit_says_when_the_user_can_ask_again(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    page = open_chat(browser, page_stack.stack.base_url, page_stack.key("t-limited", "--rpm", "1"))
    first = ask(page, "One")
    assert wait_for_state(first, "done", "failed") == "done"

    second = ask(page, "Two")
    assert wait_for_state(second, "failed") == "failed"
    notice = second.locator(".notice").inner_text()
    assert "rate limit" in notice and "(1 request per minute)" in notice
    countdown = second.locator(".countdown").inner_text()
    seconds = int(countdown.split("ask again in ")[1].split(" s")[0])
    assert 0 < seconds <= 60
    assert second.locator(".retry").is_disabled(), "no retry before the limit resets"
    screenshot(page, "rate-limited")
    page.context.close()


def test_a_refused_key_asks_for_another_which_is_kept_for_the_next_visit(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    page = open_chat(browser, page_stack.stack.base_url, "sk-strata-wrong")
    turn = ask(page, "Hello?")
    assert wait_for_state(turn, "failed") == "failed"
    assert "API key or sign-in was refused" in turn.locator(".notice").inner_text()
    dialog = page.locator("#key-dialog")
    assert dialog.is_visible()

    page.fill("#key", page_stack.key("t-rekey"))
    page.click("#key-form button[type=submit]")
    assert dialog.is_hidden()
    turn.locator(".retry").click()
    assert wait_for_state(turn, "done", "failed") == "done"

    page.reload()
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 1")
    assert dialog.is_hidden(), "the key is asked for once"
    page.context.close()


def test_where_sign_in_is_configured_a_reader_signs_in_and_asks_as_their_tenant(
    page_stack: PageStack, upstream: MockUpstream, browser: Any
) -> None:
    page = browser.new_context().new_page()
    page.goto(page_stack.stack.base_url)
    page.locator("#key-dialog").wait_for()
    page.click("#sign-in")  # to the issuer's sign-in, and back with a code

    page.wait_for_function("() => !location.search && document.querySelectorAll('#model option').length > 1")
    assert page.locator("#key-dialog").is_hidden()
    (exchange,) = page_stack.issuer.token_requests
    assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"]
    turn = ask(page, "Who am I?")
    assert wait_for_state(turn, "done", "failed") == "done"
    log = (page_stack.stack.state_dir / "logs" / "strata.log").read_text()
    assert f"tenant={SIGN_IN_TENANT} model=default" in log
    page.context.close()
