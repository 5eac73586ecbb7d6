"""Open-ended pairs by error injection (arXiv 2512.05145, Fig. 1: "we generate an original response and
deliberately inject meaningful errors to create a less preferred version").

Two injectors behind one signature `(text, rng) -> Injection`:

- `model`: the generator rewrites the response with `prompts.ERROR_INJECTION_PROMPT` (k = 1–3 errors of randomly
  chosen types: attribute, count, spatial, object); `pairs.py` runs the generation.
- `program`: edits the text itself, k = 1–3 edits at distinct places: swap a colour (attribute), ±1 a number
  (count), move a position phrase to one the text does not use yet, or swap left/right, above/below
  (spatial), swap a shape or common object noun (object). On the demo model's descriptions ("red on the left,
  blue in the middle") this swaps a colour or moves a shape.

Every rewrite is validated (`validate_rewrite`): it must change at least one content word and keep the length
(in words) within `[min_ratio, max_ratio]` of the original (reference: 0.8–1.25); failures are dropped and
counted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

COLORS = ("red", "green", "blue", "yellow", "white", "black", "orange", "purple", "pink", "brown", "gray")
OBJECTS = ("circle", "square", "triangle", "dog", "cat", "car", "bus", "man", "woman", "boy", "girl", "table",
           "chair", "cup", "bottle", "horse", "bird", "tree")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
PLACES = ("on the left", "in the middle", "on the right")
OPPOSITES = {"left": "right", "right": "left", "above": "below", "below": "above", "top": "bottom",
             "bottom": "top", "front": "behind", "behind": "front"}
ERROR_TYPES = ("attribute", "count", "spatial", "object")
STOPWORDS = frozenset("a an the of on in at to and or is are was were it its this that with for by as be".split())


def _words(options: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(map(re.escape, options)) + r")\b", re.IGNORECASE)


_COLOR_RE, _OBJECT_RE = _words(COLORS), _words(OBJECTS)
_NUMBER_RE = re.compile(r"\b(\d+|" + "|".join(NUMBERS) + r")\b", re.IGNORECASE)
_PLACE_RE, _OPPOSITE_RE = _words(PLACES), _words(tuple(OPPOSITES))


@dataclass(frozen=True)
class Injection:
    """A rewrite and the error types applied (empty: the text offered no place for an error)."""

    text: str
    errors: tuple[str, ...]


def _same_case(word: str, like: str) -> str:
    return word.capitalize() if like[:1].isupper() else word


def _edit(text: str, kind: str, rng: random.Random, taken: list[tuple[int, int]]) -> tuple[str, int, int, int] | None:
    """One error of `kind` at a place not yet edited: (new text, start, old length, new length) or None."""
    pattern = {"attribute": _COLOR_RE, "count": _NUMBER_RE, "object": _OBJECT_RE}.get(kind)
    if kind == "spatial":
        places = [m for m in _PLACE_RE.finditer(text)]
        matches = places or list(_OPPOSITE_RE.finditer(text))
    else:
        assert pattern is not None, f"unknown error type {kind!r}"
        matches = list(pattern.finditer(text))
    matches = [m for m in matches if all(m.end() <= a or m.start() >= b for a, b in taken)]
    if not matches:
        return None
    m = rng.choice(matches)
    old = m.group(0)
    low = old.lower()
    if kind == "attribute":
        new = rng.choice([c for c in COLORS[:4] if c != low] if low in COLORS[:4] else [c for c in COLORS if c != low])
    elif kind == "object":
        pool = OBJECTS[:3] if low in OBJECTS[:3] else OBJECTS[3:]
        new = rng.choice([o for o in pool if o != low])
    elif kind == "count":
        value = int(low) if low.isdigit() else NUMBERS.index(low)
        value = value + 1 if value == 0 or rng.random() < 0.5 else value - 1
        new = str(value) if low.isdigit() else NUMBERS[min(value, len(NUMBERS) - 1)]
    elif low in PLACES:
        used = {p.lower() for p in _PLACE_RE.findall(text)}
        free = [p for p in PLACES if p not in used] or [p for p in PLACES if p != low]
        new = rng.choice(free)
    else:
        new = OPPOSITES[low]
    new = _same_case(new, old)
    return text[:m.start()] + new + text[m.end():], m.start(), len(old), len(new)


def program_inject(text: str, rng: random.Random, max_errors: int = 3,
                   types: Sequence[str] = ERROR_TYPES) -> Injection:
    """Inject k ~ U{1..max_errors} errors of the given types, each at a distinct place (fewer if the text offers
    fewer places).

    >>> program_inject("red on the left, blue in the middle", random.Random(1), max_errors=1).text
    'red on the left, blue on the right'
    """
    k = rng.randint(1, max_errors)
    errors: list[str] = []
    taken: list[tuple[int, int]] = []
    for _ in range(k):
        kinds = list(types)
        rng.shuffle(kinds)
        for kind in kinds:
            done = _edit(text, kind, rng, taken)
            if done is not None:
                text, start, old_len, new_len = done
                # Edited spans to the right of this edit move by its change in length.
                shift = new_len - old_len
                taken = [(a, b) if b <= start else (a + shift, b + shift) for a, b in taken]
                taken.append((start, start + new_len))
                errors.append(kind)
                break
    return Injection(text, tuple(errors))


def content_words(text: str) -> list[str]:
    """Lower-case words that are not stop words (what an injected error must change)."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS]


def validate_rewrite(original: str, rewrite: str, min_ratio: float = 0.8, max_ratio: float = 1.25) -> str | None:
    """Why a rewrite is no usable rejected answer, or None when it is.

    >>> validate_rewrite("red on the left", "Red on the left."), validate_rewrite("red on the left", "blue on the left")
    ('no_content_change', None)
    >>> validate_rewrite("a red circle on the left", "blue")
    'length_ratio'
    """
    if not rewrite.strip():
        return "empty"
    if content_words(rewrite) == content_words(original):
        return "no_content_change"
    n_old, n_new = len(original.split()), len(rewrite.split())
    if n_old and not min_ratio <= n_new / n_old <= max_ratio:
        return "length_ratio"
    return None


def pick_error_types(rng: random.Random, max_errors: int) -> tuple[int, tuple[str, ...]]:
    """k ~ U{1..max_errors} and the error types the model rewrite is asked for (1 to k distinct types)."""
    k = rng.randint(1, max_errors)
    return k, tuple(sorted(rng.sample(ERROR_TYPES, rng.randint(1, min(k, len(ERROR_TYPES))))))
