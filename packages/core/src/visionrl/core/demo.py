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

The targets and training examples are `visionrl.core.demo_teacher`'s. The cache key hashes the recipe (this
file, `demo_teacher.py`, `demo_eval.py`, the prompts, the shapes world and the tiny builder), so a changed recipe
rebuilds; a file lock makes concurrent processes (e.g. DDP ranks) build it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from visionrl.core import prompts as P
from visionrl.core.demo_teacher import (
    DEMO_IMAGE_SIZE,
    DEMO_TEMPLATES,
    TRAIN_SEED,
    demo_examples,
    demo_phrases,
)


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
    from visionrl.core.data import shapes, shapes_scene
    from visionrl.core.vlm import tiny

    h = hashlib.sha256(json.dumps(asdict(recipe), sort_keys=True).encode())
    for mod in (shapes, shapes_scene, tiny, P):
        h.update(Path(mod.__file__).read_bytes())
    for name in (Path(__file__).name, "demo_teacher.py", "demo_eval.py"):  # the recipe, its data and report
        h.update(Path(__file__).with_name(name).read_bytes())
    return h.hexdigest()[:12]


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
