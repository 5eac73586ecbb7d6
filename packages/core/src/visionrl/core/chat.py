"""Chat prompts as data: ordered text and image slots, images, system prompt, assistant prefill.
Torch-free, so prompt builders import fast."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

IMAGE = object()  # placeholder marking where an image goes in `Prompt.content`


@dataclass
class Prompt:
    """One chat prompt: ordered user content (text and image slots), its images, an optional
    system prompt and an optional assistant prefill (forced prefix the completion continues)."""

    content: list[Any]  # str or IMAGE
    images: list[Image.Image] = field(default_factory=list)
    system: str | None = None
    prefill: str = ""

    @classmethod
    def simple(cls, question: str, images: Sequence[Image.Image] = (), *, system: str | None = None,
               prefill: str = "", image_first: bool = True) -> Prompt:
        """Images then question (or question then images)."""
        imgs = [IMAGE] * len(images)
        content = [*imgs, question] if image_first else [question, *imgs]
        return cls(content=content, images=list(images), system=system, prefill=prefill)

    def messages(self) -> list[dict[str, Any]]:
        parts = [{"type": "image"} if c is IMAGE else {"type": "text", "text": c} for c in self.content]
        msgs = [{"role": "system", "content": [{"type": "text", "text": self.system}]}] if self.system else []
        return msgs + [{"role": "user", "content": parts}]
