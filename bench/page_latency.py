"""The chat page's own cost, in Debian's Chromium against the local stack and a mock upstream.

Three readers of the same kind of stream, alternating run after run, each with a question of its
own (no answer comes from the response cache):

  client   httpx in this process, one kept-alive connection
  fetch    the same request from inside the page with nothing but fetch and a stream reader: the
           baseline for the page, in the same browser, over the same connection
  page     the page itself: submit → first token on screen → the answer complete on screen
           (rendered, citations and notes shown)

and, for the page alone: its main thread's time per answer (Chromium's TaskDuration: script,
style, layout, paint, and ScriptDuration) for a 200-token answer and for a 2,000-item Markdown
answer, the time from navigation to ready to ask, and the weight of its files.

    .venv/bin/python -m bench.page_latency [--runs 7]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO_ROOT, machine, median
from bench.mock_upstream import Behaviour, spawn_mock
from strata_local.harness import start_stack
from tests.e2e.pages import launch_browser, open_chat

SHORT = Behaviour(chunks=200, chunk_text="word{i} ", chunk_delay_s=0.005)
# Markdown a model writes: a paragraph with bold, code and a link, then a list item; 2,000 of them.
LONG = Behaviour(
    chunks=2000,
    chunk_text="Item **{i}** has `code` and a [link](https://example.com/{i}).\n\n- point {i}\n\n",
    chunk_delay_s=0.0005,
)
READERS = ("client", "fetch", "page")

ASK_IN_PAGE = """async (question) => {
  const answers = document.getElementById('conversation');
  const began = performance.now();
  let first = null;
  const observer = new MutationObserver(() => {
    const turn = answers.lastElementChild;
    if (first === null && turn?.querySelector('.answer').textContent) first = performance.now() - began;
  });
  observer.observe(answers, {subtree: true, childList: true, characterData: true});
  document.getElementById('question').value = question;
  document.getElementById('ask').requestSubmit();
  const ended = () => ['done', 'failed', 'stopped'].includes(answers.lastElementChild?.dataset.state);
  await new Promise((resolve) => {
    const check = () => (ended() ? resolve() : setTimeout(check, 5));
    check();
  });
  observer.disconnect();
  const turn = answers.lastElementChild;
  const chars = turn.querySelector('.answer').textContent.length;
  return {first, total: performance.now() - began, state: turn.dataset.state, chars};
}"""

FETCH_IN_PAGE = """async ([question, key]) => {
  const began = performance.now();
  const response = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: {'Content-Type': 'application/json', Authorization: `Bearer ${key}`},
    body: JSON.stringify({model: 'default', stream: true, messages: [{role: 'user', content: question}],
                          strata: {progress: true}}),
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let first = null, text = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    text += value;
    if (first === null && /"content":"[^"]/.test(text)) first = performance.now() - began;
  }
  return {first, total: performance.now() - began};
}"""


def client_read(client: httpx.Client, key: str, question: str) -> tuple[float, float]:
    body = {
        "model": "default",
        "stream": True,
        "messages": [{"role": "user", "content": question}],
        "strata": {"progress": True},
    }
    began = time.perf_counter()
    first = None
    headers = {"Authorization": f"Bearer {key}"}
    with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if first is None and line.startswith("data:") and '"content":"' in line and '"content":""' not in line:
                first = time.perf_counter() - began
            if line == "data: [DONE]":
                break
    assert first is not None, "no content arrived"
    return first * 1000, (time.perf_counter() - began) * 1000


def fetch_read(page: Any, key: str, question: str) -> tuple[float, float]:
    result = page.evaluate(FETCH_IN_PAGE, [question, key])
    return result["first"], result["total"]


def page_read(page: Any, question: str, *, min_chars: int = 0) -> tuple[float, float]:
    result = page.evaluate(ASK_IN_PAGE, question)
    assert result["state"] == "done" and result["chars"] >= min_chars, result
    page.click("#new-chat")  # the next question starts a conversation of its own, as the others' do
    return result["first"], result["total"]


def main_thread_ms(page: Any, cdp: Any, question: str, min_chars: int) -> tuple[float, float]:
    """Milliseconds of the page's main thread spent on one answer: in all, and running script."""

    def metrics() -> dict[str, float]:
        return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}

    before = metrics()
    page_read(page, question, min_chars=min_chars)
    after = metrics()
    return tuple((after[name] - before[name]) * 1000 for name in ("TaskDuration", "ScriptDuration"))


def page_weight() -> tuple[int, int, int]:
    files = [path for path in (REPO_ROOT / "frontend").rglob("*") if path.is_file()]
    raw = sum(path.stat().st_size for path in files)
    packed = sum(len(gzip.compress(path.read_bytes(), 9)) for path in files)
    return len(files), raw, packed


def run(runs: int) -> None:
    print(f"Machine: {machine()}; Chromium headless; mock upstream in its own process")
    with tempfile.TemporaryDirectory() as tmp, spawn_mock(SHORT) as mock:
        models = Path(tmp) / "models.yaml"
        models.write_text(
            f"models:\n  default:\n    provider: openai\n    base_url: {mock.base_url}\n    model: mock\n"
            "    context_window: 32768\n    max_output_tokens: 8192\n"
        )
        stack = start_stack(Path(tmp), models_file=models)
        key = stack.env["STRATA_API_KEY"]
        try:
            with launch_browser() as browser, httpx.Client(base_url=stack.base_url, timeout=120) as client:
                load_ms = []
                for _ in range(runs):
                    began = time.perf_counter()
                    open_chat(browser, stack.base_url, key).context.close()
                    load_ms.append((time.perf_counter() - began) * 1000)
                page = open_chat(browser, stack.base_url, key)
                cdp = page.context.new_cdp_session(page)
                cdp.send("Performance.enable")
                read = {
                    "client": lambda q: client_read(client, key, q),
                    "fetch": lambda q: fetch_read(page, key, q),
                    "page": lambda q: page_read(page, q),
                }
                for reader in READERS:
                    read[reader](f"warm up {reader}")
                rows: dict[str, list[float]] = {f"{r}_{m}": [] for r in READERS for m in ("first", "total")}
                for n in range(runs):
                    for reader in READERS:
                        first, total = read[reader](f"{reader} question {n}")
                        rows[f"{reader}_first"].append(first)
                        rows[f"{reader}_total"].append(total)
                short_cpu = [main_thread_ms(page, cdp, f"short {n}", 1000) for n in range(runs)]
                mock.configure(**LONG.as_dict())
                long_cpu = [main_thread_ms(page, cdp, f"long {n}", 60_000) for n in range(max(3, runs // 2))]
        finally:
            stack.stop()

    print(f"\n{runs} runs, a 200-token answer streamed over about a second (medians; ratio: page / fetch, per run)\n")
    print("| | httpx client | fetch in the page | the page | ratio | page's own cost | page min–max |")
    print("|---|---|---|---|---|---|---|")
    for label, measure in (("first token", "first"), ("whole answer", "total")):
        client_ms, fetch_ms, page_ms = (rows[f"{reader}_{measure}"] for reader in READERS)
        ratio = statistics.median(p / f for p, f in zip(page_ms, fetch_ms, strict=True))
        print(
            f"| {label} | {median(client_ms):.1f} ms | {median(fetch_ms):.1f} ms | {median(page_ms):.1f} ms | "
            f"{ratio:.2f} | {median(page_ms) - median(fetch_ms):+.1f} ms | {min(page_ms):.1f}–{max(page_ms):.1f} |"
        )
    print("\n| the page's main thread per answer | in all (median) | running script | runs (in all) |")
    print("|---|---|---|---|")
    for label, values in (("200-token answer", short_cpu), ("2,000-item Markdown answer", long_cpu)):
        task, script = (median([v[i] for v in values]) for i in (0, 1))
        print(f"| {label} | {task:.1f} ms | {script:.1f} ms | {', '.join(f'{v[0]:.0f}' for v in values)} |")
    print(f"\nNavigation to ready to ask: median {median(load_ms):.1f} ms ({', '.join(f'{v:.0f}' for v in load_ms)})")
    count, raw, packed = page_weight()
    print(f"Page weight: {count} files, {raw / 1024:.1f} KiB ({packed / 1024:.1f} KiB gzipped), no build step")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    run(parser.parse_args().runs)
