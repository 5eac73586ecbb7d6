"""Record types every loader maps into (one schema each).

Images are PIL images or paths (relative paths resolve against the dataset root at load time);
a record may have none: text-only pairs are first-class for reward models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

ImageLike = Image.Image | str | Path


@dataclass
class VQARecord:
    """An RL prompt with a verifiable answer."""

    id: str
    images: list[ImageLike]
    question: str
    answer: str
    choices: list[str] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class PairRecord:
    """A preference pair (also used for reward/judge benchmarks)."""

    id: str
    images: list[ImageLike]
    prompt: str
    chosen: str
    rejected: str
    category: str = ""
    group_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class MCQRecord:
    """A multiple-choice question; `answer` is the correct option letter."""

    id: str
    images: list[ImageLike]
    question: str
    options: dict[str, str]
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)


Record = VQARecord | PairRecord | MCQRecord
