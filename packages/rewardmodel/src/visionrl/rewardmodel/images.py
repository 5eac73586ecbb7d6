"""Images that load when a pair is used, not when it is read: a 2.8M-pair mix cannot hold decoded images.

A training pair's `images` may hold PIL images (the shapes demo), or references that `load()` one: a file,
compressed bytes, a row of a memory-mapped `datasets` table, or a member of a zip archive split into parts
(MMPR ships `images.zip_aa`, `_ab`, ... : parts of one zip, read here without joining or extracting them).
`pair_prompt` turns a pair into the chat prompt (user: images then question; the response is the assistant
turn), loading its references.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image
from visionrl.core.chat import Prompt
from visionrl.core.data.records import PairRecord


@dataclass(frozen=True)
class FileImage:
    path: Path

    def load(self) -> Image.Image:
        with Image.open(self.path) as im:
            return im.convert("RGB")


@dataclass(frozen=True)
class BytesImage:
    data: bytes

    def load(self) -> Image.Image:
        with Image.open(io.BytesIO(self.data)) as im:
            return im.convert("RGB")


@dataclass(frozen=True)
class TableImage:
    """Row `row` of column `column` of a `datasets` table whose Image feature does not decode (bytes stay in
    the memory-mapped Arrow file until used)."""

    table: Any
    row: int
    column: str

    def load(self) -> Image.Image:
        value = self.table[self.row][self.column]
        value = value[0] if isinstance(value, list) else value
        return BytesImage(value["bytes"]).load() if value.get("bytes") else FileImage(Path(value["path"])).load()


class PartsReader(io.RawIOBase):
    """A read-only, seekable view of files concatenated in order (the parts of a split archive)."""

    def __init__(self, parts: tuple[Path, ...]):
        self.parts = parts
        self.sizes = [p.stat().st_size for p in parts]
        self.starts = [sum(self.sizes[:i]) for i in range(len(parts))]
        self.size, self.pos = sum(self.sizes), 0
        self.handles = [open(p, "rb") for p in parts]  # noqa: SIM115 (closed in close())

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer: Any) -> int:
        view, done = memoryview(buffer).cast("B"), 0
        while done < len(view) and self.pos < self.size:
            k = max(i for i, s in enumerate(self.starts) if s <= self.pos)
            handle = self.handles[k]
            handle.seek(self.pos - self.starts[k])
            got = handle.readinto(view[done:done + min(len(view) - done, self.starts[k] + self.sizes[k] - self.pos)])
            if not got:
                break
            done, self.pos = done + got, self.pos + got
        return done

    def close(self) -> None:
        for h in self.handles:
            h.close()
        super().close()


@lru_cache(maxsize=8)
def open_archive(parts: tuple[Path, ...]) -> zipfile.ZipFile:
    """The zip archive made of `parts` (one file, or the parts of a split one), opened once per process."""
    source = parts[0] if len(parts) == 1 else PartsReader(parts)
    return zipfile.ZipFile(source)


def find_member(archive: zipfile.ZipFile, path: str) -> str | None:
    """The archive member for `path`, also when the archive's top folders differ from the path's
    (`MMPR-v1.2/images/x.png` may be stored as `images/x.png` or the other way round)."""
    names = archive.NameToInfo
    tops = _top_folders(archive)
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    for i in range(len(parts)):
        candidate = "/".join(parts[i:])
        for name in (candidate, *(f"{top}/{candidate}" for top in tops)):
            if name in names:
                return name
    return None


@lru_cache(maxsize=8)
def _top_folders(archive: zipfile.ZipFile) -> tuple[str, ...]:
    return tuple(sorted({n.split("/", 1)[0] for n in archive.NameToInfo if "/" in n}))


@dataclass(frozen=True)
class ZipImage:
    parts: tuple[Path, ...]
    member: str

    def load(self) -> Image.Image:
        with open_archive(self.parts).open(self.member) as f:
            return BytesImage(f.read()).load()


def load_image(image: Any) -> Image.Image:
    """A PIL image from a PIL image, a path or a reference with `load()`."""
    if isinstance(image, Image.Image):
        return image
    if hasattr(image, "load"):
        return image.load()
    return FileImage(Path(image)).load()


def pair_prompt(record: PairRecord) -> Prompt:
    """The reward model's prompt of a pair: a plain chat, user = images then question (basereward.md §1.10)."""
    return Prompt.simple(record.prompt, [load_image(im) for im in record.images])
