"""Group-relative advantages (GRPO) for outcome rewards.

GRPO, arXiv:2402.03300 §4.1.2: A_i = (r_i − mean_g r) / std_g r, broadcast to every response token.

Where this departs from, or pins down, the paper:

1. std is the unbiased `torch.std` (n − 1) plus eps = 1e-6 in the denominator, as EasyR1
   `compute_grpo_outcome_advantage` does (TRL uses eps = 1e-4).
2. `scale` picks the denominator like TRL's `scale_rewards`: "group" (the paper), "batch" (std over the
   whole rollout batch; the mean stays per group) or "none" (Dr. GRPO, arXiv:2503.20783).
3. A group whose rewards are all equal, including a group of one, gets exactly A = 0. The plain formula
   would give (r − mean)/eps, which is 0 only up to float rounding of the group mean: three rewards of
   0.9 average to 0.9 − 6e-8 in float32, and the plain formula gives A ≈ 0.06.
4. Group ids may be any integers in any order; groups need not be contiguous or equally sized.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor

AdvScale = Literal["group", "batch", "none"]

# denominator_N = fn(rewards_N, centered_N, inverse_N, count_G, eps)
ScaleFn = Callable[[Tensor, Tensor, Tensor, Tensor, float], Tensor]


def _group_std(
    rewards_N: Tensor, centered_N: Tensor, inverse_N: Tensor, count_G: Tensor, eps: float
) -> Tensor:
    """Unbiased per-group std, gathered back to each sample, plus eps."""
    sq_G = torch.zeros_like(count_G).index_add_(0, inverse_N, centered_N.square())  # (G,)
    var_G = sq_G / (count_G - 1).clamp(min=1)  # (G,) n−1; size-1 groups are zeroed by the caller
    return var_G.sqrt()[inverse_N] + eps  # (N,)


def _batch_std(
    rewards_N: Tensor, centered_N: Tensor, inverse_N: Tensor, count_G: Tensor, eps: float
) -> Tensor:
    """Unbiased std of the raw rewards over the whole batch (TRL scale_rewards="batch"), plus eps."""
    std = rewards_N.std() if rewards_N.numel() > 1 else rewards_N.new_zeros(())  # () TRL: 0 for N = 1
    return (std + eps).expand_as(rewards_N)  # (N,)


def _no_std(rewards_N: Tensor, centered_N: Tensor, inverse_N: Tensor, count_G: Tensor, eps: float) -> Tensor:
    """Dr. GRPO: no division by a std (arXiv:2503.20783)."""
    return torch.ones_like(rewards_N)  # (N,)


ADV_SCALES: dict[str, ScaleFn] = {"group": _group_std, "batch": _batch_std, "none": _no_std}


def group_advantages(
    rewards_N: Tensor, group_ids_N: Tensor, scale: AdvScale = "group", eps: float = 1e-6
) -> Tensor:
    """GRPO advantages A = (r − mean_g) / (std + eps), one scalar per completion.

    Paper: https://arxiv.org/abs/2402.03300 (GRPO, §4.1.2); "none" is Dr. GRPO,
    https://arxiv.org/abs/2503.20783.

    Args:
        rewards_N: one scalar reward per completion.
        group_ids_N: integer prompt-group id per completion (any values, any order).
        scale: which std divides the centred reward: "group", "batch" or "none".
        eps: added to the std (EasyR1: 1e-6).

    Returns:
        adv_N, in the rewards' float dtype, without grad. Groups of one and groups with equal rewards
        get exactly 0.
    """
    assert rewards_N.dim() == 1, f"rewards_N must be 1-D, got shape {tuple(rewards_N.shape)}"
    assert group_ids_N.shape == rewards_N.shape, "group_ids_N must have one id per reward"
    assert scale in ADV_SCALES, f"unknown advantage scale {scale!r}; choose from {sorted(ADV_SCALES)}"
    r_N = rewards_N.detach()  # (N,)
    r_N = r_N if r_N.is_floating_point() else r_N.float()  # (N,)
    if r_N.numel() == 0:
        return r_N.clone()
    _, inverse_N = torch.unique(group_ids_N, return_inverse=True)  # (N,) dense group index 0..G-1
    num_groups = int(inverse_N.max()) + 1
    count_G = torch.zeros(num_groups, dtype=r_N.dtype, device=r_N.device)  # (G,)
    count_G.index_add_(0, inverse_N, torch.ones_like(r_N))  # (G,)
    sum_G = torch.zeros_like(count_G).index_add_(0, inverse_N, r_N)  # (G,)
    centered_N = r_N - (sum_G / count_G)[inverse_N]  # (N,) r − mean_g
    # A group is degenerate when max == min: equal rewards, or a single completion.
    max_G = torch.full_like(count_G, -torch.inf).scatter_reduce(0, inverse_N, r_N, "amax")  # (G,)
    min_G = torch.full_like(count_G, torch.inf).scatter_reduce(0, inverse_N, r_N, "amin")  # (G,)
    degenerate_N = (max_G == min_G)[inverse_N]  # (N,)
    denom_N = ADV_SCALES[scale](r_N, centered_N, inverse_N, count_G, eps)  # (N,)
    return torch.where(degenerate_N, torch.zeros_like(r_N), centered_N / denom_N)  # (N,)


def multi_channel_advantages(
    rewards_NK: Tensor,
    group_ids_N: Tensor,
    weights_K: Sequence[float],
    scale: AdvScale = "group",
    eps: float = 1e-6,
) -> Tensor:
    """Per-channel GRPO advantages, each z-scored on its own and then multiplied by its weight.

    Vision-SR1 v2, https://arxiv.org/abs/2508.19652 §2.3 (and its `compute_multi_advantage`, which uses
    weights [1, 1]); the same "normalize_then_sum" idea as GDPO in TRL. Callers either sum over K (one
    advantage per completion) or apply each channel to different tokens.

    Returns:
        adv_NK with adv_NK[:, k] = weights_K[k] · group_advantages(rewards_NK[:, k], ...).
    """
    assert rewards_NK.dim() == 2, f"rewards_NK must be 2-D (N, K), got shape {tuple(rewards_NK.shape)}"
    assert len(weights_K) == rewards_NK.shape[1], (
        f"got {len(weights_K)} weights for {rewards_NK.shape[1]} reward channels"
    )
    per_channel = [
        group_advantages(rewards_NK[:, k], group_ids_N, scale=scale, eps=eps)
        for k in range(rewards_NK.shape[1])
    ]
    adv_NK = torch.stack(per_channel, dim=1)  # (N, K)
    w_K = torch.tensor(list(weights_K), dtype=adv_NK.dtype, device=adv_NK.device)  # (K,)
    return adv_NK * w_K  # (N, K)
