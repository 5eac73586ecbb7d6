"""Row validation: turn one raw row (a dict from JSONL, Parquet or `datasets`) into a record.

Everything a user's data can get wrong is reported as a `DataError` whose message names the file
and the 1-based row, e.g. "data.jsonl row 17: field 'answer' is missing". Checks run when the
data is loaded, before any training step, so a bad row never surfaces as a traceback mid-run.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from PIL import Image, UnidentifiedImageError
from visionrl.core.data.records import MCQRecord, PairRecord, Record, VQARecord
from visionrl.core.errors import UserError

Kind = Literal["vqa", "pair", "mcq"]
DEFAULT_MAX_PIXELS = 4096 * 4096

# Fields each record kind reads from a row (the rest of a row is ignored).
FIELDS: dict[str, tuple[str, ...]] = {
    "vqa": ("id", "images", "question", "answer", "choices", "meta"),
    "pair": ("id", "images", "prompt", "chosen", "rejected", "category", "group_id", "meta"),
    "mcq": ("id", "images", "question", "options", "answer", "meta"),
}
_MISSING = object()
# What PIL raises on broken or truncated image data (SyntaxError comes from `verify` on bad PNGs).
DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class DataError(UserError):
    """A problem with user data, reported as one sentence naming the file and row."""


@dataclass(frozen=True)
class Where:
    """A location in the user's data, for error messages."""

    file: str
    row: int | None = None

    def __str__(self) -> str:
        return self.file if self.row is None else f"{self.file} row {self.row}"

    def error(self, message: str) -> DataError:
        return DataError(f"{self}: {message}")


@dataclass(frozen=True)
class ImagePolicy:
    """Where relative image paths resolve and how large an image may be."""

    root: Path | None
    max_pixels: int = DEFAULT_MAX_PIXELS
    resize_large: bool = False


# ---------------------------------------------------------------- images


def _resolve(value: str, policy: ImagePolicy, where: Where) -> Path:
    """A relative path inside the dataset root; anything else is refused (no reads outside it)."""
    if not value.strip():
        raise where.error("image path is empty")
    if Path(value).is_absolute():
        raise where.error(f"image path {value!r} is absolute; use a path relative to the dataset folder")
    if policy.root is None:
        raise where.error(f"image path {value!r} is relative but there is no dataset folder; pass image_root")
    root = policy.root.resolve()
    try:
        path = (root / value).resolve()
    except (OSError, ValueError) as e:  # e.g. an embedded NUL byte or a symlink loop
        raise where.error(f"image path {value!r} is not a valid path ({e})") from None
    if not path.is_relative_to(root):
        raise where.error(f"image path {value!r} points outside the dataset folder {policy.root}")
    if not path.is_file():
        raise where.error(f"image {value!r} not found: there is no file {path}")
    if path.stat().st_size == 0:
        raise where.error(f"image {value!r} is an empty (0-byte) file")
    return path


def _check_size(size: tuple[int, int], name: str, policy: ImagePolicy, where: Where) -> None:
    w, h = size
    if w * h > policy.max_pixels and not policy.resize_large:
        raise where.error(
            f"image {name} is {w}x{h} = {w * h} pixels, over the limit of {policy.max_pixels} "
            "(raise max_pixels or pass resize_large=True)"
        )


def _shrink(img: Image.Image, max_pixels: int) -> Image.Image:
    """Resize to at most `max_pixels`, keeping the aspect ratio."""
    w, h = img.size
    if w * h <= max_pixels:
        return img
    scale = math.sqrt(max_pixels / (w * h))
    size = (max(1, math.floor(w * scale)), max(1, math.floor(h * scale)))
    img.draft("RGB", size)  # lets JPEG decode at reduced scale instead of at full size
    return img.resize(size, Image.Resampling.BICUBIC)


def _decode(opener: Callable[[], IO[bytes]], name: str, policy: ImagePolicy, where: Where) -> Image.Image:
    """Verify, size-check (from the header, before decoding pixels), load and convert to RGB."""
    # `_check_size` is the size rule; PIL's decompression-bomb warning would only add lines to its report.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with opener() as f, Image.open(f) as im:
                im.verify()  # catches corrupt files cheaply; the image object is unusable afterwards
                size = im.size
        except Image.DecompressionBombError:
            # Over twice PIL's MAX_IMAGE_PIXELS: PIL will not even open it, so it cannot be resized either.
            raise where.error(
                f"image {name} has more pixels than PIL will open (decompression-bomb guard), far over the "
                f"limit of {policy.max_pixels}"
            ) from None
        except DECODE_ERRORS as e:
            raise where.error(f"image {name} cannot be decoded ({type(e).__name__}: {e})") from None
        _check_size(size, name, policy, where)
        try:
            with opener() as f, Image.open(f) as im:
                return _shrink(im, policy.max_pixels).convert("RGB")  # convert() loads the pixels
        except DECODE_ERRORS as e:
            raise where.error(f"image {name} cannot be decoded ({type(e).__name__}: {e})") from None


def load_image(value: Any, policy: ImagePolicy, where: Where) -> Image.Image:
    """One image from a path, a `datasets` Image dict ({"bytes", "path"}) or a PIL image, as RGB."""
    if isinstance(value, Image.Image):
        _check_size(value.size, "in field 'images'", policy, where)
        try:
            return _shrink(value, policy.max_pixels).convert("RGB")
        except DECODE_ERRORS as e:
            raise where.error(f"image cannot be decoded ({type(e).__name__}: {e})") from None
    if isinstance(value, Mapping) and ("bytes" in value or "path" in value):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:
            if not isinstance(data, bytes | bytearray) or len(data) == 0:
                raise where.error(f"image bytes{f' of {path!r}' if path else ''} are empty or not bytes")
            return _decode(lambda: io.BytesIO(data), repr(path or "<bytes>"), policy, where)
        if path is None:
            raise where.error("image dict has neither 'bytes' nor 'path'")
        value = path
    if isinstance(value, str | Path):
        resolved = _resolve(str(value), policy, where)
        return _decode(lambda: open(resolved, "rb"), repr(str(value)), policy, where)
    raise where.error(
        f"field 'images' holds a value of type {type(value).__name__}; expected a path or an image"
    )


def load_images(value: Any, policy: ImagePolicy, where: Where) -> list[Image.Image]:
    """The `images` field: absent/None (text-only), one image, or a list of images."""
    if value is _MISSING or value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [load_image(v, policy, where) for v in items]


# ---------------------------------------------------------------- fields


def _text(value: Any, field: str, where: Where, numbers: bool = False) -> str:
    """A non-empty string (numbers are accepted and stringified where `numbers` is set)."""
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise where.error(f"field {field!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise where.error(f"field {field!r} is empty")
    return value


def _json_value(value: Any, field: str, where: Where) -> Any:
    """Parquet and CSV-like sources often store nested fields as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise where.error(f"field {field!r} is a string but not valid JSON ({e.msg})") from None


def _options(value: Any, where: Where) -> dict[str, str]:
    value = _json_value(value, "options", where)
    if isinstance(value, list | tuple):
        if len(value) > 26:
            raise where.error(f"field 'options' has {len(value)} entries; at most 26 (A-Z) are supported")
        value = {chr(ord("A") + i): v for i, v in enumerate(value)}
    if not isinstance(value, Mapping):
        raise where.error(f"field 'options' must be a dict, a list or JSON text, got {type(value).__name__}")
    options: dict[str, str] = {}
    for key, text in value.items():
        if text is None:  # Parquet structs pad options a row does not have with null
            continue
        letter = str(key).strip().upper()
        if len(letter) != 1 or not "A" <= letter <= "Z":
            raise where.error(f"option key {key!r} is not a letter A-Z")
        options[letter] = _text(text, f"options[{letter}]", where, numbers=True)
    if len(options) < 2:
        raise where.error(f"field 'options' needs at least two options, got {len(options)}")
    return options


def _mcq_answer(value: Any, options: dict[str, str], where: Where) -> str:
    """The correct option's letter; 'b', '(B)' and the exact text of one option are accepted too."""
    answer = _text(value, "answer", where)
    letter = answer.strip().strip("().:").strip().upper()
    if letter in options:
        return letter
    matches = [k for k, text in options.items() if text == answer]
    if len(matches) == 1:
        return matches[0]
    raise where.error(f"answer {answer!r} is not one of the options {', '.join(options)}")


def _meta(value: Any, where: Where) -> dict[str, Any]:
    if value is _MISSING or value is None:
        return {}
    value = _json_value(value, "meta", where)
    if not isinstance(value, dict):
        raise where.error(f"field 'meta' must be a dict or JSON object text, got {type(value).__name__}")
    return value


def _optional_id(value: Any, field: str, where: Where) -> str | None:
    if value is _MISSING or value is None:
        return None
    return _text(value, field, where, numbers=True)


def build_record(
    row: Mapping[str, Any],
    kind: Kind,
    columns: Mapping[str, str],
    where: Where,
    default_id: str,
    policy: ImagePolicy,
) -> Record:
    """Validate one row and build the record of `kind`; `columns` maps record field → row key."""

    def get(field: str, required: bool = True) -> Any:
        key = columns.get(field, field)
        value = row.get(key, _MISSING)
        if required and (value is _MISSING or value is None):
            via = f" (column {key!r})" if key != field else ""
            raise where.error(f"field {field!r}{via} is missing")
        return value

    rid = _optional_id(get("id", False), "id", where) or default_id
    meta = _meta(get("meta", False), where)
    if kind == "vqa":
        question = _text(get("question"), "question", where)
        answer = _text(get("answer"), "answer", where, numbers=True)
        choices = _json_value(get("choices", False), "choices", where)
        if choices is _MISSING or choices is None:
            choices = None
        elif isinstance(choices, list | tuple):
            choices = [_text(c, "choices", where, numbers=True) for c in choices]
        else:
            raise where.error(f"field 'choices' must be a list, got {type(choices).__name__}")
        images = load_images(get("images", False), policy, where)
        return VQARecord(rid, images, question, answer, choices, meta)
    if kind == "pair":
        prompt = _text(get("prompt"), "prompt", where)
        chosen = _text(get("chosen"), "chosen", where)
        rejected = _text(get("rejected"), "rejected", where)
        category = get("category", False)
        category = "" if category is _MISSING or category is None else category
        if not isinstance(category, str):
            raise where.error(f"field 'category' must be a string, got {type(category).__name__}")
        group_id = _optional_id(get("group_id", False), "group_id", where)
        images = load_images(get("images", False), policy, where)
        return PairRecord(rid, images, prompt, chosen, rejected, category, group_id, meta)
    question = _text(get("question"), "question", where)
    options = _options(get("options"), where)
    answer = _mcq_answer(get("answer"), options, where)
    images = load_images(get("images", False), policy, where)
    return MCQRecord(rid, images, question, options, answer, meta)
