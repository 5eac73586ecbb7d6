"""LLaVA-Critic-R1 configuration: `critic-train` and `critic-eval` flags and their presets.

Departures from the official code (all switchable, see README):
1. Optimiser steps count one per `mini_batches`: the paper's 256-prompt rollout with 128-prompt actor
   batches is `prompts_per_step × devices = 256`, `mini_batches = 2`; `--save-every-n-steps` counts
   optimiser steps, so EasyR1's `save_freq: 10` (rollout steps) is 20 here.
2. The paper trains on every row and never validates (`val_freq: -1`); the paper presets hold out the last
   `--dataset.eval-size` rows to report before/after numbers.
3. The `demo` preset runs the embedded tiny model on `shapes` pairs on a CPU: G = 4, 16 prompts per step,
   lr 1e-4 with 20 warm-up steps, no reference model (β = 0, half the cost), 48 new tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from visionrl.core.checks import POSITIVE, UNIT, Checked, Range
from visionrl.core.config import DataArgs, EvalArgs, FlatEvalArgs, FlatRunArgs, RunArgs
from visionrl.core.hparams import GRPOConfig, LoadOptions, OptimConfig, SamplingParams
from visionrl.core.rewards.plugins import FlatRewardModelArgs, RewardModelArgs

Reward = Literal["critic", "format-only"]
GtForm = Literal["digit", "phrase"]
Layout = Literal["auto", "pairs", "critic-rows"]
Strategy = Literal["knockout", "sequential_champion", "round_robin"]
REPORTS: tuple[str, ...] = ("critic", "policy", "self-critic")

PAPER_DATA = "lmms-lab/LLaVA-Critic-GRPO-dataset"


@dataclass(frozen=True)
class DatasetArgs(DataArgs):
    """Where critic rows come from (`--data` names the source) and how its columns map onto them."""

    RANGES: ClassVar[dict[str, Range]] = {**DataArgs.RANGES, "max_images": POSITIVE}

    layout: Layout = "auto"
    """`pairs` (prompt/chosen/rejected/images, reorganized here), `critic-rows` (question/answer/image, as in
    lmms-lab/LLaVA-Critic-GRPO-dataset), or `auto` (those hub ids, or a first row without `chosen`, are rows)."""
    prompt_column: str = "prompt"
    chosen_column: str = "chosen"
    rejected_column: str = "rejected"
    images_column: str = "images"
    question_column: str = "question"
    """Critic rows: the column holding the critic prompt (EasyR1 `prompt_key: question`)."""
    answer_column: str = "answer"
    image_column: str = "image"
    max_images: int | None = None
    """Drop (and count) rows with more images than this (Llama-3.2-Vision: 1); None = no limit."""
    policy_eval: str | None = "shapes"
    """Held-out policy-transfer questions evaluated with the critic set: `shapes`, `NAME=SOURCE` as in
    `critic-eval --policy-data`, or None (critic numbers only)."""


@dataclass(frozen=True)
class TrainConfig(Checked):
    """LLaVA-Critic-R1 training (arXiv 2509.00676): pairwise critic data as verifiable GRPO."""

    RANGES: ClassVar[dict[str, Range]] = {"format_weight": UNIT, "eval_max_new_tokens": POSITIVE,
                                          "eval_batch_size": POSITIVE}

    run: FlatRunArgs
    reward: Reward = "critic"
    """`critic`: (1 - w)·accuracy + w·format (EasyR1 math.py); `format-only`: the paper's format-only RFT ablation."""
    format_weight: float = 0.1
    """w, weight of the think-then-box format reward, in [0, 1] (code: 0.1; accuracy gets 1 - w)."""
    gt_form: GtForm = "digit"
    """Ground truth of reorganized pairs: `digit` (`1`/`2`) or `phrase` (`Answer 1`/`Answer 2`)."""
    prefill: str = ""
    """Assistant prefill every prompt ends with (MiMo-VL: `<think>`); the rewards read prefill + completion."""
    eval_max_new_tokens: int = 48
    """Greedy completion budget of the held-out evaluation."""
    eval_batch_size: int = 64
    """Prompts per generate call in the held-out evaluation."""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    reward_plugin: FlatRewardModelArgs = field(default_factory=RewardModelArgs)
    """An extra plug-in reward (`--reward-model PATH --reward-mode ...`, core's reward plug-ins); off by default."""
    load: LoadOptions = field(default_factory=LoadOptions)
    dataset: DatasetArgs = field(default_factory=DatasetArgs)


_DEMO_GRPO = GRPOConfig(
    num_generations=4, prompts_per_step=16, micro_batch_size=64, gen_batch_size=64, beta=0.0,
    clip_low=0.2, clip_high=0.3, clip_dual=3.0, loss_agg="bnpo", log_samples_every=10, engine="lean",
    sampling=SamplingParams(temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=48),
    optim=OptimConfig(lr=1e-4, weight_decay=0.0, warmup_steps=20, schedule="constant", max_grad_norm=1.0))


def paper_grpo(lr: float) -> GRPOConfig:
    """EasyR1 `examples/config.yaml` + the critic scripts (reference §1.5): n = 8, T 1.0, top_p 0.99,
    low_var_kl 0.01 as a loss, clip 0.2/0.3, dual clip 3.0, 1 PPO epoch, token-mean per micro-batch (bnpo),
    AdamW wd 1e-2, constant LR, grad clip 1.0, 256 prompts per rollout (32 × 8 GPUs), 2 optimiser steps per
    rollout (actor batch 128), micro-batch 4, 2048 response tokens; no entropy term (`is_entropy_reg: False`)."""
    return GRPOConfig(
        num_generations=8, prompts_per_step=32, mini_batches=2, ppo_epochs=1, micro_batch_size=4,
        gen_batch_size=256, beta=0.01, kl_kind="low_var_kl", clip_low=0.2, clip_high=0.3, clip_dual=3.0,
        loss_agg="bnpo", adv_scale="group", adv_eps=1e-6, log_samples_every=5,
        sampling=SamplingParams(temperature=1.0, top_p=0.99, top_k=0, max_new_tokens=2048),
        optim=OptimConfig(lr=lr, weight_decay=1e-2, betas=(0.9, 0.999), warmup_steps=0, schedule="constant",
                          max_grad_norm=1.0))


PAPER_ROWS = 40_154
"""Rows of the critic GRPO data (the pairwise subset of lmms-lab/llava-critic-113k)."""
PAPER_EPOCHS = 15
PAPER_STEPS = PAPER_EPOCHS * -(-PAPER_ROWS // 256)  # 15 epochs × 157 rollout steps (reference §1.5)


def _paper(model: str, lr: float, *, prefill: str = "", max_images: int | None = None,
           max_prompt_tokens: int = 6142) -> TrainConfig:
    """`max_prompt_length` 6142 (Llama: 4096) with overlong prompts filtered out (EasyR1's
    `filter_overlong_prompts`): dropped and counted (`dropped_overlong` in metrics.json)."""
    return TrainConfig(
        run=RunArgs(model=model, data=PAPER_DATA, max_steps=PAPER_STEPS, devices=8, strategy="fsdp",
                    precision="bf16-true", accelerator="gpu", save_every_n_steps=20,
                    max_prompt_tokens=max_prompt_tokens, overlong_prompts="drop",
                    output_dir=Path("outputs/critic-paper")),
        grpo=paper_grpo(lr), prefill=prefill, eval_max_new_tokens=2048, eval_batch_size=16,
        load=LoadOptions(dtype="bfloat16", gradient_checkpointing=True, freeze_vision=False),
        dataset=DatasetArgs(eval_size=256, policy_eval=None, max_images=max_images))


TRAIN_PRESETS: dict[str, TrainConfig] = {
    "demo": TrainConfig(run=RunArgs(max_steps=100, save_every_n_steps=50, threads=1,
                                    output_dir=Path("outputs/critic-demo")),
                        grpo=_DEMO_GRPO, dataset=DatasetArgs(eval_size=200)),
    "paper-7b": _paper("Qwen/Qwen2.5-VL-7B-Instruct", 1e-6),
    "plus-7b": _paper("russwang/ThinkLite-VL-7B", 5e-7),
    "mimo-7b": _paper("XiaomiMiMo/MiMo-VL-7B-SFT-2508", 1e-6, prefill="<think>"),
    "llama-11b": _paper("meta-llama/Llama-3.2-11B-Vision-Instruct", 5e-7, max_images=1, max_prompt_tokens=4096),
}


@dataclass(frozen=True)
class EvalConfig(Checked):
    """LLaVA-Critic-R1 evaluation: critic benchmarks, policy benchmarks, test-time self-critic."""

    RANGES: ClassVar[dict[str, Range]] = {
        "self_critic_n": Range(2), "max_new_tokens": POSITIVE, "policy_max_new_tokens": POSITIVE,
        "temperature": POSITIVE, "top_p": Range(0, 1, lo_open=True), "shapes_size": POSITIVE,
        "threads": POSITIVE}

    def problems(self) -> Iterator[tuple[str, str]]:
        unknown = [r for r in self.reports if r not in REPORTS]
        if unknown or not self.reports:
            yield "reports", f"unknown or none {unknown}; choose from {', '.join(REPORTS)}"

    eval: FlatEvalArgs
    """`--data` names the critic benchmarks, comma-separated: `shapes`, `vlrewardbench`, `mmrlhf` (their hub
    ids), `NAME=FOLDER` (a local copy in the official layout) or `pairs=SOURCE` (preference pairs)."""
    reports: tuple[str, ...] = REPORTS
    """Reports to produce: critic, policy, self-critic."""
    policy_data: str = "shapes"
    """Policy benchmarks, comma-separated: `shapes`, `mmmu`, `mmstar`, `chartqa` (hub ids) or `NAME=SOURCE`;
    the self-critic report runs on the first."""
    both_orders: bool = False
    """Also judge every critic pair in the other order: adds consistency, both-orders accuracy, position1_rate."""
    self_critic_n: int = 4
    """N, answers sampled per question for the self-critic (paper: 128; >= 2)."""
    strategy: Strategy = "knockout"
    """Self-critic pairing: knockout (N-1 calls) | sequential_champion (N-1) | round_robin (N(N-1)/2)."""
    self_critic_shown: Literal["full", "answer"] = "full"
    """What the judge sees of each candidate: the `full` text (think + answer, the reference's choice) or the
    final `answer` only (its ablation)."""
    self_critic_both_orders: bool = False
    """Judge each self-critic comparison in both orders (twice the calls; disagreement = coin)."""
    temperature: float = 1.0
    """Self-critic sampling temperature (the training rollout's)."""
    top_p: float = 0.99
    """Self-critic nucleus mass (the training rollout's)."""
    max_new_tokens: int = 2048
    """Critic (judge) completion budget (harness: 2048)."""
    policy_max_new_tokens: int = 2048
    """Policy answer budget, greedy and sampled."""
    prefill: str = ""
    """Assistant prefill (MiMo-VL thinking: `<think>`)."""
    shapes_size: int = 200
    """Shapes items per benchmark when no `--limit` is given."""
    engine: Literal["hf", "lean"] = "hf"
    """Generation engine: `hf` (`model.generate`) or `lean` (core's KV-cache loop; faster on small models)."""
    threads: int | None = None
    """Intra-op CPU threads (tiny models want 1); None leaves torch's default."""


EVAL_PRESETS: dict[str, EvalConfig] = {
    "demo": EvalConfig(eval=EvalArgs(model="demo", data="shapes", output_dir=Path("outputs/critic-eval"),
                                     batch_size=64), max_new_tokens=48, policy_max_new_tokens=48, threads=1,
                       engine="lean", self_critic_shown="answer"),
    "paper": EvalConfig(eval=EvalArgs(model="lmms-lab/LLaVA-Critic-R1-7B", data="vlrewardbench,mmrlhf",
                                      output_dir=Path("outputs/critic-eval-paper"), batch_size=16),
                        policy_data="mmmu,mmstar,chartqa",
                        self_critic_n=128, both_orders=True),
}
