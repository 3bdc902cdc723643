"""Token counters: the estimate's rule, the shipped SmolLM2 tokenizer and template, specs and errors.

Exact equality with the model server's counts is checked against llama.cpp in
``tests/integration/model_endpoint/test_token_counts.py``; here only the shipped files are used.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from strata.inference.exceptions import ModelRegistryError, ModelRequestError
from strata.inference.tokens import (
    ESTIMATE_MESSAGE_OVERHEAD,
    ESTIMATE_REPLY_OVERHEAD,
    TOKENIZERS_DIR,
    EstimateTokenCounter,
    TokenizerTokenCounter,
    token_counter,
)
from strata.inference.types import Message

SMOLLM2_DIR = TOKENIZERS_DIR / "smollm2"
ENGLISH = [
    "The capital of France is Paris.",
    "Strata is a serverless AI integration stack for AWS. It gives a team four layers that work together "
    "and can be changed one at a time: a chat frontend, a backend with authentication and quotas, model "
    "serving, and a data pipeline that ingests, chunks and indexes documents for retrieval.",
    "Hello! Could you summarise the attached quarterly report in three bullet points, please?",
    "In 1889, the Eiffel Tower was completed; it stood 312 metres tall until 1930.",
]
OTHER_TEXTS = [
    "def add(a, b):\n    return a + b\n\n\n"
    "class Store(ABC):\n    @abstractmethod\n    def put(self, key: str) -> None: ...\n",
    '{"tenant": "t-42", "filters": {"source": ["report.pdf", "notes.md"]}, "top_k": 8, "mode": "hybrid"}',
    "https://example.com/docs/a/b?c=d&e=f#section-2",
    "Réponds en français, s'il te plaît : la capitale de la France est Paris, très célèbre.",
    "Die Hauptstadt von Deutschland ist Berlin. Übermäßige Größenordnungen schädigen Straßenbahnen.",
    "日本語のテキストは、トークン数が多くなりがちです。中文文本也是如此。",
    "Launch 🚀 done 🎉 👩‍💻",
    "a  b   c\n\n\n\t\t x    ",
    "!!! ??? ... --- *** ### @@@",
]


# -- the estimate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("abc", 1),  # 3 ASCII bytes of a word: 3 / 3.5, rounded up
        ("abcd", 2),
        (" capital", 3),  # the leading space belongs to the word
        ("12345", 5),  # digits one by one
        ("a1b2", 4),  # a, 1, b, 2
        ("héllo", 3),  # 4 ASCII bytes / 3.5 + 2 other bytes / 1.5
        ("日本語", 6),  # 9 other bytes / 1.5
        ("!!!", 2),  # a symbol run: 3 bytes / 2
        ("   ", 1),  # a whitespace run
        ("The capital of France is Paris.", 11),  # SmolLM2: 7
    ],
)
def test_estimate_counts_pieces_by_their_bytes(text: str, expected: int):
    assert EstimateTokenCounter().count(text) == expected


def test_estimate_for_messages_adds_per_message_and_reply_overheads():
    messages = [Message("system", "Be brief."), Message("user", "What is 2 + 2?")]
    counter = token_counter(None)

    expected = ESTIMATE_REPLY_OVERHEAD + sum(counter.count(m.content) + ESTIMATE_MESSAGE_OVERHEAD for m in messages)
    assert counter.count_messages(messages) == expected
    assert counter.count_messages([]) == ESTIMATE_REPLY_OVERHEAD


@pytest.mark.parametrize("text", ENGLISH + OTHER_TEXTS)
def test_estimate_over_counts_against_a_real_tokenizer(text: str):
    real = token_counter("smollm2").count(text)

    assert token_counter(None).count(text) >= real


def test_estimate_over_counts_english_conversations_against_the_model_template():
    # The template's default system prompt is model specific; with a system message the estimate holds.
    messages = [Message("system", "You answer from the sources."), *(Message("user", text) for text in ENGLISH)]

    assert token_counter(None).count_messages(messages) >= token_counter("smollm2").count_messages(messages)


# -- specs -------------------------------------------------------------------------------------------


def test_token_counter_is_cached_per_spec():
    assert token_counter(None) is token_counter(None)
    assert token_counter("smollm2") is token_counter("smollm2")
    assert token_counter("SmolLM2") is not token_counter("smollm2")  # one per spec string, same files
    assert isinstance(token_counter("SmolLM2-135M-Instruct"), TokenizerTokenCounter)


@pytest.mark.parametrize("spec", ["gpt-9", "", "/no/such/tokenizer.json", "smollm2.txt"])
def test_unknown_spec_is_a_registry_error_naming_it(spec: str):
    with pytest.raises(ModelRegistryError) as info:
        token_counter(spec)

    assert repr(spec) in str(info.value)
    assert "smollm2" in str(info.value)


def test_path_to_a_tokenizer_json_counts_with_it_and_its_template(tmp_path: Path):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((SMOLLM2_DIR / name).read_bytes())
    messages = [Message("user", "Hi there")]

    by_file = token_counter(str(tmp_path / "tokenizer.json"))
    by_folder = token_counter(str(tmp_path))

    assert by_file.count("Hello world") == token_counter("smollm2").count("Hello world")
    assert by_file.count_messages(messages) == token_counter("smollm2").count_messages(messages)
    assert by_folder.count_messages(messages) == by_file.count_messages(messages)


def test_tokenizer_without_a_template_estimates_only_the_template(tmp_path: Path):
    path = tmp_path / "bare.json"
    path.write_bytes((SMOLLM2_DIR / "tokenizer.json").read_bytes())
    counter = token_counter(str(path))
    messages = [Message("user", "Hello world"), Message("assistant", "Hi!")]

    expected = ESTIMATE_REPLY_OVERHEAD + sum(counter.count(m.content) + ESTIMATE_MESSAGE_OVERHEAD for m in messages)
    assert counter.count_messages(messages) == expected


def test_malformed_tokenizer_file_fails_on_first_use_with_its_path(tmp_path: Path):
    path = tmp_path / "tokenizer.json"
    path.write_text('{"not": "a tokenizer"}')
    counter = token_counter(str(path))  # nothing read yet

    with pytest.raises(ModelRegistryError, match="cannot be read") as info:
        counter.count("x")
    assert str(path) in str(info.value)


def test_template_that_raises_is_a_request_error(tmp_path: Path):
    (tmp_path / "tokenizer.json").write_bytes((SMOLLM2_DIR / "tokenizer.json").read_bytes())
    template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}x"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    counter = TokenizerTokenCounter(tmp_path / "tokenizer.json", tmp_path / "tokenizer_config.json")

    assert counter.count_messages([Message("user", "hi")]) == counter.count("x")
    with pytest.raises(ModelRequestError, match="first must be user"):
        counter.count_messages([Message("assistant", "hi")])


def test_importing_the_module_loads_no_tokenizer():
    code = (
        "import sys; import strata.inference.tokens as t; c = t.token_counter('smollm2'); "
        "print('tokenizers' in sys.modules, 'jinja2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()

    assert out == ["False", "False"]


# -- the shipped SmolLM2 tokenizer ------------------------------------------------------------------


def test_smollm2_template_writes_the_default_system_prompt_and_the_generation_prompt():
    counter = token_counter("smollm2")
    config = json.loads((SMOLLM2_DIR / "tokenizer_config.json").read_text())
    tokenizer = Tokenizer.from_file(str(SMOLLM2_DIR / "tokenizer.json"))
    user = [Message("user", "Hi")]
    with_system = [Message("system", "Be brief."), Message("user", "Hi")]

    assert "<|im_start|>" in config["chat_template"]
    # <|im_start|>user\nHi<|im_end|>\n plus the default system turn, then <|im_start|>assistant\n.
    expected_user_turn = len(tokenizer.encode("<|im_start|>user\nHi<|im_end|>\n").ids)
    generation = len(tokenizer.encode("<|im_start|>assistant\n").ids)
    system_turn = len(tokenizer.encode("<|im_start|>system\nBe brief.<|im_end|>\n").ids)
    assert counter.count_messages(with_system) == system_turn + expected_user_turn + generation
    assert counter.count_messages(user) > expected_user_turn + generation + 5  # the default system prompt


def test_smollm2_special_tokens_are_single_tokens():
    tokenizer = Tokenizer.from_file(str(SMOLLM2_DIR / "tokenizer.json"))

    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert len(tokenizer.encode(special, add_special_tokens=False).ids) == 1


def test_smollm2_count_splits_digits_and_round_trips_text():
    counter = token_counter("smollm2")
    tokenizer = Tokenizer.from_file(str(SMOLLM2_DIR / "tokenizer.json"))
    text = "Prices rose 12345 % — naïve café, 日本語 🚀"

    assert counter.count("12345") == 5
    assert tokenizer.decode(tokenizer.encode(text).ids) == text
    assert counter.count(text) == len(tokenizer.encode(text).ids)
    assert counter.count("") == 0


def test_long_text_is_counted_whole():
    text = " ".join(ENGLISH) * 40

    count = token_counter("smollm2").count(text)

    assert count > 2000  # no truncation from the file's settings
    assert count <= math.ceil(len(text.encode()) / 3)
