"""Reward modes: which prompt, which rewards, and how rewards become advantages.

| mode              | prompt    | rewards (weight)                              | advantage                                   |
|-------------------|-----------|-----------------------------------------------|---------------------------------------------|
| `sum`             | See-Think | accuracy 0.9, format 0.1, visual 1.0          | one group z-score of the sum (main/v1 code) |
| `decoupled_code`  | See-Think | accuracy, visual (format logged)              | z(acc) + z(visual) on pass-1 tokens (branch `embedding-decomposition`, weights 1/1) |
| `decoupled_paper` | See-Think | r_ans = acc + α·fmt, r_vis = visual + α·fmt   | λ·z(r_ans) on pass-1 tokens, λ·z(r_vis) on pass-2 tokens, λ = 0.5 (v2 Eq. 4–8) |
| `vision-r1`       | CoT       | accuracy 0.9, CoT format 0.1                  | one z-score (Vision-R1 baseline)            |
| `no-self-reward`  | See-Think | accuracy 0.9, format 0.1                      | one z-score (ablation)                      |

`description_format` (pass-2 layout) is logged with weight 0 whenever a second pass runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from visionrl.core.chat import Prompt
from visionrl.core.lit.grpo import AdvantageFn, GRPOConfig
from visionrl.core.losses import group_advantages, multi_channel_advantages
from visionrl.core.rewards.base import NamedReward, RewardContext
from visionrl.core.rollout import Rollout, concat_rollouts
from visionrl.selfreward.config import MODES, Mode
from visionrl.selfreward.prompts import cot_prompt, see_think_prompt
from visionrl.selfreward.rewards import (
    SecondPass,
    accuracy_reward,
    cot_format_reward,
    description_format_fn,
    see_think_format_reward,
    visual_reward_fn,
)


@dataclass
class Method:
    """Everything the GRPO module needs from Vision-SR1 for one mode."""

    prompt_fn: Callable[[Any], Prompt]
    rewards: list[NamedReward]
    advantage_fn: AdvantageFn | None  # None = z-score of the weighted reward sum


def decoupled_code_advantages(rollout: Rollout, rewards: dict[str, torch.Tensor], ctx: RewardContext,
                              cfg: GRPOConfig) -> tuple[Rollout, torch.Tensor]:
    """Two channels, each z-scored within its group, summed with weights 1/1 on pass-1 tokens."""
    r_NK = torch.stack([rewards["accuracy"], rewards["visual"]], dim=1)  # (N, 2)
    adv_NK = multi_channel_advantages(r_NK, rollout.group_ids_N, (1.0, 1.0), cfg.adv_scale, cfg.adv_eps)
    return rollout, adv_NK.sum(1)


def decoupled_paper_advantages(alpha: float, lam_ans: float, lam_vis: float, pad_token_id: int) -> AdvantageFn:
    """v2 multi-reward optimisation: answer advantage on pass-1 tokens, visual advantage on the
    pass-2 tokens (which are then trained too), each weighted by λ."""

    def fn(rollout: Rollout, rewards: dict[str, torch.Tensor], ctx: RewardContext,
           cfg: GRPOConfig) -> tuple[Rollout, torch.Tensor]:
        pass2: Rollout = ctx.extras["pass2"]
        r_ans = rewards["accuracy"] + alpha * rewards["format"]  # Eq. 4
        r_vis = rewards["visual"] + alpha * rewards["format"]  # Eq. 5
        a_ans = group_advantages(r_ans, rollout.group_ids_N, cfg.adv_scale, cfg.adv_eps)
        a_vis = group_advantages(r_vis, pass2.group_ids_N.to(r_vis.device), cfg.adv_scale, cfg.adv_eps)
        rows = concat_rollouts([rollout, pass2], pad_token_id)
        return rows, torch.cat([lam_ans * a_ans, lam_vis * a_vis])

    return fn


def build_method(mode: Mode, *, format_weight: float = 0.1, strict_description: bool = True,
                 literal_backslash_n: bool = True, lambdas: tuple[float, float] = (0.5, 0.5),
                 pad_token_id: int = 0, gen_batch_size: int = 64, engine: str = "hf") -> Method:
    """Prompts, rewards and advantages of a Vision-SR1 mode or baseline."""
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    w = format_weight
    if mode == "vision-r1":
        return Method(lambda rec: cot_prompt(rec.question, list(rec.images)), [NamedReward("accuracy", accuracy_reward, 1 - w),
                                   NamedReward("format", cot_format_reward, w)], None)

    def prompt_fn(rec: Any) -> Prompt:
        return see_think_prompt(rec.question, list(rec.images), literal_backslash_n=literal_backslash_n)

    base = [NamedReward("accuracy", accuracy_reward, 1 - w), NamedReward("format", see_think_format_reward, w)]
    if mode == "no-self-reward":
        return Method(prompt_fn, base, None)
    second = SecondPass(strict_description, gen_batch_size, engine)
    rewards = base + [NamedReward("visual", visual_reward_fn(second), 1.0),
                      NamedReward("description_format", description_format_fn(second), 0.0)]
    if mode == "sum":
        return Method(prompt_fn, rewards, None)
    if mode == "decoupled_code":
        return Method(prompt_fn, rewards, decoupled_code_advantages)
    return Method(prompt_fn, rewards, decoupled_paper_advantages(w, lambdas[0], lambdas[1], pad_token_id))
