"""Masked next-token cross entropy for supervised fine-tuning (e.g. cold-start SFT)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


class SFTOut(NamedTuple):
    """SFT loss and its metrics (all but `loss` detached)."""

    loss: Tensor
    """Token-mean cross entropy over positions with mask == 1."""
    num_tokens: Tensor
    """Number of positions with mask == 1 (int64)."""
    accuracy: Tensor
    """Fraction of those positions where argmax(logits) == label."""


def masked_ce_loss(logits_BTV: Tensor, labels_BT: Tensor, mask_BT: Tensor) -> SFTOut:
    """Token-mean cross entropy −log p(label) over the positions with mask == 1.

    Paper: maximum-likelihood fine-tuning as in https://arxiv.org/abs/2203.02155 §3.5 (SFT).

    Logits and labels must already be aligned: logits_BTV[:, t] predicts labels_BT[:, t], so the caller
    drops the last logit and the first label (the usual shift). Labels at masked positions are ignored,
    whatever their value (e.g. −100). The mean is over this batch's tokens only; under gradient
    accumulation each micro-batch gets equal weight.
    """
    assert logits_BTV.shape[:-1] == labels_BT.shape == mask_BT.shape, (
        "logits, labels and mask differ in (B, T)"
    )
    dtype = torch.promote_types(logits_BTV.dtype, torch.float32)
    valid_BT = mask_BT.bool()  # (B, T)
    safe_labels_BT = torch.where(valid_BT, labels_BT, torch.zeros_like(labels_BT))  # (B, T) in-range ids
    ce_BT = F.cross_entropy(
        logits_BTV.to(dtype).transpose(1, 2), safe_labels_BT, reduction="none"
    )  # (B, T); cross_entropy wants the class dim second
    mask = valid_BT.to(dtype)  # (B, T)
    num_tokens = valid_BT.sum()  # ()
    loss = (ce_BT * mask).sum() / num_tokens.clamp(min=1)  # ()
    correct_BT = (logits_BTV.argmax(-1) == labels_BT) & valid_BT  # (B, T)
    return SFTOut(
        loss=loss,
        num_tokens=num_tokens.detach(),
        accuracy=(correct_BT.sum() / num_tokens.clamp(min=1)).to(dtype).detach(),
    )
