"""Retries, fallbacks, mid-stream continuation, breakers and the response cache on the local stack,
in front of two mock upstreams whose faults the tests set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench.mock_upstream import Behaviour, MockUpstream
from tests.support import RunningStack, start_stack, wait_until

ANSWER = "".join(f"tok{i} " for i in range(20))
COOLDOWN_S = 2


@dataclass
class Upstreams:
    stack: RunningStack
    primary: MockUpstream
    backup: MockUpstream


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    workdir = tmp_path_factory.mktemp("resilience")
    with MockUpstream(Behaviour(seed=1)) as primary, MockUpstream(Behaviour(seed=2)) as backup:
        models = workdir / "models.yaml"
        models.write_text(
            "models:\n"
            "  default:\n"
            "    provider: openai\n"
            f"    base_url: {primary.base_url}\n"
            "    model: mock\n"
            "    context_window: 8192\n"
            "    fallbacks: [backup]\n"
            "    timeouts: {first_byte_s: 1}\n"
            "  backup:\n"
            "    provider: openai\n"
            f"    base_url: {backup.base_url}\n"
            "    model: mock\n"
            "    context_window: 8192\n"
            "  local:\n"
            "    provider: sagemaker\n"
            "    endpoint: strata-chat\n"
            "    fallbacks: [backup]\n"
            "  solo:\n"
            "    provider: openai\n"
            f"    base_url: {primary.base_url}\n"
            "    model: mock\n"
            "    context_window: 8192\n"
        )
        env = {"STRATA_BREAKER_COOLDOWN_S": str(COOLDOWN_S), "STRATA_BREAKER_MIN_CALLS": "3"}
        stack = start_stack(workdir, models_file=models, env=env)
        try:
            yield Upstreams(stack, primary, backup)
        finally:
            stack.stop()


@pytest.fixture(autouse=True)
def healthy(upstreams: Upstreams) -> Iterator[None]:
    """Each test starts from healthy upstreams and closed breakers."""
    for mock in (upstreams.primary, upstreams.backup):
        mock.configure(error_rate=0.0, hang_rate=0.0, cut_rate=0.0, malformed_rate=0.0, retry_after_s=None)
        mock.reset_stats()
    time.sleep(COOLDOWN_S + 0.1)
    body = {"model": "default", "messages": [{"role": "user", "content": "warm"}], "strata": {"cache": False}}
    with upstreams.stack.http() as client:
        for _ in range(2):  # a probe closes an open breaker
            client.post("/v1/chat/completions", json=body)
    yield


def stream(stack: RunningStack, model: str = "default", **extra) -> tuple[int, list[str], dict]:
    body = {
        "model": model,
        "stream": True,
        "messages": [{"role": "user", "content": f"question {time.monotonic_ns()}"}],
        "strata": {"retrieval": {"enabled": False}},
        **extra,
    }
    with stack.http() as client, client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, [], {"headers": dict(response.headers), "body": response.json()}
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    return 200, events, {}


def answer_of(events: list[str]) -> tuple[str, dict]:
    text, strata = "", {}
    for event in events:
        if event == "[DONE]":
            continue
        chunk = json.loads(event)
        for choice in chunk.get("choices", []):
            text += choice["delta"].get("content") or ""
        strata = chunk.get("strata", strata)
    return text, strata


def test_errors_before_the_first_byte_fail_over_to_the_backup(upstreams: Upstreams) -> None:
    upstreams.primary.configure(error_rate=1.0, error_status=503)
    status, events, _ = stream(upstreams.stack)
    text, strata = answer_of(events)
    assert status == 200 and events[-1] == "[DONE]"
    assert text == ANSWER
    assert strata["target"] == "backup" and strata["failovers"] == 1
    assert upstreams.primary.stats()["counters"]["errors"] == 2  # tried twice (one retry), then moved on


def test_a_hang_before_the_first_byte_times_out_and_fails_over(upstreams: Upstreams) -> None:
    upstreams.primary.configure(hang_rate=1.0)
    began = time.monotonic()
    status, events, _ = stream(upstreams.stack)
    assert status == 200 and answer_of(events)[0] == ANSWER
    assert time.monotonic() - began < 10  # first_byte_s: 1, twice, plus backoff


def test_a_stream_cut_mid_answer_is_continued_seamlessly_on_the_backup(upstreams: Upstreams) -> None:
    upstreams.primary.configure(cut_rate=1.0, cut_after=5)
    status, events, _ = stream(upstreams.stack)
    text, strata = answer_of(events)
    assert status == 200 and events[-1] == "[DONE]"
    assert text == ANSWER  # nothing lost, nothing repeated
    assert strata["target"] == "backup"
    assert upstreams.backup.stats()["counters"]["continuations"] == 1
    assert upstreams.primary.stats()["counters"]["cuts"] == 1  # never retried after the first byte


def test_a_cut_no_target_can_continue_ends_with_an_error_event_and_no_done(upstreams: Upstreams) -> None:
    upstreams.primary.configure(cut_rate=1.0, cut_after=5)
    status, events, _ = stream(upstreams.stack, model="solo")
    assert status == 200
    assert "[DONE]" not in events
    assert json.loads(events[-1])["error"]["code"] == "model_unavailable"
    assert answer_of(events[:-1])[0] == ANSWER[: len("tok0 tok1 tok2 tok3 tok4 ")]


def test_every_target_down_is_a_503_with_retry_after(upstreams: Upstreams) -> None:
    for mock in (upstreams.primary, upstreams.backup):
        mock.configure(error_rate=1.0, error_status=500)
    status, _, reply = stream(upstreams.stack)
    assert status == 503
    assert int(reply["headers"]["retry-after"]) >= 1
    assert reply["body"]["error"]["code"] == "model_unavailable"


def test_the_breaker_opens_skips_the_target_probes_and_closes(upstreams: Upstreams) -> None:
    upstreams.primary.configure(error_rate=1.0, error_status=503)
    with upstreams.stack.http() as client:

        def opened() -> dict | None:
            stream(upstreams.stack)  # two failed calls each (one retry), answered by the backup
            health = client.get("/healthz").json()
            return health if health["models"]["default"]["breaker"] == "open" else None

        # Half of the last 20 calls failed (the earlier tests' calls count too): open.
        health = wait_until(opened, timeout_s=30, interval_s=0, what="the breaker to open")
    assert health["status"] == "degraded"
    upstreams.primary.reset_stats()
    stream(upstreams.stack)
    assert upstreams.primary.stats()["counters"]["completions"] == 0  # skipped while open

    upstreams.primary.configure(error_rate=0.0)
    time.sleep(COOLDOWN_S + 0.2)
    _, events, _ = stream(upstreams.stack)
    assert answer_of(events)[1]["target"] == "default"  # the probe went through and closed it
    with upstreams.stack.http() as client:
        wait_until(
            lambda: client.get("/healthz").json()["models"]["default"]["breaker"] == "closed",
            timeout_s=5,
            what="the breaker to close",
        )


def test_a_deterministic_request_is_answered_from_the_cache_the_second_time(upstreams: Upstreams) -> None:
    body = {
        "model": "default",
        "temperature": 0,
        "messages": [{"role": "user", "content": "cache me"}],
        "strata": {"retrieval": {"enabled": False}},
    }
    with upstreams.stack.http() as client:
        first = client.post("/v1/chat/completions", json=body).json()
        second = client.post("/v1/chat/completions", json=body).json()
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True})
    assert first["strata"]["cache_hit"] is False and second["strata"]["cache_hit"] is True
    assert second["choices"][0]["message"]["content"] == first["choices"][0]["message"]["content"] == ANSWER
    assert upstreams.primary.stats()["counters"]["completions"] == 1 + 2  # the warm-up's two, then one
    replayed, strata = answer_of([line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")])
    assert replayed == ANSWER and strata["cache_hit"] is True


def test_a_model_server_that_dies_opens_its_aliases_until_it_is_back(upstreams: Upstreams) -> None:
    """The supervisor restarts the local model server and, meanwhile, holds the breakers of the
    aliases it serves open: requests go straight to their fallbacks and /healthz says why."""
    port = upstreams.stack.env["STRATA_SAGEMAKER_RUNTIME_URL"].rsplit(":", 1)[1]
    pid = subprocess.run(
        ["pgrep", "-f", f"model_endpoint --host 127.0.0.1 --port {port}"], capture_output=True, text=True
    ).stdout.split()[0]
    os.kill(int(pid), signal.SIGKILL)
    with upstreams.stack.http() as client:
        health = wait_until(
            lambda: (h := client.get("/healthz").json())["models"]["local"]["breaker"] == "open" and h,
            timeout_s=15,
            what="the local alias to open",
        )
        assert "model server exited" in health["models"]["local"]["last_error"]
        assert health["models"]["default"]["breaker"] == "closed"

        status, events, _ = stream(upstreams.stack, model="local")
        text, strata = answer_of(events)
        assert status == 200 and text == ANSWER and strata["target"] == "backup"

        wait_until(
            lambda: client.get("/healthz").json()["models"]["local"]["breaker"] == "closed",
            timeout_s=120,
            what="the restarted model server",
        )
    status, events, _ = stream(upstreams.stack, model="local", max_tokens=4)
    assert status == 200 and answer_of(events)[1]["target"] == "local"
