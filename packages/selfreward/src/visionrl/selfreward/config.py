"""Vision-SR1 configuration: `selfreward-train` and `selfreward-eval` flags and their presets.

Departures from the official code (all switchable, see README):
1. `strict_description` is on by default: a response without `<description>` tags gets an empty
   description and no visual reward (the official code uses the whole response, which leaks the answer).
2. Optimiser steps count one per `mini_batches`: the paper's 512-prompt rollout with 128-prompt actor
   batches is `prompts_per_step × devices = 512`, `mini_batches = 4`.
3. The `demo` preset runs on the embedded tiny model and the `shapes` world on a CPU, without a
   reference model (β = 0) to halve the cost; the paper presets use β = 0.01 low_var_kl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from visionrl.core.checks import NON_NEGATIVE, POSITIVE, UNIT, Checked, Range
from visionrl.core.config import DataArgs, EvalArgs, FlatEvalArgs, FlatRunArgs, RunArgs
from visionrl.core.hparams import GRPOConfig, LoadOptions, OptimConfig, SamplingParams, SFTConfig
from visionrl.core.rewards.plugins import FlatRewardModelArgs, RewardModelArgs

Mode = Literal["sum", "decoupled_code", "decoupled_paper", "vision-r1", "no-self-reward"]
MODES: tuple[str, ...] = ("sum", "decoupled_code", "decoupled_paper", "vision-r1", "no-self-reward")


@dataclass(frozen=True)
class DatasetArgs(DataArgs):
    """Where prompts come from (`--data` names the source) and how its columns map onto questions."""

    question_column: str = "problem"
    """Source column holding the question (Vision-SR1-47K: `problem`)."""
    answer_column: str = "answer"
    images_column: str = "images"


@dataclass(frozen=True)
class TrainConfig(Checked):
    """Vision-SR1 training (arXiv 2508.19652)."""

    RANGES: ClassVar[dict[str, Range]] = {"format_weight": UNIT, "lambdas": NON_NEGATIVE,
                                          "eval_max_new_tokens": POSITIVE}

    run: FlatRunArgs
    stage: Literal["rl", "sft"] = "rl"
    """`rl`: self-rewarding GRPO; `sft`: the cold-start SFT stage (See-Think, CoT, caption-reasoner)."""
    mode: Mode = "sum"
    """Reward mode: sum | decoupled_code | decoupled_paper, or a baseline: vision-r1 | no-self-reward."""
    format_weight: float = 0.1
    """w (α): overall = (1 - w)·accuracy + w·format + visual, in [0, 1]."""
    strict_description: bool = True
    """Missing <description> tags give an empty description and no visual reward (off = official leak)."""
    literal_backslash_n: bool = True
    """Keep the official See-Think file's literal backslash-n sequences (off = real newlines)."""
    lambdas: tuple[float, float] = (0.5, 0.5)
    """λ_ans, λ_vis of `decoupled_paper` (v2 Eq. 8), each >= 0."""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    reward: FlatRewardModelArgs = field(default_factory=RewardModelArgs)
    sft: SFTConfig = field(default_factory=SFTConfig)
    load: LoadOptions = field(default_factory=LoadOptions)
    dataset: DatasetArgs = field(default_factory=DatasetArgs)
    eval_max_new_tokens: int = 64
    """Greedy completion budget of the held-out evaluation."""


_DEMO_GRPO = GRPOConfig(
    num_generations=4, prompts_per_step=16, micro_batch_size=64, gen_batch_size=64, beta=0.0,
    clip_low=0.2, clip_high=0.3, clip_dual=3.0, loss_agg="grpo", log_samples_every=10, engine="lean",
    sampling=SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=64),
    optim=OptimConfig(lr=1e-4, weight_decay=0.0, warmup_steps=20, schedule="constant", max_grad_norm=1.0))

# Paper settings (vision-sr1.md §1.5): EasyR1 GRPO, n = 8, KL 0.01 low_var_kl as a loss, clip 0.2/0.3,
# dual clip 3.0, lr 1e-6 constant, wd 1e-2, T = 1.0, top_p 0.99, 2048 response tokens, token-mean per
# micro-batch (bnpo), 512 prompts per rollout step over 8 GPUs, 4 optimiser steps per rollout step.
_PAPER_GRPO = GRPOConfig(
    num_generations=8, prompts_per_step=64, mini_batches=4, ppo_epochs=1, micro_batch_size=8, gen_batch_size=512,
    beta=0.01, kl_kind="low_var_kl", clip_low=0.2, clip_high=0.3, clip_dual=3.0, loss_agg="bnpo",
    adv_scale="group", adv_eps=1e-6, log_samples_every=5,
    sampling=SamplingParams(temperature=1.0, top_p=0.99, top_k=0, max_new_tokens=2048),
    optim=OptimConfig(lr=1e-6, weight_decay=1e-2, betas=(0.9, 0.999), warmup_steps=0, schedule="constant",
                      max_grad_norm=1.0))
_PAPER_LOAD = LoadOptions(dtype="bfloat16", gradient_checkpointing=True, freeze_vision=False)


def _paper(model: str) -> TrainConfig:
    return TrainConfig(run=RunArgs(model=model, data="LMMs-Lab-Turtle/Vision-SR1-47K", max_steps=92, devices=8,
                                   strategy="fsdp", precision="bf16-true", accelerator="gpu", save_every_n_steps=10,
                                   output_dir=Path("outputs/selfreward-paper")),
                       grpo=_PAPER_GRPO, load=_PAPER_LOAD, eval_max_new_tokens=2048,
                       dataset=DatasetArgs(eval_data=None, eval_size=256))


def _sft(model: str, data: str, demo: bool) -> TrainConfig:
    sft = (SFTConfig(batch_size=32, micro_batch_size=32,
                     optim=OptimConfig(lr=5e-4, weight_decay=0.0, warmup_steps=5, schedule="cosine")) if demo else
           SFTConfig(batch_size=16, micro_batch_size=8,  # per device 8 × grad-accum 2 (LLaMA-Factory recipe)
                     optim=OptimConfig(lr=1e-5, weight_decay=0.0, warmup_steps=100, schedule="cosine")))
    run = (RunArgs(model=model, data=data, max_steps=30, output_dir=Path("outputs/selfreward-sft"),
                   save_every_n_steps=10, threads=1) if demo else
           RunArgs(model=model, data=data, max_steps=1760, devices=8, strategy="fsdp", precision="bf16-true",
                   accelerator="gpu", save_every_n_steps=200, output_dir=Path("outputs/sr1-cold-start")))
    return TrainConfig(run=run, stage="sft", sft=sft,
                       load=LoadOptions(freeze_vision=True, dtype="float32" if demo else "bfloat16",
                                        gradient_checkpointing=not demo),
                       dataset=DatasetArgs(question_column="problem", answer_column="answer"))


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "demo": TrainConfig(run=RunArgs(max_steps=100, save_every_n_steps=25, threads=1,
                                    output_dir=Path("outputs/selfreward-demo")),
                        grpo=_DEMO_GRPO, dataset=DatasetArgs(eval_size=200)),
    "paper-7b": _paper("LMMs-Lab-Turtle/Qwen-2.5VL-7B-Cold-Start"),
    "paper-3b": _paper("LMMs-Lab-Turtle/Qwen-2.5VL-3B-Cold-Start"),
    "sft-demo": _sft("demo", "shapes", demo=True),
    "sft-7b": _sft("Qwen/Qwen2.5-VL-7B-Instruct", "LMMs-Lab-Turtle/Vision-SR1-Cold-9K", demo=False),
}


@dataclass(frozen=True)
class EvalConfig(Checked):
    """Vision-SR1 evaluation."""

    RANGES: ClassVar[dict[str, Range]] = {"max_new_tokens": POSITIVE, "judge_max_new_tokens": POSITIVE}

    eval: FlatEvalArgs
    prompt: Literal["see_think", "cot"] = "see_think"
    """See-Think for SR1 models, CoT for the Vision-R1 baseline."""
    judge: str | None = None
    """LLM judge for answers the rules reject and for LSR: a hub id or local dir (text or VLM), `self`
    (the evaluated model, text only), or None (rules only; LSR then uses `self`)."""
    lsr: bool = True
    """Compute the Language Shortcut Rate (See-Think prompt only)."""
    strict_description: bool = True
    """Missing <description> tags give an empty description (off = the whole response)."""
    max_new_tokens: int = 256
    judge_max_new_tokens: int = 256
    split: str = "test"
    question_column: str = "problem"
    answer_column: str = "answer"
    images_column: str = "images"
    literal_backslash_n: bool = True


EVAL_PRESETS: dict[str, EvalConfig] = {"demo": EvalConfig(eval=EvalArgs(model="demo", data="shapes", output_dir=Path("outputs/selfreward-eval"),
                                            limit=200, batch_size=64), max_new_tokens=64, judge_max_new_tokens=64),
           "paper": EvalConfig(eval=EvalArgs(model="LMMs-Lab-Turtle/SelfRewarded-R1-7B", data="zli12321/MMMU",
                                             output_dir=Path("outputs/selfreward-eval"), batch_size=16),
                               max_new_tokens=4096, judge_max_new_tokens=2048)}
