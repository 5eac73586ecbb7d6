"""Prompt sources: the questions pairs are synthesised from, each classified open or closed.

- `shapes` (default): the demo world's colour-at-place questions (closed; reference answers for the
  ground-truth ablation) interleaved with "Describe the image." (open), `shapes_open_fraction` of them.
- a LLaVA-OneVision-style folder, file or hub dataset (`lmms-lab/LLaVA-OneVision-Data` with `--dataset.config
  SUBSET`): rows `{id, image, conversations: [{from: human, value: "<image>\\nQ"}, {from: gpt, value: A}, ...]}`;
  the first human turn is the question and the first gpt turn the reference answer. Images are checked when
  read (a row whose image file is missing fails naming the file and row) and decoded when used.

The open/closed split (Fig. 1: "numerical, multiple choice, short phrases" are closed; "long answers, captions"
open) is a pluggable classifier (`CLASSIFIERS`); `rules` applies `CLOSED_RULES` to the question and answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from visionrl.core.data.validate import DataError, ImagePolicy, Where, load_images
from visionrl.judge.prompts import OPEN_QUESTION

Kind = Literal["open", "closed"]


@dataclass
class PromptItem:
    """One prompt: its question, its reference answer (None when the source has none) and its images."""

    id: str
    question: str
    answer: str | None
    kind: Kind
    image_values: list[Any]
    """PIL images, or the raw row values (paths, `datasets` image dicts) decoded on use."""
    policy: ImagePolicy | None = None
    where: Where | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def images(self) -> list[Any]:
        if self.policy is None:
            return list(self.image_values)
        assert self.where is not None
        return load_images(self.image_values, self.policy, self.where)


# ---------------------------------------------------------------- open / closed

_OPTIONS_IN_QUESTION = re.compile(r"(?:^|\n|\s)\(?[A-E][.)]\s+\S", re.MULTILINE)
_LETTER = re.compile(r"^\(?[A-E]\)?(?:[.)]\s.*|[.)])?$", re.DOTALL)  # "B", "(B)", "B.", "B. red"; not "A dog"
_NUMBER = re.compile(r"^-?\d+(?:[.,]\d+)?%?\.?$")
_OPEN_ASKS = re.compile(r"\b(describe|explain|why|caption|detail)", re.IGNORECASE)

Rule = Callable[[str, str | None, int], bool | None]


def _option_letters(question: str, answer: str | None, max_words: int) -> bool | None:
    if (answer is not None and _LETTER.match(answer.strip())) or _OPTIONS_IN_QUESTION.search(question):
        return True
    return None


def _numeric(question: str, answer: str | None, max_words: int) -> bool | None:
    return True if answer is not None and _NUMBER.match(answer.strip()) else None


def _short_answer(question: str, answer: str | None, max_words: int) -> bool | None:
    if answer is None:
        return False if _OPEN_ASKS.search(question) else None
    return len(answer.split()) <= max_words


CLOSED_RULES: tuple[Rule, ...] = (_option_letters, _numeric, _short_answer)
"""Each rule says closed (True), open (False) or nothing (None); the first that speaks decides, else open."""


def classify_rules(question: str, answer: str | None, max_words: int = 3) -> Kind:
    """Closed: option letters, a number, or an answer of at most `max_words` words; otherwise open.

    >>> [classify_rules(q, a) for q, a in [("How many?", "3"), ("Pick one.\\nA. red\\nB. blue", None),
    ...  ("What color?", "dark red"), ("Describe the image.", None), ("What is shown?", "A dog on a sofa near a lamp")]]
    ['closed', 'closed', 'closed', 'open', 'open']
    """
    for rule in CLOSED_RULES:
        verdict = rule(question, answer, max_words)
        if verdict is not None:
            return "closed" if verdict else "open"
    return "open"


CLASSIFIERS: dict[str, Callable[[str, str | None, int], Kind]] = {
    "rules": classify_rules,
    "closed": lambda q, a, n: "closed",
    "open": lambda q, a, n: "open",
}
"""Name (`--classifier`) → classifier; a new rule set is one more entry."""


# ---------------------------------------------------------------- sources


def shapes_prompts(n: int, open_fraction: float, seed: int) -> list[PromptItem]:
    """`n` demo-world prompts: every item whose index falls in the open share is "Describe the image."."""
    from visionrl.core.demo_teacher import demo_world

    world = demo_world(seed)
    # Spread the open items evenly: item i is open when floor((i + 1)·f) > floor(i·f).
    is_open = [int((i + 1) * open_fraction) > int(i * open_fraction) for i in range(n)]
    vqa = iter(world.vqa(n - sum(is_open)))
    captions = iter(world.captions(sum(is_open)))
    items = []
    for flag in is_open:
        r = next(captions) if flag else next(vqa)
        items.append(PromptItem(r.id, OPEN_QUESTION if flag else r.question, r.answer, "open" if flag else "closed",
                                list(r.images), meta={"template": r.meta["template"]}))
    return items


def _conversation(row: dict[str, Any], where: Where) -> tuple[str, str | None]:
    turns = row.get("conversations")
    if not isinstance(turns, list | tuple) or not turns:
        raise where.error("field 'conversations' must be a non-empty list of {from, value} turns")
    question = next((t.get("value") for t in turns if isinstance(t, dict) and t.get("from") == "human"), None)
    answer = next((t.get("value") for t in turns if isinstance(t, dict) and t.get("from") == "gpt"), None)
    if not isinstance(question, str) or not question.replace("<image>", "").strip():
        raise where.error("no human turn with text in 'conversations'")
    return question.replace("<image>", "").strip(), answer if isinstance(answer, str) else None


def _check_image_paths(values: list[Any], root: Path | None, where: Where) -> None:
    """A missing image file fails now, naming the row; decoding waits until the image is used."""
    for v in values:
        if isinstance(v, str):
            if root is None or not (root / v).is_file():
                raise where.error(f"image {v!r} not found in {root}")


def llava_prompts(source: str, *, split: str, config: str | None, limit: int | None, classifier: str,
                  max_words: int) -> list[PromptItem]:
    """Prompts from a LLaVA-OneVision-style folder, file or hub dataset (see the module docstring)."""
    from visionrl.core.data.loaders import iter_rows, source_root

    root = source_root(source)
    policy = ImagePolicy(root)
    classify = CLASSIFIERS[classifier]
    items: list[PromptItem] = []
    seen: set[str] = set()
    for where, row in iter_rows(source, split=split, config=config):
        if limit is not None and len(items) >= limit:
            break
        question, answer = _conversation(row, where)
        image = row.get("image", row.get("images"))
        values = [] if image is None else list(image) if isinstance(image, list | tuple) else [image]
        if not values:
            raise where.error("no image ('image' is missing or empty)")
        _check_image_paths(values, root, where)
        rid = str(row.get("id", f"row-{where.row}"))
        rid = rid if rid not in seen else f"{rid}#{where.row}"
        seen.add(rid)
        items.append(PromptItem(rid, question, answer, classify(question, answer, max_words), values, policy, where,
                                meta={"source": str(row.get("data_source", ""))}))
    if not items:
        raise DataError(f"{source}: no prompt rows found")
    return items


def iteration_slice(pool: Sequence[PromptItem], iteration: int, per_iteration: int) -> list[PromptItem]:
    """Iteration k's prompts: the pool's items k·n ... (k+1)·n - 1, wrapping around a smaller pool [R]."""
    n = len(pool)
    return [pool[(iteration * per_iteration + j) % n] for j in range(min(per_iteration, n))]
