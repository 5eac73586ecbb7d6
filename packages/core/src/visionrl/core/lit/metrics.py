"""Per-step training metrics under the TensorBoard tags of the design (aligned with TRL's names)."""

from __future__ import annotations

import torch
from visionrl.core.rewards.base import RewardContext
from visionrl.core.rollout import Rollout


def group_std_N(values_N: torch.Tensor, group_ids_N: torch.Tensor) -> torch.Tensor:
    """Unbiased std of each completion's group, broadcast back to completions (N,)."""
    out = torch.zeros_like(values_N)
    for g in group_ids_N.unique():
        sel = group_ids_N == g
        out[sel] = values_N[sel].std() if int(sel.sum()) > 1 else 0.0
    return out


def grpo_metrics(rollout: Rollout, rewards: dict[str, torch.Tensor], stats: dict[str, float], seconds: float,
                 ctx: RewardContext, lr: float, weights: dict[str, float] | None = None) -> dict[str, float]:
    """`train/reward` is the weighted total the method optimises; per-reward means are unweighted."""
    weights = weights or {}
    total_N = sum(v * weights.get(k, 1.0) for k, v in rewards.items()) if rewards else torch.zeros(len(rollout))
    std_N = group_std_N(total_N, rollout.group_ids_N)
    groups = rollout.group_ids_N.unique()
    zero = sum(float(std_N[rollout.group_ids_N == g][0] == 0) for g in groups) / max(1, len(groups))
    lengths = rollout.lengths_N.float()
    out = {
        "train/reward": float(total_N.mean()),
        "train/reward_std": float(std_N.mean()),
        "train/frac_reward_zero_std": zero,
        "train/completions/mean_length": float(lengths.mean()),
        "train/completions/clipped_ratio": float(rollout.clipped_N.float().mean()),
        "train/lr": lr,
        "perf/completions_per_s": len(rollout) / max(seconds, 1e-9),
        "perf/tokens_per_s": float(lengths.sum()) / max(seconds, 1e-9),
        "perf/generate_s": rollout.seconds,
        "perf/step_s": seconds,
    }
    out.update({f"train/rewards/{k}/mean": float(v.mean()) for k, v in rewards.items()})
    out.update({f"train/rewards/{k}/std": float(v.std()) if len(v) > 1 else 0.0 for k, v in rewards.items()})
    names = {"loss": "train/loss", "kl": "train/kl", "entropy": "train/entropy", "grad_norm": "train/grad_norm",
             "clip_low": "train/clip_ratio/low_mean", "clip_high": "train/clip_ratio/high_mean"}
    out.update({tag: stats[k] for k, tag in names.items() if k in stats})
    # a reward may report extra numbers (e.g. its own generation cost) under ctx.extras["metrics"]
    out.update({k: float(v) for k, v in ctx.extras.get("metrics", {}).items()})
    return out
