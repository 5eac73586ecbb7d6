"""Pairwise critic data → verifiable GRPO rows ("which answer is better? think, then box 1 or 2").

Sources of `critic-train --data`:

- `shapes` (default): preference pairs of the procedural world (`ShapesWorld.pairs`: a right colour or
  caption over a minimally wrong one), reorganized here;
- a folder or hub id of preference pairs (`prompt`, `chosen`, `rejected`, `images`; columns mappable),
  reorganized here (`reorganize_pairwise`);
- rows already in the critic task, `question` (the critic prompt, `<image>` where the image goes), `answer`
  and `image`: `lmms-lab/LLaVA-Critic-GRPO-dataset`, `russwang/LLaVA-Critic-GRPO-shortprompt` (40.2K rows,
  the pairwise subset of llava-critic-113k), or a local folder in that layout. As in EasyR1, whose default
  `format_prompt` is `math_format.jinja`, the question becomes `{{ content | trim }} <reasoning suffix>`
  (unless it already holds the suffix).

A row is a `VQARecord` whose question holds `<image>` markers (EasyR1's layout: the text is split on them and
an image sits at each split) and whose answer is the canonical choice (`1`/`2`, or `Answer 1`/`Answer 2`
with `gt_form="phrase"`); `meta["flip"]` records that the better answer is shown second.

Departures, numbered:

1. The exact content of the hub rows is unverified (reference §1.2); their ground truth is canonicalised
   (`1`, `Answer 1`, `\\boxed{1}`, any case → the `--gt-form` spelling), and a row whose question has no
   `<image>` gets its image first (EasyR1 would send none).
2. Each pair's answer order is a coin fixed by the seed and the pair's id (the authors' harness draws
   `random.choice([0, 1])` per call), so a pair is shown the same way whatever `--dataset.limit`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from visionrl.core.data.records import PairRecord, VQARecord
from visionrl.core.data.validate import (
    DEFAULT_MAX_PIXELS,
    DataError,
    ImagePolicy,
    Where,
    build_record,
    load_images,
)
from visionrl.core.prompts import COT_INSTRUCTION, render_format_prompt
from visionrl.critic.prompts import IMAGE_TOKEN, critic_text

GtForm = Literal["digit", "phrase"]
CRITIC_ROW_IDS = ("lmms-lab/LLaVA-Critic-GRPO-dataset", "russwang/LLaVA-Critic-GRPO-shortprompt")
"""Hub datasets whose rows are already critic prompts (`question`, `answer`, `image`)."""
_CHOICE = re.compile(r"(?:\\boxed\{)?\s*(?:answer|response)?\s*([12])\s*\}?\.?", re.IGNORECASE)


def choice_answer(position: int, gt_form: GtForm = "digit") -> str:
    """The ground-truth string for the better answer's shown position.

    >>> choice_answer(2), choice_answer(1, "phrase")
    ('2', 'Answer 1')
    """
    assert position in (1, 2), f"a choice is 1 or 2, got {position!r}"
    return str(position) if gt_form == "digit" else f"Answer {position}"


def critic_row(pair: PairRecord, flip: bool, gt_form: GtForm = "digit") -> VQARecord:
    """The pair as one critic row with a fixed order (`flip`: the chosen answer is shown second)."""
    first, second = (pair.rejected, pair.chosen) if flip else (pair.chosen, pair.rejected)
    question = IMAGE_TOKEN * len(pair.images) + critic_text(pair.prompt, first, second)
    meta = {"flip": flip, "pair_id": pair.id, "category": pair.category}
    return VQARecord(f"{pair.id}:{int(flip)}", list(pair.images), question, choice_answer(1 + flip, gt_form),
                     meta=meta)


def reorganize_pairwise(pair: PairRecord, rng: random.Random, *, gt_form: GtForm = "digit") -> VQARecord:
    """A preference pair as a verifiable critic row: the critic prompt (leading space kept) + the reasoning
    suffix, answers in a random order (the flip recorded), the image first, ground truth `1`/`2`.

    Only the question, the two answers and the images are kept: rationales, criteria and any other field
    of the source pair are dropped, so the model must reason on its own.
    """
    return critic_row(pair, rng.random() < 0.5, gt_form)


def pair_coin(seed: int, pair_id: str) -> random.Random:
    """The generator `reorganize_pairwise` draws a pair's order from: fixed by the seed and the pair's id."""
    return random.Random(f"critic:{seed}:{pair_id}")


def reorganize_all(pairs: Sequence[PairRecord], seed: int, gt_form: GtForm = "digit") -> list[VQARecord]:
    return [reorganize_pairwise(p, pair_coin(seed, p.id), gt_form=gt_form) for p in pairs]


# ---- loading -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Columns:
    """Source column of each field (pairs: prompt/chosen/rejected/images; critic rows: question/answer/image)."""

    prompt: str = "prompt"
    chosen: str = "chosen"
    rejected: str = "rejected"
    images: str = "images"
    question: str = "question"
    answer: str = "answer"
    image: str = "image"


def _rows(source: str, split: str) -> Iterator[tuple[Where, dict[str, Any]]]:
    from visionrl.core.data.loaders import iter_rows

    return iter_rows(source, split=split)


def detect_layout(source: str, split: str, cols: Columns) -> Literal["pairs", "critic-rows"]:
    """The two known hub ids are critic rows; otherwise the first row decides (no chosen + question/answer)."""
    if source.rstrip("/") in CRITIC_ROW_IDS:
        return "critic-rows"
    for _, row in _rows(source, split):
        if cols.chosen not in row and cols.question in row and cols.answer in row:
            return "critic-rows"
        break
    return "pairs"


def load_pairs(source: str, *, split: str = "train", cols: Columns = Columns(), limit: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> list[PairRecord]:
    """Validated preference pairs; a missing or duplicated answer names its file and row."""
    from visionrl.core.data.loaders import source_root

    mapping = {"prompt": cols.prompt, "chosen": cols.chosen, "rejected": cols.rejected, "images": cols.images}
    policy = ImagePolicy(source_root(source), max_pixels)
    out: list[PairRecord] = []
    for where, row in _rows(source, split):
        if limit is not None and len(out) >= limit:
            break
        rec = build_record(row, "pair", mapping, where, f"{Path(str(where.file)).stem}-{where.row}", policy)
        assert isinstance(rec, PairRecord)
        if rec.chosen.strip() == rec.rejected.strip():
            raise where.error("'chosen' equals 'rejected'; a pair needs two different answers")
        out.append(rec)
    if not out:
        raise DataError(f"{source}: no preference pairs found")
    return out


def canonical_choice(value: Any, where: Where, gt_form: GtForm) -> str:
    """`1`, `2`, `Answer 1`, `\\boxed{2}` (any case) → `choice_answer`; anything else is a `DataError`."""
    m = _CHOICE.fullmatch(str(value).strip()) if isinstance(value, str | int) else None
    if m is None:
        raise where.error(f"answer {value!r} is not a choice; expected 1, 2, 'Answer 1' or 'Answer 2'")
    return choice_answer(int(m.group(1)), gt_form)


def load_critic_rows(source: str, *, split: str = "train", cols: Columns = Columns(), gt_form: GtForm = "digit",
                     limit: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[VQARecord]:
    """Rows already in the critic task (`question` with `<image>`, `answer`, `image`), validated."""
    from visionrl.core.data.loaders import source_root

    policy = ImagePolicy(source_root(source), max_pixels)
    out: list[VQARecord] = []
    for where, row in _rows(source, split):
        if limit is not None and len(out) >= limit:
            break
        question = row.get(cols.question)
        if not isinstance(question, str) or not question.strip():
            raise where.error(f"field {cols.question!r} is missing or empty")
        answer = canonical_choice(row.get(cols.answer), where, gt_form)
        images = load_images(row.get(cols.image), policy, where)
        if COT_INSTRUCTION not in question:  # EasyR1's default format_prompt (math_format.jinja)
            question = render_format_prompt(question, COT_INSTRUCTION)
        marks = question.count(IMAGE_TOKEN)
        if marks == 0:
            question = IMAGE_TOKEN * len(images) + question
        elif marks != len(images):
            raise where.error(f"question has {marks} <image> markers but the row has {len(images)} images")
        rid = str(row.get("id", f"{Path(str(where.file)).stem}-{where.row}"))
        out.append(VQARecord(rid, images, question, answer, meta={"flip": answer.endswith("2"), "category": ""}))
    if not out:
        raise DataError(f"{source}: no critic rows found")
    return out


def load_critic_source(source: str, *, layout: str, split: str, cols: Columns, seed: int, gt_form: GtForm,
                       limit: int | None = None) -> list[VQARecord]:
    """Critic rows from a pair source (reorganized) or a critic-row source, as `layout` (or its detection) says."""
    kind = detect_layout(source, split, cols) if layout == "auto" else layout
    if kind == "critic-rows":
        return load_critic_rows(source, split=split, cols=cols, gt_form=gt_form, limit=limit)
    return reorganize_all(load_pairs(source, split=split, cols=cols, limit=limit), seed, gt_form)


def drop_many_images(rows: Sequence[VQARecord], max_images: int | None) -> tuple[list[VQARecord], int]:
    """Rows with at most `max_images` images (Llama-3.2-Vision takes one), and how many were dropped."""
    if max_images is None:
        return list(rows), 0
    kept = [r for r in rows if len(r.images) <= max_images]
    return kept, len(rows) - len(kept)
