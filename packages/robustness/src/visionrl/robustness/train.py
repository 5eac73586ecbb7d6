"""`robustness-train`: GRPO with the paper's reward, optional caption/think augmentation and faithfulness
multiplier, and the robustness suite re-run every N steps (arXiv 2602.12506 §RL experiments).

Departures (all switchable, see README):
1. The augmentation variant of a record is fixed per record (seeded), so `--resume` is exact.
2. The paper's GRPO hyper-parameters (LR, KL, batch, lengths, temperature) are not published; the
   `paper-*` presets use EasyR1-style defaults ([R]) with the published G = 8, reward weights,
   augmentation rates and evaluation interval.
3. The `demo` preset has no reference model (β = 0) and a rule judge, to run on a CPU in minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import tyro
from visionrl.core.cli import parse_config, run_cli
from visionrl.core.config import RunArgs, validate_grpo, validate_sft
from visionrl.core.errors import UserError
from visionrl.core.hparams import GRPOConfig, LoadOptions, OptimConfig, SamplingParams, SFTConfig
from visionrl.robustness.perturb import VARIANTS

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
class DatasetArgs:
    """Where training prompts and the held-out suite come from (`--data` names the training source)."""

    split: str = "train"
    """Split of a canonical-layout hub dataset (table benchmarks use their own)."""
    limit: int | None = None
    """Use at most this many training records."""
    eval_data: str | None = None
    """Held-out MCQ set (same syntax as `--data`); default: the last `eval_size` training records (shapes: a
    separate held-out world)."""
    eval_size: int = 48
    """Held-out questions run through the robustness suite (greedy) before, during and after training."""
    shapes_train_size: int = 2000
    """Generated training questions when `--data shapes`."""


@dataclass(frozen=True)
class TrainConfig:
    """GRPO for robustness and CoT consistency (arXiv 2602.12506)."""

    run: Annotated[RunArgs, tyro.conf.OmitArgPrefixes]
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
    """Probability of each of the four augmentations (paper: 0.1 each, 40% perturbed)."""
    eval_every: int = 20
    """Run the robustness suite on the held-out set every N rollout steps (0 = only before/after)."""
    eval_variants: tuple[str, ...] = EVAL_VARIANTS
    """Variants of the periodic and before/after suite."""
    eval_max_new_tokens: int = 48
    """Greedy completion budget of the suite."""
    eval_batch_size: int = 64
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
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
# ~250 steps. Not published, EasyR1-style [R]: lr 1e-6, KL 0.01 low_var_kl, 512 prompts per rollout step.
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
    loss_agg="bnpo",
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
            output_dir=Path("outputs/robustness-paper"),
        ),
        eval_every=250,
        eval_max_new_tokens=1024,
        eval_batch_size=32,
        grpo=_PAPER_GRPO,
        load=LoadOptions(dtype="bfloat16", gradient_checkpointing=True),
        dataset=DatasetArgs(eval_data="cvbench", eval_size=500),
        **kw,
    )


PRESETS: dict[str, TrainConfig] = {
    "demo": TrainConfig(
        run=RunArgs(
            max_steps=60, save_every_n_steps=20, threads=1, output_dir=Path("outputs/robustness-demo")
        ),
        grpo=_DEMO_GRPO,
    ),
    # A CPU warm start that teaches the demo model the MCQ letter format (its own SFT mix has 10% MCQ and
    # answers at chance); evaluate or RL-train the result with `--model outputs/robustness-sft/model`.
    "sft-demo": TrainConfig(
        run=RunArgs(
            max_steps=1500, save_every_n_steps=500, threads=1, output_dir=Path("outputs/robustness-sft")
        ),
        stage="sft",
        eval_every=500,
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


def validate(cfg: TrainConfig) -> None:
    """Method flags users can get wrong (shared flags are checked in core)."""
    validate_grpo(cfg.grpo)
    validate_sft(cfg.sft)
    unknown = [v for v in cfg.eval_variants if v not in VARIANTS]
    checks = [
        (cfg.format_weight >= 0 and cfg.correct_weight >= 0, "--format-weight/--correct-weight must be >= 0"),
        (0 <= cfg.augment_prob <= 0.25, "--augment-prob must be in [0, 0.25] (four variants share one draw)"),
        (cfg.eval_every >= 0, "--eval-every must be >= 0"),
        (not unknown, f"--eval-variants: unknown {unknown}; choose from {', '.join(VARIANTS)}"),
        ("base" in cfg.eval_variants, "--eval-variants must include base (accuracy and reward)"),
        (cfg.eval_max_new_tokens > 0 and cfg.eval_batch_size > 0, "--eval-* sizes must be positive"),
        (cfg.dataset.eval_size > 0, "--dataset.eval-size must be positive"),
        (cfg.dataset.limit is None or cfg.dataset.limit > 0, "--dataset.limit must be positive"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg)


def _main(args: list[str] | None = None) -> None:
    cfg = parse_config(
        TrainConfig,
        PRESETS,
        args=args,
        prog="robustness-train",
        description="GRPO with the robustness paper's reward, augmentation and faithfulness "
        "multiplier; the robustness suite every N steps (arXiv 2602.12506).",
    )
    validate(cfg)
    from visionrl.robustness.pipeline import run_training

    run_training(cfg)


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()
