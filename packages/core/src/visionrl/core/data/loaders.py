"""Read rows from a local folder, a single data file or a `datasets` id; build records; write folders.

A dataset folder is `data.jsonl` (or `data.parquet`, `data.tsv`, or any `*.jsonl`/`*.parquet`/`*.tsv`)
plus image files referenced by paths relative to the folder. A single `.json` file holding one array
of objects (Multimodal RewardBench's `all_data.json`) is read too. A folder without such files (e.g. a
clone of a Hub dataset repo with `data/train-*.parquet`) and any non-path `source` go through
`datasets.load_dataset(source, config, split=split)`.

`iter_rows` yields the raw rows with their `Where` (file and 1-based row); `load_records` validates
every row into a record (see `validate.py`). Problems raise `DataError` naming the file and the row.

File formats (TSV as VLMEvalKit writes it, with base64 images) are read by `readers.py`.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from visionrl.core.data.readers import READERS, Rows
from visionrl.core.data.records import MCQRecord, Record
from visionrl.core.data.validate import (
    DECODE_ERRORS,
    DEFAULT_MAX_PIXELS,
    FIELDS,
    DataError,
    ImagePolicy,
    Where,
    build_record,
)

__all__ = ["DataError", "iter_rows", "load_records", "source_root", "write_folder"]

_SUFFIXES = (".jsonl", ".parquet", ".tsv")  # data files found inside a folder
_FILE_SUFFIXES = (*_SUFFIXES, ".json")  # also accepted as a single file


@dataclass
class _Table:
    """One stream of raw rows: where they come from and how their record ids default."""

    label: str
    stem: str
    rows: Rows


def _datasets_table(source: str, split: str, config: str | None, local: bool = False) -> _Table:
    """Rows of `datasets.load_dataset(source, config, split=split)`, for Hub ids and Hub-style folders."""
    import datasets

    try:
        ds = datasets.load_dataset(source, config, split=split)
    except (OSError, ValueError, datasets.exceptions.DatasetsError) as e:  # ConnectionError is an OSError
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        what = "a folder without .jsonl/.parquet files that" if local else "not a local file or folder and"
        raise DataError(f"{source}: {what} could not be loaded as dataset split {split!r} ({msg})") from None
    label = f"{source} [{split}]"

    def rows() -> Rows:
        for i in range(len(ds)):
            try:
                row = ds[i]  # decodes Image features: a corrupt image fails here, so name its row
            except DECODE_ERRORS as e:
                raise Where(label, i + 1).error(f"cannot decode row ({type(e).__name__}: {e})") from None
            yield i + 1, row

    return _Table(label, source.rstrip("/").rsplit("/", 1)[-1], rows())


def _data_files(folder: Path, split: str) -> list[Path]:
    """The data files of a folder: data.*, else files named after the split, else all of them."""
    for pattern in ("data", split, f"{split}-*"):
        files = sorted(p for s in _SUFFIXES for p in folder.glob(pattern + s) if p.is_file())
        if files:
            return files
    return sorted(p for s in _SUFFIXES for p in folder.glob("*" + s) if p.is_file())


def _file_table(path: Path) -> _Table:
    label = str(path)
    return _Table(label, path.stem, READERS[path.suffix](path, label))


def _tables(source: str | Path, split: str, config: str | None = None) -> list[_Table]:
    path = Path(source).expanduser()
    if path.is_dir():
        files = _data_files(path, split)
        if files:
            return [_file_table(f) for f in files]
        return [_datasets_table(str(path), split, config, local=True)]
    if path.is_file():
        if path.suffix not in _FILE_SUFFIXES:
            raise DataError(
                f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .parquet, .tsv or .json"
            )
        return [_file_table(path)]
    text = str(source)
    if isinstance(source, Path) or text.startswith(("/", ".", "~")) or text.endswith(_FILE_SUFFIXES):
        raise DataError(f"{source}: no such file or folder")
    return [_datasets_table(text, split, config)]


def _chain(tables: list[_Table]) -> Iterator[tuple[Where, dict[str, Any]]]:
    for table in tables:
        for n, row in table.rows:
            yield Where(table.label, n), row


def iter_rows(
    source: str | Path, *, split: str = "train", config: str | None = None
) -> Iterator[tuple[Where, dict[str, Any]]]:
    """The raw rows of a folder, a single data file or a `datasets` id, each with its `Where`.

    The source is resolved at once (a missing path or an unloadable dataset id raises here); rows
    are read lazily. Relative image paths in the rows resolve against `source_root(source)`.

    Args:
        source: local folder, local file (.jsonl/.parquet/.tsv/.json), or a `datasets` id.
        split: split passed to `load_dataset` (and preferred file name inside a folder).
        config: dataset configuration passed to `load_dataset` (e.g. "en" for MMBench).

    Raises:
        DataError: naming the file (and 1-based row) of the first unreadable row.
    """
    return _chain(_tables(source, split, config))


def source_root(source: str | Path) -> Path | None:
    """Where a source's relative image paths resolve: the folder itself, a file's folder, or None."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    return path.parent if path.is_file() else None


def load_records(
    source: str | Path,
    kind: Literal["vqa", "pair", "mcq"],
    columns: Mapping[str, str] | None = None,
    split: str = "train",
    limit: int | None = None,
    image_root: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    resize_large: bool = False,
) -> list[Record]:
    """Load and validate records of `kind` from a folder, a data file or a dataset id (see `iter_rows`).

    Args:
        source: local folder, local file, or a `datasets` id (Hub or anything `load_dataset` takes).
        kind: which record type to build.
        columns: record field → source column, for fields whose column is named differently.
        split: split passed to `load_dataset` (and preferred file name inside a folder).
        limit: keep only the first `limit` rows.
        image_root: where relative image paths resolve (default: the folder holding the data file).
        max_pixels: images with more pixels are rejected, or shrunk when `resize_large` is set.

    Raises:
        DataError: naming the file and 1-based row of the first problem.
    """
    if kind not in FIELDS:
        raise DataError(f"unknown record kind {kind!r}; choose one of {', '.join(FIELDS)}")
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(FIELDS[kind]))
    if unknown:
        raise DataError(f"columns: {unknown} are not fields of a {kind} record ({', '.join(FIELDS[kind])})")
    tables = _tables(source, split)
    stems = {t.label: t.stem for t in tables}
    rows = _chain(tables)  # the rows `iter_rows` yields
    root = Path(image_root) if image_root is not None else source_root(source)
    policy = ImagePolicy(root, max_pixels, resize_large)
    records: list[Record] = []
    first_seen: dict[str, Where] = {}
    # Stop before reading a row past `limit`: rows the caller did not ask for are not validated.
    while limit is None or len(records) < limit:
        try:
            where, row = next(rows)
        except StopIteration:
            break
        default_id = f"{stems[where.file]}-{where.row}"
        record = build_record(row, kind, columns, where, default_id, policy)
        if record.id in first_seen:
            raise where.error(f"duplicate id {record.id!r} (first used at {first_seen[record.id]})")
        first_seen[record.id] = where
        records.append(record)
    if not records and limit != 0:
        raise DataError(f"{source}: no records found")
    return records


# ---------------------------------------------------------------- writing


def _image_name(rid: str, k: int, used: set[str]) -> str:
    # Ids may hold characters that are unsafe in file names; keep names unique after cleaning.
    base = re.sub(r"[^A-Za-z0-9._-]", "_", rid) or "image"
    name = f"{base}_{k}.png"
    while name in used:
        base += "_"
        name = f"{base}_{k}.png"
    used.add(name)
    return name


def _save_image(image: Any, dest: Path) -> None:
    if isinstance(image, Image.Image):
        image.convert("RGB").save(dest)
    else:
        with Image.open(image) as im:
            im.convert("RGB").save(dest)


def _row(record: Record, folder: Path, used: set[str], fmt: str) -> dict[str, Any]:
    row = asdict(record) | {"images": []}
    for k, image in enumerate(record.images):
        name = _image_name(record.id, k, used)
        _save_image(image, folder / "images" / name)
        row["images"].append(f"images/{name}")
    try:
        meta = json.dumps(record.meta, ensure_ascii=False)
    except TypeError as e:
        raise ValueError(f"record {record.id!r}: meta is not JSON-serialisable ({e})") from None
    if fmt == "parquet":
        # Heterogeneous nested dicts make poor Parquet structs: store them as JSON text instead.
        row["meta"] = meta
        if isinstance(record, MCQRecord):
            row["options"] = json.dumps(record.options, ensure_ascii=False)
    return row


def write_folder(
    records: Sequence[Record],
    path: str | Path,
    fmt: Literal["jsonl", "parquet"] = "jsonl",
    overwrite: bool = False,
) -> Path:
    """Write `<path>/data.<fmt>` and `<path>/images/<id>_<k>.png`; image paths are stored relative.

    The folder is built under a temporary name next to `path` and renamed into place at the end,
    so a crash never leaves a folder that looks complete.
    """
    if fmt not in ("jsonl", "parquet"):
        raise ValueError(f"fmt must be 'jsonl' or 'parquet', got {fmt!r}")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists (pass overwrite=True to replace it)")
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError("record ids must be unique")
    if len({type(r) for r in records}) > 1:
        raise ValueError("all records of a folder must be of one kind")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        (tmp / "images").mkdir()
        used: set[str] = set()
        rows = [_row(r, tmp, used, fmt) for r in records]
        if fmt == "jsonl":
            with (tmp / "data.jsonl").open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(rows), tmp / "data.parquet")
        if path.exists():
            old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path
