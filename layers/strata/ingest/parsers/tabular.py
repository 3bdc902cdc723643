"""CSV and TSV: one paragraph per row, each value named by its column.

The first row is the header. A row ``Alice,42`` under ``name,age`` becomes the line
``name: Alice; age: 42``: a chunk of rows still says what each number is, and a blank line
between rows lets the chunker cut between them. The dialect (delimiter, quoting) is sniffed from
the start of the file, falling back to the extension's usual delimiter. Empty values are left out.
"""

from __future__ import annotations

import csv
import io

from strata.ingest.exceptions import UnreadableDocumentError
from strata.ingest.parsers.base import MEGABYTE, Parser, fallback_title, file_name, reason
from strata.ingest.parsers.charset import decode_text
from strata.ingest.parsers.types import CSV, TSV, Page, ParsedDocument

_SNIFF_CHARS = 64 * 1024
_DELIMITERS = ",;\t|"


class CsvParser(Parser):
    name = "CSV"
    content_types = (CSV, "application/csv", "text/x-csv", "text/comma-separated-values")
    extensions = (".csv",)
    max_bytes = 20 * MEGABYTE
    default_delimiter = ","

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        text = decode_text(data, key=key, charset=charset)
        rows = _read_rows(text, dialect=self._dialect(text), key=key)
        paragraphs = _row_lines(rows)
        return ParsedDocument(
            title=fallback_title(key), pages=[Page(None, "\n\n".join(paragraphs))], content_type=self.content_type
        )

    def _dialect(self, text: str) -> type[csv.Dialect] | csv.Dialect:
        sample = text[:_SNIFF_CHARS]
        if len(sample) == _SNIFF_CHARS and "\n" in sample:
            sample = sample[: sample.rindex("\n")]  # a cut-off last line confuses the sniffer
        try:
            return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
        except csv.Error:
            return csv.excel_tab if self.default_delimiter == "\t" else csv.excel


class TsvParser(CsvParser):
    name = "TSV"
    content_types = (TSV,)
    extensions = (".tsv",)
    default_delimiter = "\t"


def _read_rows(text: str, *, dialect: type[csv.Dialect] | csv.Dialect, key: str) -> list[list[str]]:
    limit = csv.field_size_limit()
    # The default (128 KiB) refuses long text cells; no cell can be longer than the file.
    csv.field_size_limit(max(limit, len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        return [[" ".join(value.split()) for value in row] for row in reader]
    except csv.Error as exc:
        raise UnreadableDocumentError(
            f"'{file_name(key)}' is not a readable CSV file (line {reader.line_num}): {reason(exc)}", key=key
        ) from exc
    finally:
        csv.field_size_limit(limit)


def _row_lines(rows: list[list[str]]) -> list[str]:
    rows = [row for row in rows if any(row)]
    if not rows:
        return []
    header = [name or f"column {number}" for number, name in enumerate(rows[0], start=1)]
    if len(rows) == 1:
        return ["; ".join(name for name in rows[0] if name)]  # a header alone still says what the file is
    lines = []
    for row in rows[1:]:
        if len(row) > len(header):
            header += [f"column {number}" for number in range(len(header) + 1, len(row) + 1)]
        if pairs := [f"{name}: {value}" for name, value in zip(header, row, strict=False) if value]:
            lines.append("; ".join(pairs))
    return lines
