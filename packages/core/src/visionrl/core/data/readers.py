"""Data-file readers: one generator per format, yielding (1-based row, raw row dict).

Errors name the file and the row (`DataError`). TSV files follow VLMEvalKit: a header row (row 1), then
one row per record; empty cells read as None, as pandas reads them. The `image` column holds base64
image data (a Python list of it for several images) and is decoded to `{"bytes": ..., "path": None}`, the
form `datasets` gives an Image feature, so every reader sees images alike; a value of 64 characters or
fewer naming another row's `index` is VLMEvalKit's shorthand for "the same image as that row" and is
resolved (in first passes over the file).
"""

from __future__ import annotations

import ast
import base64
import binascii
import csv
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from visionrl.core.data.validate import DataError, Where

Rows = Iterator[tuple[int, dict[str, Any]]]
_REFERENCE_MAX = 64  # VLMEvalKit: an `image` value this short is another row's index, not image data


def jsonl_rows(path: Path, label: str) -> Rows:
    try:
        f = path.open("rb")
    except OSError as e:
        raise DataError(f"{label}: cannot open ({e.strerror})") from None
    with f:
        for n, raw in enumerate(f, start=1):
            where = Where(label, n)
            try:
                # utf-8-sig tolerates the byte-order mark some editors put at the start of a file.
                line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise where.error(f"file is not valid UTF-8 text ({e.reason} at byte {e.start})") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise where.error(f"malformed JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise where.error(f"expected a JSON object, got {type(row).__name__}")
            yield n, row


def parquet_rows(path: Path, label: str) -> Rows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=256)
        n = 0
        for batch in batches:
            for row in batch.to_pylist():
                n += 1
                yield n, row
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{label}: cannot read Parquet ({e})") from None


def json_rows(path: Path, label: str) -> Rows:
    """A `.json` file holding one array of objects; row n is its n-th element."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except OSError as e:
        raise DataError(f"{label}: cannot open ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{label}: file is not valid UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{label}: malformed JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(data, list):
        raise DataError(f"{label}: expected a JSON array of objects, got {type(data).__name__}")
    for n, row in enumerate(data, start=1):
        if not isinstance(row, dict):
            raise Where(label, n).error(f"expected a JSON object, got {type(row).__name__}")
        yield n, row


def _tsv_records(path: Path, label: str) -> Iterator[tuple[int, list[str]]]:
    """(1-based row, cells) of every non-blank TSV row; the header is row 1."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # base64 images are long fields
    n = 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            for n, cells in enumerate(csv.reader(f, delimiter="\t"), start=1):
                if cells:
                    yield n, cells
    except OSError as e:
        raise DataError(f"{label}: cannot open ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise Where(label, n + 1).error(f"file is not valid UTF-8 text ({e.reason})") from None
    except csv.Error as e:
        raise Where(label, n + 1).error(f"malformed TSV ({e})") from None


def _tsv_dicts(path: Path, label: str) -> Rows:
    header: list[str] | None = None
    for n, cells in _tsv_records(path, label):
        if header is None:
            if len(set(cells)) != len(cells):
                raise Where(label, n).error("the header names a column twice")
            header = cells
            continue
        if len(cells) > len(header):
            raise Where(label, n).error(f"has {len(cells)} cells but the header names {len(header)} columns")
        cells = cells + [""] * (len(header) - len(cells))
        yield n, {k: (v if v != "" else None) for k, v in zip(header, cells)}


def _decode_b64(value: str, where: Where) -> dict[str, Any]:
    try:
        return {"bytes": base64.b64decode(value, validate=True), "path": None}
    except (binascii.Error, ValueError):
        raise where.error("column 'image' is not valid base64 image data") from None


def _tsv_image(value: str, images: Mapping[str, str], where: Where) -> Any:
    """VLMEvalKit's `image` cell: base64, a list of base64, or another row's index (else left as text)."""
    if len(value) <= _REFERENCE_MAX:
        value = images.get(value, value)
        if len(value) <= _REFERENCE_MAX:
            return value  # not image data: a path or other text, left to the caller
    if value.startswith("[") and value.endswith("]"):
        try:
            items = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise where.error("column 'image' looks like a list but cannot be read as one") from None
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise where.error("column 'image' must list base64 strings")
        return [_decode_b64(v, where) for v in items]
    return _decode_b64(value, where)


def _tsv_references(path: Path, label: str) -> dict[str, str]:
    """index → image data of the rows that other rows' short `image` cells name (VLMEvalKit's shorthand)."""

    def short(value: str | None) -> bool:
        return value is not None and len(value) <= _REFERENCE_MAX

    try:
        refs = {row["image"] for _, row in _tsv_dicts(path, label) if short(row.get("image"))}
        if not refs:
            return {}
        return {
            row["index"]: row["image"]
            for _, row in _tsv_dicts(path, label)
            if row.get("index") in refs and row.get("image") is not None and not short(row["image"])
        }
    except DataError:
        return {}  # a malformed row is reported when (and only if) the caller reads that far


def tsv_rows(path: Path, label: str) -> Rows:
    images = _tsv_references(path, label)
    for n, row in _tsv_dicts(path, label):
        if row.get("image") is not None:
            row["image"] = _tsv_image(row["image"], images, Where(label, n))
        yield n, row


READERS: dict[str, Callable[[Path, str], Rows]] = {
    ".jsonl": jsonl_rows,
    ".parquet": parquet_rows,
    ".tsv": tsv_rows,
    ".json": json_rows,
}
"""File suffix → reader."""
