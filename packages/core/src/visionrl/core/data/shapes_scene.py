"""The scenes of the `shapes` world (`visionrl.core.data.shapes`): shapes, colours and places, scene sampling,
rendering (with the optional shaded thirds) and the canonical caption."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, ImageDraw

KINDS: tuple[str, ...] = ("square", "circle", "triangle")
# Saturated primaries far apart in RGB and from the background, so colour is easy to see.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 60, 230),
    "yellow": (240, 220, 30),
}
BACKGROUND: tuple[int, int, int] = (123, 117, 104)  # CLIP mean pixel
COLUMNS: tuple[str, ...] = ("on the left", "in the middle", "on the right")
COUNTS: tuple[str, ...] = ("0", "1", "2", "3")
YES_NO: tuple[str, ...] = ("yes", "no")
CAPTION_QUESTION = "Describe the image."
_X_JITTER = 0.03  # horizontal jitter around a third's centre (fraction of the width)


@dataclass(frozen=True)
class Shape:
    """One shape; `x`, `y` are its centre and `size` its radius, as fractions of the image side."""

    kind: str
    color: str
    x: float
    y: float
    size: float


@dataclass(frozen=True)
class Scene:
    """A list of shapes (sorted left to right) on a square image of `image_size` pixels."""

    shapes: tuple[Shape, ...]
    image_size: int = 56
    background: tuple[int, int, int] = BACKGROUND
    shade: int = 0
    """Background levels subtracted in the left third and added in the right third (0 = plain): the place
    written into the pixels, for models whose image tokens carry only relative (rotary) positions."""

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict (lists, not tuples, so it survives a JSON round trip unchanged)."""
        out = {
            "image_size": self.image_size,
            "background": list(self.background),
            "shapes": [asdict(s) for s in self.shapes],
        }
        return out | ({"shade": self.shade} if self.shade else {})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Scene:
        return cls(
            shapes=tuple(Shape(**s) for s in d["shapes"]),
            image_size=int(d["image_size"]),
            background=tuple(d["background"]),
            shade=int(d.get("shade", 0)),
        )

    def by_kind(self, kind: str) -> Shape:
        return next(s for s in self.shapes if s.kind == kind)


def sample_scene(
    rng: random.Random,
    image_size: int = 56,
    num_shapes: tuple[int, int] = (2, 3),
    size: float = 0.12,
    jitter: float = 0.25,
    background: tuple[int, int, int] = BACKGROUND,
    shade: int = 0,
) -> Scene:
    """Sample a scene: distinct kinds, one per third, independent colours, vertical jitter ±`jitter`."""
    lo, hi = num_shapes
    if not 1 <= lo <= hi <= len(KINDS):
        raise ValueError(f"num_shapes must satisfy 1 <= min <= max <= {len(KINDS)}, got {num_shapes}")
    if not 0 < size <= 1 / 6:
        raise ValueError(f"size must be in (0, 1/6] so a shape fits its third, got {size}")
    if not 0 <= jitter <= 0.5 - size:
        raise ValueError(f"jitter must be in [0, 0.5 - size] to keep shapes inside the image, got {jitter}")
    n = rng.randint(lo, hi)
    kinds = rng.sample(KINDS, n)
    columns = sorted(rng.sample(range(3), n))
    x_jitter = min(_X_JITTER, 1 / 6 - size)  # never let a shape leave its third
    shapes = tuple(
        Shape(
            kind=kind,
            color=rng.choice(list(COLORS)),
            x=round((col + 0.5) / 3 + rng.uniform(-x_jitter, x_jitter), 4),
            y=round(0.5 + rng.uniform(-jitter, jitter), 4),
            size=size,
        )
        for kind, col in zip(kinds, columns, strict=True)
    )
    return Scene(shapes=shapes, image_size=image_size, background=background, shade=shade)


def render(scene: Scene) -> Image.Image:
    """Draw the scene as an RGB image (no anti-aliasing, so pixels are exact palette colours)."""
    s = scene.image_size
    img = Image.new("RGB", (s, s), tuple(scene.background))
    draw = ImageDraw.Draw(img)
    if scene.shade:  # left third darker, right third lighter, the middle one plain
        for col, sign in ((0, -1), (2, 1)):
            box = (col * s // 3, 0, (col + 1) * s // 3 - 1, s - 1)
            draw.rectangle(box, fill=shaded(scene.background, sign * scene.shade))
    for sh in scene.shapes:
        cx, cy, r = sh.x * s, sh.y * s, sh.size * s
        fill = COLORS[sh.color]
        if sh.kind == "square":
            draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif sh.kind == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        elif sh.kind == "triangle":
            draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=fill)
        else:
            raise ValueError(f"unknown shape kind {sh.kind!r}")
    return img


def shaded(rgb: Sequence[int], delta: int) -> tuple[int, int, int]:
    """`rgb` with `delta` added to each channel, clipped to 0..255."""
    return tuple(min(255, max(0, c + delta)) for c in rgb)  # type: ignore[return-value]


def column(shape: Shape) -> int:
    """Which third (0 left, 1 middle, 2 right) the shape's centre lies in."""
    return min(int(shape.x * 3), 2)


def caption(scene: Scene) -> str:
    """Canonical caption, left to right: 'a red circle on the left, a blue square in the middle'."""
    parts = [f"a {s.color} {s.kind} {COLUMNS[column(s)]}" for s in sorted(scene.shapes, key=lambda s: s.x)]
    return ", ".join(parts)
