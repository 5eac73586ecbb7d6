"""Hyper-parameter dataclasses of the core modules, importable without torch or Lightning so that
`--help` and argument parsing stay fast (the CLIs import the heavy modules after parsing)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from visionrl.core.checks import (
    HALF_OPEN_UNIT,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY_OPEN,
    UNIT,
    Checked,
    Range,
)

Schedule = Literal["constant", "cosine", "linear"]
Dtype = Literal["float32", "bfloat16", "float16"]
AttnImplementation = Literal["eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"]
# Literals spelled here and keyed registries in `losses`/`lit` (torch) must agree: tests/core/test_checks.py.
LossAgg = Literal["grpo", "bnpo", "dr_grpo", "dapo"]
KLKind = Literal["k1", "k2", "k3", "low_var_kl"]
AdvScale = Literal["group", "batch", "none"]
HeadKind = Literal["linear", "mlp"]
HeadActivation = Literal["none", "relu", "gelu", "silu", "tanh"]
DPOLoss = Literal["sigmoid", "ipo"]


@dataclass(frozen=True)
class SamplingParams(Checked):
    """Sampling settings of a rollout."""

    RANGES: ClassVar[dict[str, Range]] = {"temperature": POSITIVE, "top_p": PROBABILITY_OPEN, "top_k": NON_NEGATIVE,
                                          "max_new_tokens": POSITIVE}

    temperature: float = 1.0
    """Softmax temperature (T); the training forward divides logits by the same T."""
    top_p: float = 1.0
    """Nucleus sampling mass (1.0 = off)."""
    top_k: int = 0
    """Top-k cut-off (0 = off; transformers' default of 50 is not used)."""
    max_new_tokens: int = 64
    """Completion length cap; a completion without EOS by then counts as clipped."""
    do_sample: bool = True
    """False = greedy decoding (evaluation)."""


@dataclass(frozen=True)
class OptimConfig(Checked):
    """AdamW and its learning-rate schedule."""

    RANGES: ClassVar[dict[str, Range]] = {"lr": POSITIVE, "weight_decay": NON_NEGATIVE, "betas": HALF_OPEN_UNIT,
                                          "warmup_steps": NON_NEGATIVE, "min_lr_ratio": UNIT,
                                          "max_grad_norm": NON_NEGATIVE}

    lr: float = 1e-6
    """Peak learning rate."""
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    """Linear warm-up, in optimizer steps."""
    schedule: Schedule = "constant"
    """Shape after warm-up."""
    min_lr_ratio: float = 0.0
    """Floor of cosine/linear decay as a fraction of `lr`."""
    max_grad_norm: float = 1.0
    """Gradient clipping by global norm (0 = off; a negative limit would flip the gradient's sign)."""


@dataclass(frozen=True)
class LoadOptions(Checked):
    """How to load a VLM."""

    RANGES: ClassVar[dict[str, Range]] = {"lora_r": NON_NEGATIVE, "lora_alpha": POSITIVE, "lora_dropout": HALF_OPEN_UNIT}

    dtype: Dtype = "float32"
    """Weights dtype."""
    attn_implementation: AttnImplementation | None = None
    """`eager`, `sdpa`, `flash_attention_2`, `flash_attention_3` or `flex_attention`; None lets transformers
    choose."""
    gradient_checkpointing: bool = False
    """Activation checkpointing of the decoder (saves memory, costs ~30% speed)."""
    freeze_vision: bool = False
    """Freeze the vision tower and projector."""
    lora_r: int = 0
    """LoRA rank (0 = full fine-tuning); needs the `lora` extra (peft)."""
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    trust_remote_code: bool = False
    """Allow code from the model repo to run (off unless asked)."""


@dataclass(frozen=True)
class GRPOConfig(Checked):
    """GRPO hyper-parameters (EasyR1 / TRL names in brackets)."""

    RANGES: ClassVar[dict[str, Range]] = {
        "num_generations": Range(2), "prompts_per_step": POSITIVE, "beta": NON_NEGATIVE,
        "clip_low": HALF_OPEN_UNIT, "clip_high": NON_NEGATIVE, "clip_dual": Range(1, lo_open=True),
        "adv_eps": POSITIVE, "ppo_epochs": POSITIVE, "mini_batches": POSITIVE, "micro_batch_size": POSITIVE,
        "gen_batch_size": POSITIVE, "log_samples_every": NON_NEGATIVE}

    def problems(self) -> Iterator[tuple[str, str]]:
        rows = self.prompts_per_step * self.num_generations
        if self.mini_batches > rows:
            yield "mini_batches", f"must be at most the {rows} completions of a rollout step (prompts × G)"

    num_generations: int = 8
    """G, completions per prompt [rollout.n / num_generations]."""
    prompts_per_step: int = 8
    """Prompts per rollout step and device."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    optim: OptimConfig = field(default_factory=OptimConfig)
    beta: float = 0.0
    """β, KL coefficient (KL as a loss term); 0 = no reference model."""
    kl_kind: KLKind = "low_var_kl"
    clip_low: float = 0.2
    """ε_low of the PPO clip."""
    clip_high: float = 0.2
    """ε_high (clip-higher when > ε_low)."""
    clip_dual: float | None = None
    """Dual-clip constant c > 1 for A < 0 (EasyR1: 3.0); None = off."""
    loss_agg: LossAgg = "grpo"
    """Loss aggregation, a key of `losses.AGGREGATIONS` (see `losses/policy.py`)."""
    adv_scale: AdvScale = "group"
    """Advantage scaling: group std (GRPO), batch std, or none (Dr. GRPO)."""
    adv_eps: float = 1e-6
    """ε added to the std of the advantage denominator (> 0)."""
    ppo_epochs: int = 1
    """Passes over each rollout."""
    mini_batches: int = 1
    """Optimiser steps per pass over a rollout."""
    micro_batch_size: int = 8
    """Rows per forward/backward (gradient accumulation inside a mini-batch)."""
    gen_batch_size: int = 64
    """Rows per generate call."""
    engine: Literal["hf", "lean"] = "hf"
    """Rollout engine: `hf` (`model.generate`) or `lean` (a KV-cache loop that prefills each prompt
    once per group; faster for small models, same tokens)."""
    shared_vision: bool = True
    """Run the vision tower once per distinct prompt per pass (old-log-prob, reference, each mini-batch of
    the update) and hand its features to every completion of the group; a trained tower gets the summed
    gradient of all micro-batches in one backward. Same log-probs and gradients as the per-row forward
    (vlm/sharing.py); off = every row runs the tower on its images again."""
    shared_prefix: bool = True
    """Run each prompt once per micro-batch and score its completions on its KV cache (gradients flow back
    through the shared prompt) instead of one full [prompt | completion] forward per row. Same log-probs
    and gradients; falls back to the full forward under activation checkpointing (which drops the cache)
    and where no prompt has two rows in a micro-batch."""
    nan_policy: Literal["stop", "skip"] = "stop"
    """On a non-finite reward or loss: stop with an error naming the step, or skip it (such a reward
    counts as 0; such a micro-batch adds no gradient) and go on."""
    log_samples_every: int = 10
    """Write rollouts to samples.jsonl every N steps (0 = never)."""


@dataclass(frozen=True)
class SFTConfig(Checked):
    """SFT hyper-parameters."""

    RANGES: ClassVar[dict[str, Range]] = {"batch_size": POSITIVE, "micro_batch_size": POSITIVE}

    batch_size: int = 32
    """Examples per optimiser step and device."""
    micro_batch_size: int = 32
    """Examples per forward/backward."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-5, warmup_steps=0, schedule="cosine"))
    nan_policy: Literal["stop", "skip"] = "stop"
    """On a non-finite loss: stop with an error naming the step, or skip that micro-batch and go on."""


@dataclass(frozen=True)
class RewardHeadConfig(Checked):
    """The scalar head on top of the backbone's last hidden state (a key of `lit.reward_model.HEADS`)."""

    RANGES: ClassVar[dict[str, Range]] = {"layers": POSITIVE, "hidden": POSITIVE}

    kind: HeadKind = "linear"
    """`linear` (one d_model → 1 projection) or `mlp`."""
    layers: int = 2
    """Linear layers of the `mlp` head, the output layer included (≥ 1)."""
    hidden: int | None = None
    """Width of the `mlp` head's hidden layers; None = the backbone's hidden size."""
    activation: HeadActivation = "gelu"
    """Non-linearity between `mlp` layers: none, relu, gelu, silu or tanh."""


@dataclass(frozen=True)
class RewardModelConfig(Checked):
    """Bradley-Terry reward-model hyper-parameters."""

    RANGES: ClassVar[dict[str, Range]] = {"batch_size": POSITIVE, "micro_batch_size": POSITIVE,
                                          "center_coef": NON_NEGATIVE}

    batch_size: int = 32
    """Preference pairs per optimiser step and device."""
    micro_batch_size: int = 8
    """Pairs per forward/backward (each pair is two sequences)."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-5, schedule="cosine"))
    head: RewardHeadConfig = field(default_factory=RewardHeadConfig)
    margin: bool = False
    """Subtract each pair's `meta["margin"]` (m, Llama 2 Eq. 2) inside the sigmoid; missing = 0."""
    center_coef: float = 0.0
    """λ of the centering penalty λ·mean((r_c + r_r)²) (arXiv:2312.09244)."""
    length_norm: bool = False
    """Score r / log(len + 1), len = response tokens with EOS (BaseReward Algorithm 1); off = raw r."""


@dataclass(frozen=True)
class DPOConfig(Checked):
    """DPO / IPO hyper-parameters (TRL names)."""

    RANGES: ClassVar[dict[str, Range]] = {"batch_size": POSITIVE, "micro_batch_size": POSITIVE, "beta": POSITIVE,
                                          "label_smoothing": Range(0, 0.5, hi_open=True)}

    batch_size: int = 32
    """Preference pairs per optimiser step and device."""
    micro_batch_size: int = 8
    """Pairs per forward/backward (each pair is two sequences, through policy and reference)."""
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-7, schedule="linear"))
    beta: float = 0.1
    """β, the KL strength (τ in IPO)."""
    loss_type: DPOLoss = "sigmoid"
    """A key of `losses.DPO_LOSSES`."""
    label_smoothing: float = 0.0
    """ε, assumed label-flip probability (conservative DPO; sigmoid only)."""
    average_logps: bool | None = None
    """Average token log-probs instead of summing them; None = TRL's choice (average for ipo only)."""
