"""Driving the chat page in Debian's Chromium with Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
# STRATA_SCREENSHOTS=docs/screenshots: the tests save the states they reach there (the README's pictures).
# (Predicates are functions, not expressions: polling an expression is an eval, which the page's CSP refuses.)
SCREENSHOTS = os.environ.get("STRATA_SCREENSHOTS")
ANSWER_TIMEOUT_MS = 120_000
# Wait predicates are functions ("() => ..."), never bare expressions: Playwright polls an
# expression with eval, which the page's content security policy refuses.


@contextmanager
def launch_browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_chat(browser: Any, base_url: str, key: str, *, width: int = 1280, height: int = 860) -> Any:
    """The page in a fresh context (its own storage), signed in with ``key`` through the address,
    as the local stack's link does; CSP violations and page errors are collected."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{base_url}/#key={key}")
    page.wait_for_function("() => document.querySelectorAll('#model option').length > 0 && !location.hash")
    return page


def ask(page: Any, question: str) -> Any:
    """Asks ``question`` and returns the new turn's locator."""
    page.fill("#question", question)
    page.press("#question", "Enter")
    turn = page.locator("#conversation .turn").last
    turn.wait_for()
    return turn


def wait_for_state(turn: Any, *states: str, timeout_ms: int = ANSWER_TIMEOUT_MS) -> str:
    turn.page.wait_for_function(
        "([turn, states]) => states.includes(turn.dataset.state)",
        arg=[turn.element_handle(), list(states)],
        timeout=timeout_ms,
    )
    return turn.get_attribute("data-state")


def screenshot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))
