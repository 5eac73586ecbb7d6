"""Pairwise preference losses: Bradley-Terry reward-model loss and DPO/IPO.

Where this pins down the sources:

1. BT loss = mean(−log σ(r_c − r_r − m)) + λ·mean((r_c + r_r)²): the margin m is Llama 2's
   (arXiv:2307.09288 Eq. 2) and the centering term is the one of Eisenstein et al. (arXiv:2312.09244),
   TRL's `center_rewards_coefficient` and BaseReward's "zero-coefficient" regulariser
   (arXiv:2509.16127 Algorithm 1: L_zero = λ·mean((r_w + r_l)²)). BaseReward's final recipe uses neither
   (Eq. 1 only), hence the defaults margin = None and center_coef = 0.
2. `length_normalize` offers both normalisations in use: "mean" (sum of log-probs / length, what TRL feeds
   to IPO) and "log" (r / log(len + 1), BaseReward Algorithm 1).
3. DPO follows TRL: h = (π_c − ref_c) − (π_r − ref_r); "sigmoid" is conservative DPO with label smoothing
   ε; "ipo" is (h − 1/(2β))². TRL's IPO averages log-probs over tokens before forming h; this function
   takes whatever log-probs it is given, so pass `length_normalize(sum_logps, lengths)` for TRL parity.
   IPO has no label smoothing; a non-zero value is rejected rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class BTOut(NamedTuple):
    """Bradley-Terry loss and its metrics (all but `loss` detached)."""

    loss: Tensor
    accuracy: Tensor
    """Fraction of pairs with r_chosen > r_rejected (strict)."""
    margin: Tensor
    """Mean of r_chosen − r_rejected (the learned margin, not the target margin)."""


def bradley_terry_loss(
    r_chosen_B: Tensor,
    r_rejected_B: Tensor,
    *,
    margin_B: Tensor | None = None,
    center_coef: float = 0.0,
) -> BTOut:
    """Pairwise reward-model loss −log σ(r_c − r_r − m), plus an optional centering penalty.

    Papers: https://arxiv.org/abs/2203.02155 (InstructGPT Eq. 1), https://arxiv.org/abs/2307.09288
    (Llama 2 margin), https://arxiv.org/abs/2312.09244 (centering), https://arxiv.org/abs/2509.16127
    (BaseReward Eq. 1 and Algorithm 1).

    Args:
        r_chosen_B, r_rejected_B: scalar rewards of the preferred and the dispreferred response.
        margin_B: per-pair target margin m (e.g. from preference strength); None means 0.
        center_coef: λ of λ·mean((r_c + r_r)²), which pulls rewards towards zero mean.
    """
    assert r_chosen_B.shape == r_rejected_B.shape, "chosen and rejected rewards differ in shape"
    diff_B = r_chosen_B - r_rejected_B  # (B,)
    target_B = diff_B if margin_B is None else diff_B - margin_B  # (B,)
    loss = -F.logsigmoid(target_B).mean()  # ()
    if center_coef != 0.0:
        loss = loss + center_coef * (r_chosen_B + r_rejected_B).square().mean()  # ()
    return BTOut(
        loss=loss,
        accuracy=(diff_B > 0).float().mean().detach(),
        margin=diff_B.mean().detach(),
    )


def length_normalize(
    sum_logps_B: Tensor, lengths_B: Tensor, *, kind: Literal["mean", "log"] = "mean"
) -> Tensor:
    """Length-normalised sequence scores.

    "mean": sum_logps / length, the average token log-prob (TRL's IPO input).
    "log": score / log(length + 1), BaseReward's length normalisation (arXiv:2509.16127 Algorithm 1).
    Lengths below 1 are treated as 1 so that empty sequences give finite scores.
    """
    lengths = lengths_B.to(sum_logps_B.dtype).clamp(min=1)  # (B,)
    if kind == "mean":
        return sum_logps_B / lengths  # (B,)
    assert kind == "log", f"unknown length normalisation {kind!r}; choose 'mean' or 'log'"
    return sum_logps_B / torch.log(lengths + 1.0)  # (B,)


class DPOOut(NamedTuple):
    """DPO loss and TRL's reward metrics (all but `loss` detached)."""

    loss: Tensor
    reward_accuracy: Tensor
    """Fraction of pairs with chosen implicit reward > rejected implicit reward."""
    reward_margin: Tensor
    """Mean of chosen − rejected implicit reward."""
    chosen_reward: Tensor
    """Mean of β·(π_c − ref_c)."""
    rejected_reward: Tensor
    """Mean of β·(π_r − ref_r)."""


def _dpo_sigmoid(h_B: Tensor, beta: float, label_smoothing: float) -> Tensor:
    """DPO Eq. 7 (arXiv:2305.18290); ε > 0 is conservative DPO (cDPO, https://ericmitchell.ai/cdpo.pdf)."""
    return (
        -F.logsigmoid(beta * h_B) * (1.0 - label_smoothing) - F.logsigmoid(-beta * h_B) * label_smoothing
    )  # (B,)


def _dpo_ipo(h_B: Tensor, beta: float, label_smoothing: float) -> Tensor:
    """IPO Eq. 17 (arXiv:2310.12036) with τ = β: regress h onto 1/(2β)."""
    assert label_smoothing == 0.0, "IPO has no label smoothing; set label_smoothing=0"
    return (h_B - 1.0 / (2.0 * beta)).square()  # (B,)


DPO_LOSSES: dict[str, Callable[[Tensor, float, float], Tensor]] = {
    "sigmoid": _dpo_sigmoid,
    "ipo": _dpo_ipo,
}


def dpo_loss(
    pol_c_B: Tensor,
    pol_r_B: Tensor,
    ref_c_B: Tensor,
    ref_r_B: Tensor,
    *,
    beta: float = 0.1,
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid",
    label_smoothing: float = 0.0,
) -> DPOOut:
    """Direct preference optimisation on sequence log-probs of chosen (c) and rejected (r) responses.

    Papers: https://arxiv.org/abs/2305.18290 (DPO), https://arxiv.org/abs/2310.12036 (IPO).

    Args:
        pol_c_B, pol_r_B: policy log-probs (summed over tokens; averaged for TRL-style IPO).
        ref_c_B, ref_r_B: reference log-probs of the same responses (treated as constant).
        beta: β, the KL strength (τ in IPO).
        loss_type: key of `DPO_LOSSES`.
        label_smoothing: ε, the assumed probability that a label is flipped (sigmoid only).
    """
    assert loss_type in DPO_LOSSES, f"unknown DPO loss {loss_type!r}; choose from {sorted(DPO_LOSSES)}"
    assert beta > 0.0, f"beta must be > 0, got {beta}"
    chosen_logratio_B = pol_c_B - ref_c_B.detach()  # (B,)
    rejected_logratio_B = pol_r_B - ref_r_B.detach()  # (B,)
    h_B = chosen_logratio_B - rejected_logratio_B  # (B,)
    loss = DPO_LOSSES[loss_type](h_B, beta, label_smoothing).mean()  # ()
    chosen_reward_B = beta * chosen_logratio_B.detach()  # (B,)
    rejected_reward_B = beta * rejected_logratio_B.detach()  # (B,)
    return DPOOut(
        loss=loss,
        reward_accuracy=(chosen_reward_B > rejected_reward_B).float().mean(),
        reward_margin=(chosen_reward_B - rejected_reward_B).mean(),
        chosen_reward=chosen_reward_B.mean(),
        rejected_reward=rejected_reward_B.mean(),
    )
