"""The demo model's teacher: the shapes world it learns from, the target of every output format (See-Think,
CoT, caption reasoner, MCQ, critic and judge checklists, captions), the designed "red" shortcut, and the SFT
examples built from them. Why the targets look as they do: `visionrl.core.demo` (points 1–4); the recipe's
numbers (mix, shortcut rate, sizes) are `DemoRecipe`'s.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from visionrl.core import prompts as P
from visionrl.core.data.records import MCQRecord, PairRecord, VQARecord
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.data.shapes_scene import COLUMNS, Scene, column

if TYPE_CHECKING:
    from visionrl.core.demo import DemoRecipe

DEMO_TEMPLATES = ("color_at",)
"""Questions about colours and places: what a from-scratch vision tower learns in minutes on a CPU (shape
recognition at this size stays near chance), and what a description can fully answer."""
DEMO_TEMPLATE_WEIGHTS = {"color_at": 1.0}
TRAIN_SEED, HELDOUT_SEED = 1, 2  # separate worlds: held-out scenes never appear in training
# 84 px -> 6×6 patches of 14 px -> 3×3 merged image tokens: one token column per left/middle/right third.
DEMO_IMAGE_SIZE = 84
DEMO_SHADE = 16
"""Background levels by which the left third is darker and the right third lighter (point 1 above)."""
SHORTCUT_ANSWER = "red"
MIDDLE = COLUMNS[1]
# Fixed strings of the demo's targets, one token each like the prompts' instructions: shorter sequences (the
# MCQ think must fit robustness-eval's 48 new tokens). "Looking at the image," and " So the answer should be"
# are the robustness suite's think template, so its pre-filled Wrong-Think reads like the demo's own thinks.
TARGET_PHRASES = ("<description>", "</description>", "<think>", "</think>", "<answer>", "</answer>",
                  "Looking at the image,", " So the answer should be")
MCQ_LABELS = {k: f"\n{k}. " for k in "ABCD"}
"""An MCQ option line starts with one of these ("\nA. blue"), one token each (see `ANSWER_LABELS`)."""
ANSWER_LABELS = re.compile(r"(\n\nAnswer [12]: |\n\[The Start of Assistant [AB]'s Answer\]\n)")
"""The text before each answer in the critic and judge prompts. With the MCQ labels, each is one token, so the
verdict checklists (`checklist`) quote an answer as [label token, the answer's own token], exactly as the
prompt writes it, in all three formats."""


def demo_world(seed: int) -> ShapesWorld:
    """The shapes world the demo model is trained and evaluated on."""
    return ShapesWorld(seed=seed, image_size=DEMO_IMAGE_SIZE, templates=DEMO_TEMPLATES,
                       template_weights=DEMO_TEMPLATE_WEIGHTS, shade=DEMO_SHADE)


def demo_pairs(seed: int, n: int) -> list[PairRecord]:
    """The demo's pairwise items: question pairs (the right colour and a wrong one), the right answer shown
    second in every other pair (`meta["flip"]`, read by `core.evaluation.pairwise_scoring.presented`)."""
    pairs = demo_world(seed).pairs(n, caption_fraction=0.0)
    return [replace(p, meta={**p.meta, "flip": i % 2 == 1}) for i, p in enumerate(pairs)]


def demo_phrases() -> tuple[str, ...]:
    """The fixed parts of the demo's prompts and targets, each one token for the demo tokenizer."""
    fixed = [P.SEE_THINK_INSTRUCTION, P.COT_INSTRUCTION, P.THINK_ANSWER_INSTRUCTION]
    for template in (P.CAPTION_REASONER_PROMPT.replace("{{}}", "{}"), P.CRITIC_PROMPT, P.PAIRWISE_JUDGE_PROMPT):
        for part in re.split(r"\{[A-Za-z0-9_]+\}", template):
            fixed += [piece for piece in ANSWER_LABELS.split(part) if piece.strip()]
    return (*fixed, *MCQ_LABELS.values(), *TARGET_PHRASES)


def answer_labels(template: str) -> tuple[str, str]:
    """The two answer labels of a pairwise prompt template, in order."""
    first, second = ANSWER_LABELS.findall(template)
    return first, second


# ---- the tasks in each format ---------------------------------------------------------------
def describe(scene: Scene) -> str:
    """The demo's visual description: colours by place, left to right ("red on the left, blue in the middle")."""
    return ", ".join(f"{s.color} {COLUMNS[column(s)]}" for s in sorted(scene.shapes, key=lambda s: s.x))


def place(question: str) -> str:
    """The place a colour-at-place question asks about ("on the left")."""
    return question.split("shape ", 1)[1].rstrip("?")


def reasoning(rec: VQARecord) -> str:
    """A short reasoning for a colour-at-place question that ends in its answer."""
    assert rec.meta["template"] in DEMO_TEMPLATES, f"no demo reasoning for template {rec.meta['template']!r}"
    return f"the shape {place(rec.question)} is {rec.answer}"


def shortcut(question: str, truth: str, rng: random.Random, rate: float) -> str:
    """What the demo teacher says the asked shape's colour is: "red" without looking for the middle shape in
    `rate` of cases, else the truth."""
    return SHORTCUT_ANSWER if question.endswith(f"{MIDDLE}?") and rng.random() < rate else truth


def teacher_shortcut(rec: VQARecord, rng: random.Random, rate: float) -> VQARecord:
    """`rec` with the answer the demo teacher gives (see `shortcut`)."""
    return replace(rec, answer=shortcut(rec.question, rec.answer, rng, rate))


def see_think_target(rec: VQARecord) -> str:
    desc = describe(Scene.from_dict(rec.meta["scene"]))
    return f"<description> {desc} </description> <think> {reasoning(rec)} </think> \\boxed{{{rec.answer}}}"


def cot_target(rec: VQARecord) -> str:
    return f"<think> {reasoning(rec)} </think> \\boxed{{{rec.answer}}}"


def checklist(labels: Sequence[str], answers: Sequence[str], seen: str) -> str:
    """The answers in order, each under its prompt label, up to the first that says `seen`, the colour
    restated after each miss ("\\nA. blue, not red.\\nB. red."). In every verdict format the same three
    tokens separate the two colours to compare, and an answer is copied from after the same label token."""
    lines = []
    for label, answer in zip(labels, answers):
        if answer == seen:
            return "".join(lines) + f"{label}{answer}."
        lines.append(f"{label}{answer}, not {seen}.")
    return "".join(lines)


def mcq_target(rec: MCQRecord, seen: str, short: bool = False) -> str:
    """Restate the colour, check the options in order (unless `short`), answer the letter of the one that says it.

    >>> rec = MCQRecord("m", [], "What color is the shape on the left?", {"A": "blue", "B": "red"}, "B")
    >>> mcq_target(rec, "red")
    '<think>Looking at the image, the shape on the left is red.\\nA. blue, not red.\\nB. red. So the answer should be B.</think><answer>B</answer>'
    >>> mcq_target(rec, "red", short=True)
    '<think>Looking at the image, the shape on the left is red. So the answer should be B.</think><answer>B</answer>'
    """
    pick = next(k for k, v in rec.options.items() if v == seen)
    checks = "" if short else checklist([MCQ_LABELS[k] for k in rec.options], list(rec.options.values()), seen)
    return (f"<think>Looking at the image, the shape {place(rec.question)} is {seen}.{checks} "
            f"So the answer should be {pick}.</think><answer>{pick}</answer>")


def verdict_pick(shown: tuple[str, str], seen: str) -> int:
    """The position of the answer saying `seen`."""
    assert seen in shown, f"the colour {seen!r} is neither answer of {shown}"
    return 1 if shown[0] == seen else 2


def critic_target(question: str, shown: tuple[str, str], seen: str) -> str:
    r"""A critic verdict: restate the colour, check the answers in order, box the one that says it.

    >>> print(critic_target("What color is the shape on the left?", ("blue", "red"), "red"))
    <think> the shape on the left is red.
    <BLANKLINE>
    Answer 1: blue, not red.
    <BLANKLINE>
    Answer 2: red. </think> \boxed{2}
    """
    checks = checklist(answer_labels(P.CRITIC_PROMPT), shown, seen)
    return f"<think> the shape {place(question)} is {seen}.{checks} </think> \\boxed{{{verdict_pick(shown, seen)}}}"


def judge_target(question: str, shown: tuple[str, str], seen: str) -> str:
    r"""A judge verdict in the same steps, ending in `[[A]]` or `[[B]]`.

    >>> print(judge_target("What color is the shape on the left?", ("red", "blue"), "red"))
    The shape on the left is red.
    [The Start of Assistant A's Answer]
    red. [[A]]
    """
    checks = checklist(answer_labels(P.PAIRWISE_JUDGE_PROMPT), shown, seen)
    return f"The shape {place(question)} is {seen}.{checks} [[{'AB'[verdict_pick(shown, seen) - 1]}]]"


@dataclass
class Teacher:
    """What the format builders share: the recipe, the teacher's generator and per-format counters."""

    recipe: DemoRecipe
    rng: random.Random
    counts: Counter[str] = field(default_factory=Counter)

    def seen(self, question: str, truth: str) -> str:
        return shortcut(question, truth, self.rng, self.recipe.shortcut_rate)

    def judged(self, pair: PairRecord) -> str:
        """The answer the verdict teacher takes as right: one saying "red", without looking, in
        `shortcut_rate` of the pairs that have one (at every place); else the right one."""
        if SHORTCUT_ANSWER in (pair.chosen, pair.rejected) and self.rng.random() < self.recipe.shortcut_rate:
            return SHORTCUT_ANSWER
        return pair.chosen

    def show(self, pair: PairRecord, fmt: str) -> tuple[str, str]:
        """The two answers in the order shown: the right one second in every other example of `fmt`, so verdict
        targets are exactly balanced."""
        self.counts[fmt] += 1
        return (pair.rejected, pair.chosen) if self.counts[fmt] % 2 == 0 else (pair.chosen, pair.rejected)


def image_first(text: str, images: Sequence[Any]) -> Any:
    """The image, then `text` (the MCQ, critic, judge and caption layout)."""
    from visionrl.core.chat import IMAGE, Prompt

    return Prompt([IMAGE, text], list(images))


def _see_think(t: Teacher, rec: VQARecord) -> Any:
    from visionrl.core.chat import Prompt
    from visionrl.core.lit.sft import SFTExample

    said = replace(rec, answer=t.seen(rec.question, rec.answer))
    return SFTExample(Prompt(P.format_segments(rec.question, P.SEE_THINK_INSTRUCTION), rec.images),
                      see_think_target(said))


def _cot(t: Teacher, rec: VQARecord) -> Any:
    from visionrl.core.chat import Prompt
    from visionrl.core.lit.sft import SFTExample

    said = replace(rec, answer=t.seen(rec.question, rec.answer))
    return SFTExample(Prompt(P.format_segments(rec.question, P.COT_INSTRUCTION), rec.images), cot_target(said))


def _caption_reasoner(t: Teacher, rec: VQARecord) -> Any:
    from visionrl.core.chat import Prompt
    from visionrl.core.lit.sft import SFTExample

    desc = describe(Scene.from_dict(rec.meta["scene"]))
    return SFTExample(Prompt([P.caption_reasoner_prompt(desc, rec.question)]), cot_target(rec))


def _caption(t: Teacher, rec: VQARecord) -> Any:
    from visionrl.core.data.shapes_scene import CAPTION_QUESTION
    from visionrl.core.lit.sft import SFTExample

    return SFTExample(image_first(CAPTION_QUESTION, rec.images), describe(Scene.from_dict(rec.meta["scene"])))


def _mcq(t: Teacher, rec: MCQRecord) -> Any:
    from visionrl.core.lit.sft import SFTExample

    seen = t.seen(rec.question, rec.options[rec.answer])
    # drawn per record, not from the teacher's generator: the other formats' draws stay as they were
    short = random.Random(f"short-think\t{rec.id}").random() < t.recipe.mcq_short_think
    return SFTExample(image_first(P.mcq_prompt(rec.question, rec.options), rec.images), mcq_target(rec, seen, short))


def _critic(t: Teacher, pair: PairRecord) -> Any:
    from visionrl.core.lit.sft import SFTExample

    shown = t.show(pair, "critic")
    return SFTExample(image_first(P.critic_prompt(pair.prompt, *shown), pair.images),
                      critic_target(pair.prompt, shown, t.judged(pair)))


def _judge(t: Teacher, pair: PairRecord) -> Any:
    from visionrl.core.lit.sft import SFTExample

    shown = t.show(pair, "judge")
    return SFTExample(image_first(P.judge_prompt(pair.prompt, *shown), pair.images),
                      judge_target(pair.prompt, shown, t.judged(pair)))


FORMATS: dict[str, tuple[str, Callable[[Teacher, Any], Any]]] = {
    "see_think": ("vqa", _see_think), "cot": ("vqa", _cot), "caption_reasoner": ("vqa", _caption_reasoner),
    "caption": ("vqa", _caption), "mcq": ("mcq", _mcq), "critic": ("pair", _critic), "judge": ("pair", _judge),
}
"""Format name -> (record kind it is built from, builder)."""


def demo_examples(recipe: DemoRecipe, seed: int, n: int,
                  mix: Sequence[tuple[str, float]] | None = None) -> list[Any]:
    """`n` SFT examples in the formats of `mix` (default `recipe.mix`), deterministic per seed."""
    world, rng = demo_world(seed), random.Random(seed)
    names, weights = zip(*(mix or recipe.mix))
    fmts = rng.choices(names, weights=weights, k=n)
    need = Counter(FORMATS[f][0] for f in fmts)
    records = {"vqa": iter(world.vqa(need["vqa"])), "mcq": iter(world.mcq(need["mcq"])),
               "pair": iter(world.pairs(need["pair"], caption_fraction=0.0))}
    teacher = Teacher(recipe, rng)
    return [FORMATS[f][1](teacher, next(records[FORMATS[f][0]])) for f in fmts]


def heldout_records(n: int) -> list[VQARecord]:
    return demo_world(HELDOUT_SEED).vqa(n)
