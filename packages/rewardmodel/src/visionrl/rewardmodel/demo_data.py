"""The demo's preference pairs: `shapes` image pairs plus procedural text-only pairs (basereward.md §4.1).

Image pairs come from the demo model's shapes world (84×84 px, the colour-at-place questions the demo backbone
was trained to see): the chosen answer names the colour of the shape at a place, the rejected one another of the
four colours, drawn uniformly (it may be the colour of another shape in the scene, so the place matters, or
absent from the image); a quarter are description pairs, the scene's colour-by-place description against the
same description with one colour changed (hallucination pairs). Text pairs stand in for BaseReward's text-only
data: copying, letter-case and even/odd instructions and colour facts, each with one right and one wrong
answer (single-digit sums were tried too and stayed at chance for the demo backbone). Worlds are separate per use: training (`TRAIN_WORLD`), the held-out
set the demo reports (`HELDOUT_WORLD`) and the ensemble validation set (`VALIDATION_WORLD`).
"""

from __future__ import annotations

import random
from dataclasses import replace

from visionrl.core.data.records import PairRecord

TRAIN_WORLD, HELDOUT_WORLD, VALIDATION_WORLD = 11, 12, 13
"""Seeds of the shapes worlds (the demo backbone's own SFT and held-out worlds are 1 and 2)."""
DESCRIPTION_QUESTION = "Describe the colours of the shapes from left to right."
WORDS = ("apple", "river", "circle", "stone", "garden", "window", "rocket", "pencil", "yellow", "planet",
         "candle", "forest", "bridge", "silver", "orange", "castle")


def image_pairs(n: int, world_seed: int, description_fraction: float = 0.25) -> list[PairRecord]:
    """`n` shapes pairs: colour-at-place answers and (a `description_fraction` of them) descriptions."""
    from visionrl.core.data.shapes_scene import COLORS, Scene, render
    from visionrl.core.demo_teacher import demo_world, describe

    out = []
    for i, q in enumerate(demo_world(world_seed).vqa(n)):
        rng = random.Random(f"rm-pair:{world_seed}:{i}")
        if rng.random() >= description_fraction:
            wrong = rng.choice([c for c in COLORS if c != q.answer])
            out.append(PairRecord(f"shapes-{world_seed}-{i}", q.images, q.question, q.answer, wrong,
                                  "shapes/color_at", meta=q.meta))
            continue
        scene = Scene.from_dict(q.meta["scene"])
        shapes = sorted(scene.shapes, key=lambda s: s.x)
        k = rng.randrange(len(shapes))
        wrong = rng.choice([c for c in COLORS if c != shapes[k].color])
        edited = replace(scene, shapes=tuple(replace(s, color=wrong) if j == k else s for j, s in enumerate(shapes)))
        out.append(PairRecord(f"shapes-{world_seed}-{i}", [render(scene)], DESCRIPTION_QUESTION, describe(scene),
                              describe(edited), "shapes/description", meta={"scene": scene.to_dict(), "edit": k}))
    return out


FACTS = {"a banana": "yellow", "the sky": "blue", "grass": "green", "a tomato": "red", "a lemon": "yellow",
         "the sea": "blue", "a leaf": "green", "a strawberry": "red"}


def _parity(rng: random.Random) -> tuple[str, str, str]:
    n = rng.randint(0, 99)
    right, wrong = ("even", "odd") if n % 2 == 0 else ("odd", "even")
    return f"Is {n} even or odd?", right, wrong


def _fact(rng: random.Random) -> tuple[str, str, str]:
    thing = rng.choice(sorted(FACTS))
    wrong = rng.choice([c for c in ("red", "green", "blue", "yellow") if c != FACTS[thing]])
    return f"What color is {thing}?", FACTS[thing], wrong


def _copy(rng: random.Random) -> tuple[str, str, str]:
    word, other = rng.sample(WORDS, 2)
    return f"Repeat the word {word}.", word, other


def _case(rng: random.Random) -> tuple[str, str, str]:
    word = rng.choice(WORDS)
    if rng.random() < 0.5:
        return f"Write the word {word} in capital letters.", word.upper(), word
    return f"Write the word {word} in small letters.", word, word.upper()


TEXT_TASKS = {"copy": _copy, "case": _case, "parity": _parity, "fact": _fact}


def text_pairs(n: int, seed: int) -> list[PairRecord]:
    """`n` text-only pairs, the tasks in turn (deterministic per seed).

    >>> [(p.prompt, p.chosen, p.rejected) for p in text_pairs(4, 0)][1:3]
    [('Write the word bridge in small letters.', 'bridge', 'BRIDGE'), ('Is 97 even or odd?', 'odd', 'even')]
    """
    names = list(TEXT_TASKS)
    out = []
    for i in range(n):
        rng = random.Random(f"rm-text:{seed}:{i}")
        name = names[i % len(names)]
        prompt, chosen, rejected = TEXT_TASKS[name](rng)
        out.append(PairRecord(f"text-{seed}-{i}", [], prompt, chosen, rejected, f"text/{name}"))
    return out


def demo_pairs(n_image: int, text_fraction: float, world_seed: int) -> list[PairRecord]:
    """Image pairs and text pairs so that text pairs are `text_fraction` of all, interleaved."""
    n_text = round(n_image * text_fraction / (1 - text_fraction)) if text_fraction < 1 else n_image
    images, texts = image_pairs(n_image, world_seed), text_pairs(n_text, world_seed)
    rows = images + texts
    random.Random(f"rm-mix:{world_seed}").shuffle(rows)
    return rows
