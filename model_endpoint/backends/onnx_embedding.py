"""Embeddings with ONNX Runtime on the CPU, from an offline export of all-MiniLM-L6-v2.

The same pipeline as the sentence-transformers backend (BERT tokenization, at most
``max_seq_length`` tokens with the special tokens, mean pooling over the attention mask, L2
normalization on request) without torch at run time. The int8 graph (``quantize_dynamic``) is the
default: on a small CPU it is the fastest, and its vectors stay within ~0.99 cosine of fp32.

The export is made ahead of time by ``python -m model_endpoint.onnx_export``; this backend never
exports nor fetches, and ``load`` raises ``OnnxExportMissingError`` naming that command when the
folder is empty. :func:`embedding_backend_or_fallback` turns that into the sentence-transformers
backend plus a warning, for a server that should start either way.

Inputs are sorted by token count and padded per batch, so a batch of short texts does not pay
for the longest text of the request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model_endpoint.backends.base import EmbeddingBackend, reject_too_long
from model_endpoint.exceptions import BackendError

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer

__all__ = (
    "OnnxEmbeddingBackend",
    "OnnxExportMissingError",
    "TokenBatch",
    "embedding_backend_or_fallback",
    "length_batches",
    "mean_pool",
    "l2_normalize",
)

logger = logging.getLogger(__name__)


class OnnxExportMissingError(BackendError):
    """The ONNX export folder is missing or incomplete; the message says how to make it."""


@dataclass(frozen=True, slots=True)
class TokenBatch:
    """One padded batch: which inputs it holds (their positions in the request) and their tokens."""

    positions: list[int]
    input_ids: np.ndarray  # (batch, longest), int64, padded with the pad id
    attention_mask: np.ndarray  # (batch, longest), int64, 0 on padding
    token_type_ids: np.ndarray  # (batch, longest), int64


def length_batches(
    encodings: Sequence[Encoding], batch_size: int, *, pad_id: int = 0, sort_by_length: bool = True
) -> list[TokenBatch]:
    """Group ``encodings`` into batches of at most ``batch_size``, each padded to its own longest input.

    Sorted by token count first (stable, so equal lengths keep request order): padding costs as
    much compute as real tokens, and wiki-sized chunks vary from a few tokens to the maximum.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = list(range(len(encodings)))
    if sort_by_length:
        order.sort(key=lambda index: len(encodings[index].ids))
    batches: list[TokenBatch] = []
    for start in range(0, len(order), batch_size):
        positions = order[start : start + batch_size]
        longest = max(len(encodings[index].ids) for index in positions)
        shape = (len(positions), longest)
        input_ids = np.full(shape, pad_id, dtype=np.int64)
        attention_mask = np.zeros(shape, dtype=np.int64)
        token_type_ids = np.zeros(shape, dtype=np.int64)
        for row, index in enumerate(positions):
            encoding = encodings[index]
            length = len(encoding.ids)
            input_ids[row, :length] = encoding.ids
            attention_mask[row, :length] = encoding.attention_mask
            token_type_ids[row, :length] = encoding.type_ids
        batches.append(TokenBatch(positions, input_ids, attention_mask, token_type_ids))
    return batches


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """The mean of the token vectors the mask keeps (sentence-transformers' ``pooling_mode_mean_tokens``)."""
    mask = attention_mask[:, :, None].astype(hidden.dtype)
    summed = (hidden * mask).sum(axis=1)
    # The same floor as sentence-transformers, so an all-padding row gives zeros, not NaN.
    return summed / np.clip(mask.sum(axis=1), 1e-9, None)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (torch's ``F.normalize``: a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class OnnxEmbeddingBackend(EmbeddingBackend):
    """all-MiniLM-L6-v2 (or another exported BERT-style model) on ONNX Runtime's CPU provider."""

    def __init__(
        self,
        export_dir: Path | None = None,
        *,
        quantized: bool = True,
        batch_size: int = 32,
        sort_by_length: bool = True,
        threads: int | None = None,
        model_name: str | None = None,
        session: Any | None = None,
        tokenizer_path: Path | None = None,
        max_seq_length: int | None = None,
    ) -> None:
        """``export_dir`` defaults to ``onnx_export.default_export_dir()``; ``threads`` to ORT's choice.

        ``session`` (anything with ONNX Runtime's ``run``/``get_inputs``) with ``tokenizer_path``
        and ``max_seq_length`` replaces the export folder: tests run the pipeline on a fake graph.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self._export_dir = export_dir
        self._quantized = quantized
        self._batch_size = batch_size
        self._sort_by_length = sort_by_length
        self._threads = threads
        self._model_name = model_name
        self._given_session = session
        self._tokenizer_path = tokenizer_path
        self._given_max_seq_length = max_seq_length
        self._session: Any | None = None
        self._input_names: frozenset[str] = frozenset()
        self._dimensions = 0
        self._max_seq_length = 0
        # One tokenizer per truncation side plus an untruncated one for the too-long check: a
        # `tokenizers.Tokenizer`'s truncation is a mutable setting, shared by every caller.
        self._tokenizers: dict[str, Tokenizer] = {}
        self._pad_id = 0
        # One forward pass at a time: ONNX Runtime already spreads one batch over every core.
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return self._model_name or "all-MiniLM-L6-v2"

    @property
    def dimensions(self) -> int:
        self._require_session()
        return self._dimensions

    @property
    def max_input_tokens(self) -> int:
        self._require_session()
        return self._max_seq_length

    @property
    def quantized(self) -> bool:
        return self._quantized

    def load(self) -> None:
        if self._given_session is not None:
            if self._tokenizer_path is None or self._given_max_seq_length is None:
                raise ValueError("a given session needs tokenizer_path and max_seq_length")
            self._load_tokenizers(self._tokenizer_path, self._given_max_seq_length)
            self._session = self._given_session
            self._input_names = frozenset(i.name for i in self._session.get_inputs())
            self._dimensions = self._probe_dimensions()
            return
        from model_endpoint.onnx_export import FP32_FILE, INT8_FILE, TOKENIZER_FILE, OnnxExportError, read_manifest

        export_dir = self._export_dir or _default_export_dir()
        graph = export_dir / (INT8_FILE if self._quantized else FP32_FILE)
        try:
            manifest = read_manifest(export_dir)
        except OnnxExportError as exc:
            raise OnnxExportMissingError(f"{exc}; make it with `{_export_command(self._export_dir)}`") from exc
        if not graph.is_file():
            raise OnnxExportMissingError(
                f"{graph} is missing; make it with `{_export_command(self._export_dir)} --force`"
            )
        self._load_tokenizers(export_dir / TOKENIZER_FILE, manifest.max_seq_length)
        self._session = _inference_session(graph, self._threads)
        self._input_names = frozenset(i.name for i in self._session.get_inputs())
        self._dimensions = manifest.dimensions
        logger.info(
            "ONNX embedding model loaded from %s (%s, %d dimensions)",
            graph,
            "int8" if self._quantized else "fp32",
            self._dimensions,
        )

    def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool,
        truncate: bool,
        truncate_left: bool = False,
    ) -> list[list[float]]:
        session = self._require_session()
        if not texts:
            return []
        if truncate:
            encodings = self._tokenizers["left" if truncate_left else "right"].encode_batch(list(texts))
        else:
            encodings = self._tokenizers["none"].encode_batch(list(texts))
            reject_too_long((len(encoding.ids) for encoding in encodings), self._max_seq_length)
        vectors = np.empty((len(texts), self._dimensions), dtype=np.float32)
        with self._lock:
            for batch in length_batches(
                encodings, self._batch_size, pad_id=self._pad_id, sort_by_length=self._sort_by_length
            ):
                try:
                    hidden = self._run(session, batch)
                except Exception as exc:  # runtime failures are ours, not the caller's
                    raise BackendError(f"embedding failed: {type(exc).__name__}") from exc
                vectors[batch.positions] = mean_pool(hidden, batch.attention_mask)
        if normalize:
            vectors = l2_normalize(vectors)
        return vectors.tolist()

    def _load_tokenizers(self, path: Path, max_seq_length: int) -> None:
        from tokenizers import Tokenizer

        if not path.is_file():
            raise OnnxExportMissingError(f"{path} is missing")
        base = Tokenizer.from_file(str(path))
        # tokenizer.json ships padded to a fixed 128 and truncated at 128; the model takes 256.
        base.no_padding()
        base.no_truncation()
        self._pad_id = base.token_to_id("[PAD]") or 0
        self._max_seq_length = max_seq_length
        for side in ("right", "left"):
            tokenizer = Tokenizer.from_str(base.to_str())
            tokenizer.enable_truncation(max_length=max_seq_length, direction=side)
            self._tokenizers[side] = tokenizer
        self._tokenizers["none"] = base

    def _run(self, session: Any, batch: TokenBatch) -> np.ndarray:
        """The graph's ``last_hidden_state``; only the inputs it declares are fed (some drop token types)."""
        feeds = {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "token_type_ids": batch.token_type_ids,
        }
        (hidden,) = session.run(["last_hidden_state"], {k: v for k, v in feeds.items() if k in self._input_names})
        return np.asarray(hidden, dtype=np.float32)

    def _probe_dimensions(self) -> int:
        encoding = self._tokenizers["right"].encode("dimensions")
        (batch,) = length_batches([encoding], 1, pad_id=self._pad_id)
        return int(np.asarray(self._run(self._session, batch)).shape[-1])

    def _require_session(self) -> Any:
        if self._session is None:
            raise BackendError("embedding model is not loaded")
        return self._session

    def close(self) -> None:
        self._session = None


def embedding_backend_or_fallback(
    export_dir: Path | None = None, *, quantized: bool = True, model_path: Path | None = None
) -> EmbeddingBackend:
    """The ONNX backend, loaded, when its export exists; else the sentence-transformers one, loaded, with a warning.

    ``model_path`` is the sentence-transformers folder for the fallback (default: the packaged model).
    """
    backend = OnnxEmbeddingBackend(export_dir, quantized=quantized)
    try:
        backend.load()
    except OnnxExportMissingError as exc:
        from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend

        logger.warning("ONNX embeddings unavailable, using sentence-transformers: %s", exc)
        fallback = SentenceTransformersEmbeddingBackend(model_path)
        fallback.load()
        return fallback
    return backend


def _default_export_dir() -> Path:
    from model_endpoint.onnx_export import default_export_dir

    return default_export_dir()


def _export_command(export_dir: Path | None) -> str:
    command = "python -m model_endpoint.onnx_export"
    return f"{command} --out {export_dir}" if export_dir else command


def _inference_session(graph: Path, threads: int | None) -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise OnnxExportMissingError("onnxruntime is not installed (install the `models` extra)") from exc
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    return onnxruntime.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])
