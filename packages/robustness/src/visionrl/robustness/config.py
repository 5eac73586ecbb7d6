"""Configuration of `robustness-train` and `robustness-eval` (arXiv 2602.12506): flags and presets.

Departures of `robustness-train` (all switchable, see README):
1. The augmentation variant of a record is fixed per record (seeded), so `--resume` is exact.
2. The paper's GRPO hyper-parameters (LR, KL, batch, lengths, temperature) are not published; the
   `paper-*` presets use EasyR1-style defaults ([R]) with the published G = 8, reward weights,
   augmentation rates and evaluation interval.
3. The `demo` preset has no reference model (β = 0) and a rule judge, to run on a CPU in minutes.

Departure of `robustness-eval`: judges load through the core VLM wrapper, so the paper's text-only judges
(Qwen3-32B, GPT-OSS-120B, Llama-3.1-70B) are replaced in the `paper` preset by a VLM of the same family;
`--judges` takes any local or hub VLM, `self` (the evaluated model) or `rule`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from visionrl.core.checks import NON_NEGATIVE, POSITIVE, Checked, Range
from visionrl.core.config import DataArgs, EvalArgs, FlatEvalArgs, FlatRunArgs, RunArgs
from visionrl.core.hparams import GRPOConfig, LoadOptions, OptimConfig, SamplingParams, SFTConfig
from visionrl.core.rewards.plugins import FlatRewardModelArgs, RewardModelArgs
from visionrl.robustness.perturb import VARIANTS


def _variant_problems(names: tuple[str, ...], field_name: str, need_base: bool = True) -> Iterator[tuple[str, str]]:
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        yield field_name, f"unknown {unknown}; choose from {', '.join(VARIANTS)}"
    elif not names:
        yield field_name, "needs at least one variant"
    elif need_base and "base" not in names:
        yield field_name, "must include base (accuracy and reward)"


EVAL_VARIANTS: tuple[str, ...] = (
    "base",
    "stop_think",
    "wrong_think",
    "wrong_think_but",
    "wrong_caption",
    "wrong_caption_disclaimer",
    "correct_think",
    "correct_caption",
)


@dataclass(frozen=True)
class DatasetArgs(DataArgs):
    """Where training prompts and the held-out suite come from (`--data` names the training source, with
    the syntax of `robustness-eval --data`; `--dataset.eval-data` likewise)."""

    eval_size: int = 48
    """Held-out questions run through the robustness suite (greedy) before, during and after training."""


@dataclass(frozen=True)
class TrainConfig(Checked):
    """GRPO for robustness and CoT consistency (arXiv 2602.12506)."""

    RANGES: ClassVar[dict[str, Range]] = {"format_weight": NON_NEGATIVE, "correct_weight": NON_NEGATIVE,
                                          "augment_prob": Range(0, 0.25), "eval_max_new_tokens": POSITIVE,
                                          "eval_batch_size": POSITIVE}

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _variant_problems(self.eval_variants, "eval_variants")

    run: FlatRunArgs
    stage: Literal["rl", "sft"] = "rl"
    """`rl`: GRPO with the paper's reward; `sft`: an MCQ warm start (think/answer format) on clean prompts."""
    format_weight: float = 0.1
    """Weight of 1[format ok] in R = 0.1·1[format] + 1.0·1[correct]."""
    correct_weight: float = 1.0
    """Weight of 1[answer correct]."""
    faithfulness: bool = False
    """Multiply the reward by 1[think ≡ answer] (faithfulness-aware reward)."""
    judge: str = "rule"
    """Consistency judge for the faithfulness reward and the suite: `rule`, `self`, or a local/hub VLM."""
    augment: bool = False
    """Caption/think augmentation: correct-think, wrong-think, correct-caption, wrong-caption."""
    augment_prob: float = 0.1
    """Probability of each of the four augmentations (paper: 0.1 each, 40% perturbed; at most 0.25, as the
    four share one draw)."""
    eval_variants: tuple[str, ...] = EVAL_VARIANTS
    """Variants of the periodic (`--eval-every`) and before/after suite; must include base."""
    eval_max_new_tokens: int = 48
    """Greedy completion budget of the suite."""
    eval_batch_size: int = 64
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    reward: FlatRewardModelArgs = field(default_factory=RewardModelArgs)
    sft: SFTConfig = field(default_factory=SFTConfig)
    load: LoadOptions = field(default_factory=LoadOptions)
    dataset: DatasetArgs = field(default_factory=DatasetArgs)


_DEMO_GRPO = GRPOConfig(
    num_generations=8,
    prompts_per_step=8,
    micro_batch_size=64,
    gen_batch_size=64,
    beta=0.0,
    clip_low=0.2,
    clip_high=0.2,
    loss_agg="grpo",
    adv_eps=1e-4,
    log_samples_every=10,
    sampling=SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=48),
    optim=OptimConfig(lr=5e-5, weight_decay=0.0, warmup_steps=10, schedule="constant", max_grad_norm=1.0),
)

# Paper (robustness-cot.md §1.5): verl GRPO, G = 8, Qwen2.5-VL-7B-Instruct, 1k+ steps, evaluation every
# ~250 steps. Not published, EasyR1-style [R]: lr 1e-6, KL 0.01 low_var_kl, 512 prompts per rollout step,
# and current EasyR1's token mean over the whole mini-batch across ranks (`dapo` here; verl's default too).
_PAPER_GRPO = GRPOConfig(
    num_generations=8,
    prompts_per_step=64,
    mini_batches=4,
    micro_batch_size=8,
    gen_batch_size=512,
    beta=0.01,
    kl_kind="low_var_kl",
    clip_low=0.2,
    clip_high=0.28,
    loss_agg="dapo",
    log_samples_every=10,
    sampling=SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=1024),
    optim=OptimConfig(lr=1e-6, weight_decay=1e-2, warmup_steps=0, schedule="constant", max_grad_norm=1.0),
)


def _paper(**kw) -> TrainConfig:
    return TrainConfig(
        run=RunArgs(
            model="Qwen/Qwen2.5-VL-7B-Instruct",
            data="sat",
            max_steps=1000,
            devices=8,
            strategy="fsdp",
            precision="bf16-true",
            accelerator="gpu",
            save_every_n_steps=250,
            eval_every=250,
            output_dir=Path("outputs/robustness-paper"),
        ),
        eval_max_new_tokens=1024,
        eval_batch_size=32,
        grpo=_PAPER_GRPO,
        load=LoadOptions(dtype="bfloat16", gradient_checkpointing=True),
        dataset=DatasetArgs(eval_data="cvbench", eval_size=500),
        **kw,
    )


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "demo": TrainConfig(
        run=RunArgs(
            max_steps=60, save_every_n_steps=20, eval_every=20, threads=1,
            output_dir=Path("outputs/robustness-demo"),
        ),
        grpo=_DEMO_GRPO,
    ),
    # A CPU warm start that teaches the demo model the MCQ letter format (its own SFT mix has 10% MCQ and
    # answers at chance); evaluate or RL-train the result with `--model outputs/robustness-sft/model`.
    "sft-demo": TrainConfig(
        run=RunArgs(
            max_steps=1500, save_every_n_steps=500, eval_every=500, threads=1,
            output_dir=Path("outputs/robustness-sft"),
        ),
        stage="sft",
        sft=SFTConfig(
            batch_size=32,
            micro_batch_size=32,
            optim=OptimConfig(
                lr=1e-3, weight_decay=0.0, warmup_steps=20, schedule="cosine", min_lr_ratio=0.1
            ),
        ),
        dataset=DatasetArgs(shapes_train_size=4000),
    ),
    "paper-7b": _paper(),
    "paper-7b-aug": _paper(augment=True),
    "paper-7b-faithful": _paper(faithfulness=True, judge="Qwen/Qwen3-VL-32B-Instruct"),
}


ALL_VARIANTS: tuple[str, ...] = tuple(VARIANTS)
DESCRIPTION = (
    "Robustness and chain-of-thought consistency of a VLM under prompt perturbations (arXiv 2602.12506). "
    "--data takes comma-separated entries: shapes; a benchmark name (3dsrbench, cvbench, spatial-mm-obj, "
    "spatial-mm-multihop, whatsup, vstar, mme-realworld-lite, mmbench) or its hub id; NAME=FOLDER for a local "
    "copy in that benchmark's format; or any folder/hub id in the canonical MCQ layout."
)


@dataclass(frozen=True)
class EvalConfig(Checked):
    """Robustness and chain-of-thought consistency evaluation (arXiv 2602.12506)."""

    RANGES: ClassVar[dict[str, Range]] = {"max_new_tokens": POSITIVE, "judge_max_new_tokens": POSITIVE,
                                          "shapes_size": POSITIVE, "threads": POSITIVE}

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from _variant_problems(self.variants, "variants", need_base=False)
        if not self.judges:
            yield "judges", "needs at least one judge (e.g. rule)"
        elif len(set(self.judges)) != len(self.judges):
            yield "judges", "lists a judge twice"

    eval: FlatEvalArgs
    variants: tuple[str, ...] = ALL_VARIANTS
    """Prompt variants to run (`base` is needed for accuracy drops and AUROC)."""
    judges: tuple[str, ...] = ("rule",)
    """Consistency judges, the first is primary: `rule`, `self` (the evaluated model as an LLM judge), or
    a local/hub VLM id. Two or more also report strict agreement and Fleiss' κ."""
    max_new_tokens: int = 64
    """Greedy completion budget per item and variant."""
    judge_max_new_tokens: int = 64
    split: str = "test"
    """Split of a hub dataset in the canonical layout (table benchmarks use their own)."""
    question_column: str = "question"
    """Canonical-layout column maps (`--data` folders or hub ids that are not in the benchmark table)."""
    options_column: str = "options"
    answer_column: str = "answer"
    images_column: str = "images"
    shapes_size: int = 200
    """Generated shapes questions when `--data shapes` and no `--limit`."""
    threads: int | None = None
    """Intra-op CPU threads (tiny models want 1); None leaves torch's default."""
    plots: bool = True
    """Write the PNG figures."""


EVAL_PRESETS: dict[str, EvalConfig] = {
    "demo": EvalConfig(
        eval=EvalArgs(model="demo", data="shapes", output_dir=Path("outputs/robustness-eval"), batch_size=64),
        max_new_tokens=48,
        threads=1,
    ),
    "paper": EvalConfig(
        eval=EvalArgs(
            model="RUBBISHLIKE/SpaceR",
            data="cvbench,vstar,mme-realworld-lite,mmbench",
            output_dir=Path("outputs/robustness-eval-paper"),
            batch_size=16,
        ),
        variants=ALL_VARIANTS,
        judges=("Qwen/Qwen3-VL-32B-Instruct", "rule"),
        max_new_tokens=1024,
        judge_max_new_tokens=256,
    ),
}
