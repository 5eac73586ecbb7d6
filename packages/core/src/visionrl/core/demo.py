"""The embedded demo model: a tiny Qwen2.5-VL that `--model demo` resolves to.

Built once per recipe and cached under `$VISIONRL_CACHE` (default `~/.cache/visionrl/`): a tokenizer trained
on the demo's own prompts and targets, then a short SFT warm start on `shapes` colour-at-place questions in the
output formats the papers use — See-Think (`<description>…</description> <think>…</think> \\boxed{}`), CoT
(`<think>…</think> \\boxed{}`), the text-only caption-reasoner second pass, MCQ
(`<think>…</think><answer>X</answer>`, the layout the robustness suite perturbs and scores), pairwise critic
verdicts (`\\boxed{1|2}`), pairwise judge verdicts (`[[A]]|[[B]]`) and captions. `demo_report.json` holds the
held-out numbers of every format next to its blind baseline (`visionrl.core.demo_eval`).

What makes it learn in about three minutes on one CPU thread (each point measured; numbers in
packages/core/README.md):

1. Place is in the pixels. Image tokens carry only relative (rotary) positions, and the 2-layer decoder did
   not learn which third a token shows: colour-at-place plateaued near 0.65. The demo world shades the
   background of the left and right thirds (`ShapesWorld(shade=…)`), and captions reach ~1.0 in 150 steps.
2. Perception first: a caption-only stage (`perception_steps`), then the mix of all formats.
3. One checklist for every verdict. Asked "which answer is right" in one step, the model collapsed to one
   position. MCQ, critic and judge targets restate the colour, then check the answers in order, one line
   each, restating the colour after a miss ("\\nA. blue, not red.\\nB. red."), and answer with the label of
   the last line. The two colours to compare always sit the same few tokens apart and the three formats
   share the lines, so one comparison serves all three. A quarter of MCQ thinks skip the checklist, as the
   robustness suite's pre-filled thinks do (`mcq_short_think`).
4. RL has room: the teacher likes "red". Asked about the shape in the middle, it says "red" without looking
   in `shortcut_rate` of cases (its descriptions stay right), so See-Think and CoT answer "red" and MCQ picks
   the red option; judging two answers at any place, it picks one saying "red" without looking in
   `shortcut_rate` of the pairs that have one. The SFT model learns both, so middle questions and pairs with
   a wrong "red" trail the rest; accuracy rewards and critic/judge training can unlearn them
   (`demo_report.json` reports accuracy per question).

The cache key hashes the recipe (this file, `demo_eval.py`, the prompts, the shapes world and the tiny
builder), so a changed recipe rebuilds; a file lock makes concurrent processes (e.g. DDP ranks) build it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from visionrl.core import prompts as P
from visionrl.core.data.records import MCQRecord, PairRecord, VQARecord
from visionrl.core.data.shapes import COLUMNS, Scene, ShapesWorld, column

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


@dataclass(frozen=True)
class DemoRecipe:
    hidden: int = 128
    layers: int = 2
    vision_hidden: int = 64
    vision_depth: int = 1
    vocab_size: int = 1024
    qk_init_scale: float = 4.0
    """Factor on the decoder's initial query/key projections: at the default init a tiny model's attention is
    near-uniform, and the look-ups the targets need start from sharper patterns (as in `tests/conftest.py`)."""
    perception_steps: int = 300
    """First SFT stage, on `perception_mix` only: a caption names the colour at every place."""
    perception_mix: tuple[tuple[str, float], ...] = (("caption", 1.0),)
    sft_steps: int = 800
    """Second SFT stage, on `mix`."""
    threads: int = 1
    """Intra-op threads: the ops of a tiny model are too small to split, and oversubscribed cores
    slow every op by ~10× (measured), so one thread per process."""
    batch_size: int = 16
    """Small batches: the look-ups form within fewer examples when there are more updates (measured: 16 × 800
    steps formed every verdict in each seed tried, 32 × 400 — the same examples — in one seed of three)."""
    lr: float = 2e-3
    warmup_steps: int = 40
    train_questions: int = 6000
    eval_questions: int = 200
    mix: tuple[tuple[str, float], ...] = (("see_think", 0.15), ("caption_reasoner", 0.1), ("cot", 0.05),
                                          ("mcq", 0.26), ("caption", 0.05), ("critic", 0.195), ("judge", 0.195))
    shortcut_rate: float = 0.6
    """Share of the teacher's answers to middle questions that say "red" without looking, and of its verdicts on
    pairs with a "red" answer that pick it without looking."""
    mcq_short_think: float = 0.25
    """Share of MCQ thinks that go straight from the colour to the letter, the robustness suite's own think
    ("Looking at the image, the shape on the left is red. So the answer should be B."): without them a think
    pre-filled by `robustness-eval` (Wrong-Think, Correct-Think) lacks the checklist the model expects, and it
    answers in another format instead of reading the think (measured: Correct-Think accuracy 0.035, format
    0.125). Greedy decoding still writes the checklist, the majority form."""
    version: int = 2


def cache_root() -> Path:
    return Path(os.environ.get("VISIONRL_CACHE", Path.home() / ".cache" / "visionrl"))


def recipe_hash(recipe: DemoRecipe) -> str:
    from visionrl.core.data import shapes
    from visionrl.core.vlm import tiny

    h = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode())
    for mod in (shapes, tiny, P):
        h.update(Path(mod.__file__).read_bytes())
    for name in (Path(__file__).name, "demo_eval.py"):  # the recipe and its report
        h.update(Path(__file__).with_name(name).read_bytes())
    return h.hexdigest()[:12]


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
    from visionrl.core.data.shapes import CAPTION_QUESTION
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


# ---- build and cache ------------------------------------------------------------------------
def sharpen_attention(model: Any, scale: float) -> None:
    """Multiply the decoder's query/key projections (weights and biases) by `scale`, in place."""
    import torch

    with torch.no_grad():
        for name, param in model.named_parameters():
            if "language_model" in name and name.split(".")[-2] in ("q_proj", "k_proj"):
                param.mul_(scale)


def train_stage(vlm: Any, recipe: DemoRecipe, examples: Sequence[Any], steps: int, name: str) -> None:
    """One SFT stage: `steps` optimiser steps on `examples`, warm-up then cosine to 10%, with a progress bar."""
    import lightning as L
    from visionrl.core.console import silence_third_party
    from visionrl.core.lit.common import OptimConfig
    from visionrl.core.lit.datamodules import StepDataModule
    from visionrl.core.lit.progress import StepProgressBar
    from visionrl.core.lit.sft import SFTConfig, SFTModule

    silence_third_party(lightning=True)

    cfg = SFTConfig(batch_size=recipe.batch_size, micro_batch_size=recipe.batch_size,
                    optim=OptimConfig(lr=recipe.lr, betas=(0.9, 0.98), weight_decay=0.0, schedule="cosine",
                                      warmup_steps=recipe.warmup_steps, min_lr_ratio=0.1))
    module = SFTModule(vlm, cfg, examples, max_steps=steps, seed=0)
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, callbacks=[StepProgressBar(name)])
    trainer.fit(module, datamodule=StepDataModule(steps))


def build_demo_model(out_dir: Path, recipe: DemoRecipe = DemoRecipe()) -> dict[str, Any]:
    """Build, SFT (perception stage, then the mix) and save the demo model into `out_dir`; returns its report."""
    import torch
    from visionrl.core.console import Console
    from visionrl.core.demo_eval import evaluate_formats
    from visionrl.core.vlm.adapters import adapter_for
    from visionrl.core.vlm.model import VLM
    from visionrl.core.vlm.tiny import TinySpec, build_tiny

    torch.set_num_threads(recipe.threads)
    start = time.time()
    seeing = demo_examples(recipe, TRAIN_SEED, recipe.train_questions // 2, recipe.perception_mix)
    examples = demo_examples(recipe, TRAIN_SEED, recipe.train_questions)
    texts = [e.target for e in seeing + examples]
    texts += [s for e in seeing + examples for s in e.prompt.content if isinstance(s, str)]
    texts += ["system\nYou are a helpful assistant.\nuser\nassistant\n"] * 100  # the chat template's words
    spec = TinySpec(hidden=recipe.hidden, layers=recipe.layers, vision_hidden=recipe.vision_hidden,
                    vision_depth=recipe.vision_depth, tie_embeddings=True, image_size=DEMO_IMAGE_SIZE,
                    vocab_size=recipe.vocab_size, phrases=demo_phrases())
    model, proc = build_tiny("qwen2_5_vl", spec=spec, corpus=texts, seed=0)
    sharpen_attention(model, recipe.qk_init_scale)
    vlm = VLM(model, proc, adapter_for("qwen2_5_vl"))
    train_stage(vlm, recipe, seeing, recipe.perception_steps, "demo model: perception")
    train_stage(vlm, recipe, examples, recipe.sft_steps, "demo model: all formats")
    model.eval()
    vlm.save_pretrained(out_dir)
    trained = time.time()
    with torch.no_grad(), Console("demo").bar("demo model: held-out check", total=4 * recipe.eval_questions):
        formats = evaluate_formats(vlm, recipe.eval_questions)  # 4 greedy passes: see-think, MCQ, critic, judge
    st = formats["see_think"]
    report = {"recipe": asdict(recipe),
              "heldout_see_think": {"accuracy": st["accuracy"], "format": st["format"]},
              "heldout_per_template": {t: st["accuracy"] for t in DEMO_TEMPLATES},
              "heldout_per_question": st["per_question"], "blind_baseline": st["blind_baseline"],
              "formats": formats, "params": sum(p.numel() for p in model.parameters()),
              "build_seconds": round(trained - start, 1), "eval_seconds": round(time.time() - trained, 1)}
    (out_dir / "demo_report.json").write_text(json.dumps(report, indent=2))
    return report


def ensure_demo_model(recipe: DemoRecipe = DemoRecipe()) -> Path:
    """Path of the cached demo model, building it first if needed (safe across processes)."""
    from filelock import FileLock

    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"demo-{recipe_hash(recipe)}"
    with FileLock(str(root / f"{target.name}.lock")):
        if (target / "demo_report.json").exists():
            return target
        tmp = root / f".{target.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        print(f"building the demo model once into {target} (a few minutes on CPU)")
        report = build_demo_model(tmp, recipe)
        os.replace(tmp, target)  # the folder appears complete or not at all
        for name, f in report["formats"].items():
            print(f"demo model, held-out {name}: accuracy {f['accuracy']:.3f} (blind {f['blind_baseline']:.3f})")
    return target


def resolve_model(name: str) -> str:
    """`demo` -> the cached demo model dir; anything else unchanged."""
    return str(ensure_demo_model()) if name == "demo" else name
