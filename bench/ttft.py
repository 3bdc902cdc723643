"""Time to first token through the stack against the model server called directly, same prompt.

Four calls per run, each after a cache flush (a short unrelated prompt, so that no call reuses
the previous call's KV cache), greedy decoding:
  direct      POST {model server}/invocations with exactly the messages the stack sends with retrieval off
  stack       POST /v1/chat/completions with retrieval off: the same prompt; the difference is the
              gateway, the authorizer, the chat function and the sagemaker-runtime event stream
  direct+rag  the model server with exactly the prompt the stack builds with retrieval on
              (the same retriever, store and embedding endpoint, called from here)
  stack+rag   /v1/chat/completions with retrieval on: adds embedding the question and the hybrid search

    .venv/bin/python -m bench.ttft [--runs 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import boto3
import httpx

from bench.common import DATASET, machine, median, time_to_first_token
from strata.config import Settings
from strata.documents import document_id_for
from strata.inference import Message, SageMakerEmbedder, token_counter
from strata.prompts import assemble_prompt
from strata.prompts.templates import BUILTIN_INSTRUCTIONS
from strata.retrieval import LocalVectorStore, Retriever, SearchMode
from strata_local.harness import RunningStack, start_stack

QUESTION = "What do kangaroos eat?"


def rag_messages(stack: RunningStack, settings: Settings, user: list[dict]) -> list[dict]:
    """The prompt the chat function builds, built here with the same parts."""
    runtime = boto3.client(
        "sagemaker-runtime",
        endpoint_url=stack.env["STRATA_SAGEMAKER_RUNTIME_URL"],
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    with LocalVectorStore(Path(stack.env["STRATA_VECTOR_STORE_PATH"])) as store:
        hits = Retriever(store, SageMakerEmbedder(runtime, settings.embedding_endpoint)).search(
            tenant=stack.env["STRATA_TENANT"],
            query=QUESTION,
            k=settings.retrieval_k,
            mode=SearchMode(settings.retrieval_mode),
        )
    return prompt_messages(settings, hits)


def prompt_messages(settings: Settings, hits: list) -> list[dict]:
    """The messages the chat function sends for ``QUESTION`` with ``hits``: the built-in prompt,
    fitted into the local model's window by its tokenizer."""
    prompt = assemble_prompt(
        instructions=BUILTIN_INSTRUCTIONS,
        conversation=[Message("user", QUESTION)],
        hits=[h for h in hits if h.similarity is None or h.similarity >= settings.retrieval_min_similarity],
        counter=token_counter(settings.chat_tokenizer),
        budget=settings.chat_context_window - settings.max_output_tokens,
    )
    return [{"role": m.role, "content": m.content} for m in prompt.messages]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    settings = Settings()
    user = [{"role": "user", "content": QUESTION}]
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
            model_url = f"{stack.env['STRATA_SAGEMAKER_RUNTIME_URL']}/invocations"
            auth = {"Authorization": f"Bearer {stack.env['STRATA_API_KEY']}"}
            plain = prompt_messages(settings, [])
            stack_url = f"{stack.api_url}/chat/completions"
            calls = {
                "direct": (model_url, {"messages": plain, **common}, {}),
                "stack": (
                    stack_url,
                    {"model": "default", "messages": user, "strata": {"retrieval": {"enabled": False}}, **common},
                    auth,
                ),
                "direct+rag": (model_url, {"messages": rag_messages(stack, settings, user), **common}, {}),
                "stack+rag": (stack_url, {"model": "default", "messages": user, **common}, auth),
            }
            times: dict[str, list[float]] = {name: [] for name in calls}
            with httpx.Client(timeout=120) as client:

                def flush(i: int) -> None:
                    client.post(
                        model_url, json={"messages": [{"role": "user", "content": f"flush {i}"}], "max_tokens": 1}
                    )

                for i in range(args.runs + 1):  # the first round warms up and is not counted
                    for name, (url, body, headers) in calls.items():
                        flush(i)
                        elapsed = time_to_first_token(client, url, body, headers)
                        if i:
                            times[name].append(elapsed)
        finally:
            stack.stop()
    print(f"machine: {machine()}")
    print(f"runs: {args.runs} of each, interleaved, each after a KV-cache flush; median time to first token")
    for name, values in times.items():
        baseline = median(times["direct+rag" if name.endswith("rag") else "direct"])
        print(
            f"  {name:<11} {median(values) * 1000:8.1f} ms  ratio {median(values) / baseline:5.2f}  "
            f"(min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})"
        )
    for plain_name, label in (("stack", "retrieval off"), ("stack+rag", "retrieval on")):
        base = "direct" if plain_name == "stack" else "direct+rag"
        overhead = (median(times[plain_name]) - median(times[base])) * 1000
        print(f"stack overhead, {label}, same prompt: {overhead:+.1f} ms")


if __name__ == "__main__":
    main()
