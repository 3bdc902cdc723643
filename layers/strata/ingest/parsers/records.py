"""JSON and JSON Lines: one paragraph per record, one ``path.to.field: value`` line per value.

A top-level array in a ``.json`` file is a list of records; any other top-level value is one
record. In JSON Lines (``.jsonl``, ``.ndjson``) every non-blank line is a record. Nested objects
are flattened into dotted paths and arrays into ``[index]`` steps (``items[0].sku: A-1``); an
array of plain values stays on one line (``tags: red, blue``). Nulls and empty containers are
left out: they say nothing a search could find.
"""

from __future__ import annotations

import json
from typing import Any

from strata.ingest.exceptions import UnreadableDocumentError
from strata.ingest.parsers.base import MEGABYTE, Parser, fallback_title, file_name
from strata.ingest.parsers.charset import decode_text
from strata.ingest.parsers.types import JSON, JSON_LINES, Page, ParsedDocument

_MAX_DEPTH = 64


class JsonParser(Parser):
    name = "JSON"
    content_types = (JSON, "text/json")
    extensions = (".json",)
    max_bytes = 20 * MEGABYTE

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        text = decode_text(data, key=key, charset=charset)
        value = _load(text, key=key, what="JSON")
        records = value if isinstance(value, list) else [value]
        return _document(records, key=key, content_type=JSON)


class JsonLinesParser(Parser):
    name = "JSON Lines"
    content_types = (JSON_LINES, "application/x-ndjson", "application/ndjson", "application/x-jsonlines")
    extensions = (".jsonl", ".ndjson")
    max_bytes = 20 * MEGABYTE

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        text = decode_text(data, key=key, charset=charset)
        records = [
            _load(line, key=key, what="JSON Lines", line_number=number)
            for number, line in enumerate(text.split("\n"), start=1)
            if line.strip()
        ]
        return _document(records, key=key, content_type=JSON_LINES)


def _load(text: str, *, key: str, what: str, line_number: int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {line_number}" if line_number is not None else f"line {exc.lineno}"
        raise UnreadableDocumentError(
            f"'{file_name(key)}' is not valid {what} ({where}, column {exc.colno}): {exc.msg}.", key=key
        ) from exc
    except RecursionError as exc:
        raise UnreadableDocumentError(f"'{file_name(key)}' is nested too deeply to read.", key=key) from exc


def _document(records: list[Any], *, key: str, content_type: str) -> ParsedDocument:
    paragraphs = ["\n".join(lines) for record in records if (lines := record_lines(record))]
    return ParsedDocument(
        title=fallback_title(key), pages=[Page(None, "\n\n".join(paragraphs))], content_type=content_type
    )


def record_lines(value: Any) -> list[str]:
    """``path: value`` lines for every plain value inside ``value``, in document order."""
    lines: list[str] = []
    _flatten(value, "", 0, lines)
    return lines


def _flatten(value: Any, path: str, depth: int, lines: list[str]) -> None:
    # Appends rather than yields: nested generators cost more than the JSON decoding itself.
    if isinstance(value, dict):
        if depth >= _MAX_DEPTH:
            lines.append(f"{path or 'value'}: {' '.join(json.dumps(value, ensure_ascii=False).split())}")
            return
        for name, item in value.items():
            _flatten(item, f"{path}.{name}" if path else str(name), depth + 1, lines)
    elif isinstance(value, list):
        if all(_is_plain(item) for item in value):
            if plain := [text for item in value if item is not None and (text := _plain(item))]:
                lines.append(f"{path or 'value'}: {', '.join(plain)}")
        elif depth >= _MAX_DEPTH:
            lines.append(f"{path or 'value'}: {' '.join(json.dumps(value, ensure_ascii=False).split())}")
        else:
            for index, item in enumerate(value):
                _flatten(item, f"{path}[{index}]", depth + 1, lines)
    elif value is not None and (text := _plain(value)):
        lines.append(f"{path or 'value'}: {text}")


def _is_plain(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _plain(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
