"""Time to first token through the stack against the model server called directly.

Three calls, interleaved, same question, greedy decoding:
  direct     POST {model server}/invocations with exactly the messages the stack sends when retrieval is off
  stack      POST /v1/chat/completions (gateway → authorizer → chat function → sagemaker-runtime stream),
             retrieval off: the same prompt, so the difference is the stack's own overhead
  stack+rag  the same with retrieval on (embed the question, hybrid search, a longer prompt to prefill)

    .venv/bin/python -m bench.ttft [--runs 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx

from bench.common import DATASET, machine, median, time_to_first_token
from strata.config import Settings
from strata.documents import document_id_for
from strata.local.harness import start_stack
from strata.prompts import assemble_prompt

QUESTION = "What do kangaroos eat?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=16)
    args = parser.parse_args()
    user = [{"role": "user", "content": QUESTION}]
    prompt = assemble_prompt(user, [], max_context_chars=Settings().max_context_chars)
    common = {"max_tokens": args.max_tokens, "temperature": 0, "stream": True}
    with tempfile.TemporaryDirectory() as workdir:
        stack = start_stack(Path(workdir))
        try:
            key = "tenants/dev/kangaroo.txt"
            stack.boto3_client("s3").put_object(
                Bucket=stack.env["STRATA_DOCUMENTS_BUCKET"],
                Key=key,
                Body=(DATASET / "documents" / "s08_set1_a1_kangaroo.txt").read_bytes(),
            )
            stack.wait_for_status(document_id_for(key), "indexed")
            auth = {"Authorization": f"Bearer {stack.env['STRATA_API_KEY']}"}
            calls = {
                "direct": (
                    f"{stack.env['STRATA_SAGEMAKER_RUNTIME_URL']}/invocations",
                    {"messages": prompt.messages, **common},
                    {},
                ),
                "stack": (
                    f"{stack.api_url}/chat/completions",
                    {"model": "default", "messages": user, "strata": {"retrieval": {"enabled": False}}, **common},
                    auth,
                ),
                "stack+rag": (
                    f"{stack.api_url}/chat/completions",
                    {"model": "default", "messages": user, **common},
                    auth,
                ),
            }
            times: dict[str, list[float]] = {name: [] for name in calls}
            with httpx.Client(timeout=120) as client:
                for url, body, headers in calls.values():  # warm-up
                    time_to_first_token(client, url, body, headers)
                for _ in range(args.runs):
                    for name, (url, body, headers) in calls.items():
                        times[name].append(time_to_first_token(client, url, body, headers))
        finally:
            stack.stop()
    direct = median(times["direct"])
    print(f"machine: {machine()}")
    print(f"runs: {args.runs} each, interleaved; median time to first token")
    for name, values in times.items():
        print(
            f"  {name:<10} {median(values) * 1000:7.1f} ms  ratio {median(values) / direct:5.2f}  "
            f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )
    print(f"stack overhead (same prompt): {(median(times['stack']) - direct) * 1000:+.1f} ms")


if __name__ == "__main__":
    main()
