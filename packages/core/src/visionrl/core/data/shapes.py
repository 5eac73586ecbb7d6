"""`shapes`: a seeded procedural visual world with exact ground truth.

A scene holds 2–3 flat shapes (square, circle, triangle; each kind at most once) in distinct
left-to-right thirds of a small image, coloured red/green/blue/yellow on the CLIP mean pixel.
Question templates compute their answers from the scene, so every record is verifiable:

    color    "What color is the circle?"             -> "red"
    color_at "What color is the shape on the left?"  -> "red"
    shape    "What shape is the red one?"            -> "circle"
    count    "How many red shapes are there?"        -> "0" .. "3"
    left_of  "Is the circle left of the square?"     -> "yes" / "no"
    above    "Is the circle above the square?"       -> "yes" / "no"
    exists   "Is there a red circle?"                -> "yes" / "no"

Defaults follow what a from-scratch tiny vision tower can learn (56×56 pixels, radius 0.12 of
the image, dark-ish background: on a light background such a tower collapses to a constant).
`shade` > 0 darkens the background of the left third and lightens the right one by that many levels,
so each third of the image carries its own mark (see `Scene.shade`). Scenes, rendering and captions are in
`shapes_scene.py`; the question templates and the record generator `ShapesWorld` here.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from visionrl.core.data.records import MCQRecord, PairRecord, VQARecord
from visionrl.core.data.shapes_scene import (
    CAPTION_QUESTION,
    COLORS,
    COLUMNS,
    COUNTS,
    KINDS,
    YES_NO,
    Scene,
    caption,
    column,
    render,
    sample_scene,
)

# ---------------------------------------------------------------- question templates


@dataclass(frozen=True)
class Question:
    """A question about `scene` (a template may edit the sampled scene to balance its answers).

    `space` lists every valid answer of the template; `hard` lists wrong answers the scene makes
    plausible (e.g. colours of the other shapes), preferred as distractors.
    """

    template: str
    scene: Scene
    question: str
    answer: str
    space: tuple[str, ...]
    hard: tuple[str, ...] = ()


def _color(rng: random.Random, scene: Scene) -> Question:
    s = rng.choice(scene.shapes)
    hard = tuple(dict.fromkeys(t.color for t in scene.shapes if t.color != s.color))
    return Question("color", scene, f"What color is the {s.kind}?", s.color, tuple(COLORS), hard)


def _color_at(rng: random.Random, scene: Scene) -> Question:
    # Colour by position: needs colour and place, not shape recognition (the easiest visual question).
    s = rng.choice(scene.shapes)
    hard = tuple(dict.fromkeys(t.color for t in scene.shapes if t.color != s.color))
    return Question("color_at", scene, f"What color is the shape {COLUMNS[column(s)]}?", s.color, tuple(COLORS), hard)


def _shape(rng: random.Random, scene: Scene) -> Question:
    s = rng.choice(scene.shapes)
    # The colour must name one shape: recolour the others that share it.
    others = [c for c in COLORS if c != s.color]
    shapes = tuple(
        t if t is s or t.color != s.color else replace(t, color=rng.choice(others)) for t in scene.shapes
    )
    hard = tuple(t.kind for t in shapes if t.kind != s.kind)
    return Question(
        "shape", replace(scene, shapes=shapes), f"What shape is the {s.color} one?", s.kind, KINDS, hard
    )


def _count(rng: random.Random, scene: Scene) -> Question:
    # Choose the answer first, then recolour: independent colours would make "0" the majority.
    color = rng.choice(list(COLORS))
    n = len(scene.shapes)
    k = rng.randint(0, n)
    hit = set(rng.sample(range(n), k))
    others = [c for c in COLORS if c != color]
    shapes = tuple(
        replace(s, color=color)
        if i in hit
        else (s if s.color != color else replace(s, color=rng.choice(others)))
        for i, s in enumerate(scene.shapes)
    )
    hard = tuple(str(v) for v in (k - 1, k + 1) if 0 <= v <= n)
    return Question(
        "count", replace(scene, shapes=shapes), f"How many {color} shapes are there?", str(k), COUNTS, hard
    )


def _left_of(rng: random.Random, scene: Scene) -> Question:
    a, b = rng.sample(scene.shapes, 2)
    answer = "yes" if a.x < b.x else "no"
    return Question("left_of", scene, f"Is the {a.kind} left of the {b.kind}?", answer, YES_NO)


def _above(rng: random.Random, scene: Scene) -> Question:
    a, b = rng.sample(scene.shapes, 2)
    # Move the pair into separate vertical bands so "above" is never ambiguous (y grows downwards).
    top, bottom = round(rng.uniform(0.25, 0.42), 4), round(rng.uniform(0.58, 0.75), 4)
    ya, yb = (top, bottom) if rng.random() < 0.5 else (bottom, top)
    new = {a.kind: replace(a, y=ya), b.kind: replace(b, y=yb)}
    shapes = tuple(new.get(s.kind, s) for s in scene.shapes)
    answer = "yes" if ya < yb else "no"
    return Question(
        "above", replace(scene, shapes=shapes), f"Is the {a.kind} above the {b.kind}?", answer, YES_NO
    )


def _exists(rng: random.Random, scene: Scene) -> Question:
    present = {(s.color, s.kind) for s in scene.shapes}
    if rng.random() < 0.5:
        s = rng.choice(scene.shapes)
        color, kind, answer = s.color, s.kind, "yes"
    else:
        kinds_here = {s.kind for s in scene.shapes}
        absent = [(c, k) for c in COLORS for k in KINDS if (c, k) not in present]
        # Half the negatives name a kind that is in the image with the wrong colour: the model
        # must bind colour to shape rather than detect either alone.
        hard = [(c, k) for c, k in absent if k in kinds_here]
        color, kind = rng.choice(hard if hard and rng.random() < 0.5 else absent)
        answer = "no"
    return Question("exists", scene, f"Is there a {color} {kind}?", answer, YES_NO)


TemplateFn = Callable[[random.Random, Scene], Question]
TEMPLATES: dict[str, TemplateFn] = {
    "color": _color,
    "color_at": _color_at,
    "shape": _shape,
    "count": _count,
    "left_of": _left_of,
    "above": _above,
    "exists": _exists,
}


def _wrong(rng: random.Random, q: Question, k: int) -> list[str]:
    """Up to `k` distinct wrong answers: the scene's plausible ones first, then the rest of the space."""
    hard = [a for a in q.hard if a != q.answer]
    rest = [a for a in q.space if a != q.answer and a not in hard]
    rng.shuffle(hard)
    rng.shuffle(rest)
    return (hard + rest)[:k]


def _edit_caption(rng: random.Random, scene: Scene) -> tuple[Scene, str]:
    """The scene with exactly one attribute of one shape changed (colour, kind or position)."""
    s = rng.choice(scene.shapes)
    free_kinds = [k for k in KINDS if k not in {t.kind for t in scene.shapes}]
    free_cols = [c for c in range(3) if c not in {column(t) for t in scene.shapes}]
    edits = ["color"] + (["kind"] if free_kinds else []) + (["position"] if free_cols else [])
    edit = rng.choice(edits)
    if edit == "color":
        new = replace(s, color=rng.choice([c for c in COLORS if c != s.color]))
    elif edit == "kind":
        new = replace(s, kind=rng.choice(free_kinds))
    else:
        new = replace(s, x=round((rng.choice(free_cols) + 0.5) / 3, 4))
    shapes = tuple(sorted((new if t is s else t for t in scene.shapes), key=lambda t: t.x))
    return replace(scene, shapes=shapes), edit


class ShapesWorld:
    """Deterministic generator of VQA, MCQ, caption and preference records over `shapes` scenes.

    Args:
        seed: same seed → identical records and pixels; different seeds → different data.
        image_size: image side in pixels.
        templates: question templates to draw from (keys of `TEMPLATES`).
        template_weights: relative sampling weight per template (missing templates weigh 1).
        num_shapes: (min, max) shapes per scene, within 1..3.
        size: shape radius as a fraction of the image side, at most 1/6.
        jitter: vertical jitter of shape centres around the middle row, as a fraction of the side.
        shade: background levels marking the thirds (left darker, right lighter; 0 = plain).
    """

    def __init__(
        self,
        seed: int,
        image_size: int = 56,
        templates: Sequence[str] = tuple(TEMPLATES),
        template_weights: Mapping[str, float] | None = None,
        num_shapes: tuple[int, int] = (2, 3),
        size: float = 0.12,
        jitter: float = 0.25,
        shade: int = 0,
    ) -> None:
        unknown = [t for t in templates if t not in TEMPLATES]
        if unknown or not templates:
            raise ValueError(f"unknown or no templates {unknown}; choose from {sorted(TEMPLATES)}")
        weights = dict(template_weights or {})
        if any(t not in templates for t in weights) or any(w < 0 for w in weights.values()):
            raise ValueError(f"template_weights must map chosen templates to weights >= 0, got {weights}")
        if min(num_shapes) < 2 and {"left_of", "above"} & set(templates):
            raise ValueError(f"left_of/above need at least two shapes per scene, got num_shapes={num_shapes}")
        self.seed = seed
        self.image_size = image_size
        self.templates = tuple(templates)
        self.weights = tuple(float(weights.get(t, 1.0)) for t in self.templates)
        if sum(self.weights) <= 0:
            raise ValueError("template_weights sum to zero")
        if not 0 <= shade <= 64:
            raise ValueError(f"shade must be in [0, 64] so the thirds stay background, got {shade}")
        self.scene_kwargs = dict(image_size=image_size, num_shapes=num_shapes, size=size, jitter=jitter, shade=shade)
        sample_scene(random.Random(0), **self.scene_kwargs)  # validate the scene parameters now

    def _rng(self, split: str, i: int) -> random.Random:
        # One generator per record, so record i does not depend on how many were asked for; a
        # string seed is hashed with SHA-512 by `random`, so it is stable across processes.
        return random.Random(f"shapes:{self.seed}:{split}:{i}")

    def question(self, rng: random.Random, template: str | None = None) -> Question:
        """Sample a scene and ask one question about it (template drawn by weight unless given)."""
        template = template or rng.choices(self.templates, weights=self.weights)[0]
        return TEMPLATES[template](rng, sample_scene(rng, **self.scene_kwargs))

    @staticmethod
    def _meta(q: Question) -> dict[str, Any]:
        return {"template": q.template, "scene": q.scene.to_dict()}

    def vqa(self, n: int) -> list[VQARecord]:
        """`n` open-ended questions with exact answers."""
        qs = [self.question(self._rng("vqa", i)) for i in range(n)]
        return [
            VQARecord(f"shapes-vqa-{i}", [render(q.scene)], q.question, q.answer, meta=self._meta(q))
            for i, q in enumerate(qs)
        ]

    def mcq(self, n: int) -> list[MCQRecord]:
        """`n` multiple-choice questions with options A–D (A–C for shape, A–B for yes/no templates)."""
        return [self._mcq(i) for i in range(n)]

    def _mcq(self, i: int) -> MCQRecord:
        rng = self._rng("mcq", i)
        q = self.question(rng)
        opts = [q.answer] + _wrong(rng, q, min(4, len(q.space)) - 1)
        rng.shuffle(opts)
        options = dict(zip("ABCD", opts, strict=False))
        answer = "ABCD"[opts.index(q.answer)]
        return MCQRecord(f"shapes-mcq-{i}", [render(q.scene)], q.question, options, answer, self._meta(q))

    def captions(self, n: int) -> list[VQARecord]:
        """`n` "Describe the image." records whose answer is the canonical caption."""
        scenes = [sample_scene(self._rng("caption", i), **self.scene_kwargs) for i in range(n)]
        return [
            VQARecord(
                f"shapes-caption-{i}",
                [render(scene)],
                CAPTION_QUESTION,
                caption(scene),
                meta={"template": "caption", "scene": scene.to_dict()},
            )
            for i, scene in enumerate(scenes)
        ]

    def pairs(self, n: int, caption_fraction: float = 0.25) -> list[PairRecord]:
        """`n` preference pairs: the right answer (or caption) over a minimally wrong one.

        A question pair rejects a wrong answer the scene makes plausible; a caption pair rejects the
        caption of the scene with one attribute of one shape changed (recorded as `meta["edit"]`).
        """
        return [self._pair(i, caption_fraction) for i in range(n)]

    def _pair(self, i: int, caption_fraction: float) -> PairRecord:
        rng = self._rng("pair", i)
        if rng.random() < caption_fraction:
            scene = sample_scene(rng, **self.scene_kwargs)
            edited, edit = _edit_caption(rng, scene)
            prompt, chosen, rejected = CAPTION_QUESTION, caption(scene), caption(edited)
            meta = {"template": "caption", "scene": scene.to_dict(), "edit": edit}
        else:
            q = self.question(rng)
            scene, prompt, chosen, rejected = q.scene, q.question, q.answer, _wrong(rng, q, 1)[0]
            meta = self._meta(q)
        return PairRecord(
            f"shapes-pair-{i}", [render(scene)], prompt, chosen, rejected, meta["template"], meta=meta
        )


def blind_baseline(records: Sequence[VQARecord | MCQRecord]) -> float:
    """Accuracy of the best constant answer per template: what a model ignoring the image reaches."""
    if not records:
        raise ValueError("blind_baseline needs at least one record")
    by_template: dict[str, Counter[str]] = {}
    for r in records:
        by_template.setdefault(r.meta.get("template", ""), Counter())[r.answer] += 1
    best = sum(c.most_common(1)[0][1] for c in by_template.values())
    return best / len(records)
