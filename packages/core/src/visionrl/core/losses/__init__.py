"""Pure tensor losses: GRPO advantages, PPO-clip policy loss, KL estimators, preference and SFT losses.

Each variant is a function plus an entry in a registry keyed by its config string
(`ADV_SCALES`, `AGGREGATIONS`, `KL_ESTIMATORS`, `DPO_LOSSES`); each loss returns a NamedTuple holding the
loss and the detached statistics that metrics need.
"""

from visionrl.core.losses.advantages import ADV_SCALES, AdvScale, group_advantages, multi_channel_advantages
from visionrl.core.losses.kl import KL_ESTIMATORS, KLKind, kl_penalty
from visionrl.core.losses.policy import (
    AGGREGATIONS,
    AggNorm,
    LossAgg,
    PolicyLossOut,
    entropy_from_logits,
    make_norm,
    policy_loss,
    selective_log_softmax,
)
from visionrl.core.losses.preference import (
    DPO_LOSSES,
    BTOut,
    DPOOut,
    bradley_terry_loss,
    dpo_loss,
    length_normalize,
)
from visionrl.core.losses.sft import SFTOut, masked_ce_loss

__all__ = [
    "ADV_SCALES",
    "AGGREGATIONS",
    "DPO_LOSSES",
    "KL_ESTIMATORS",
    "AdvScale",
    "AggNorm",
    "BTOut",
    "DPOOut",
    "KLKind",
    "LossAgg",
    "PolicyLossOut",
    "SFTOut",
    "bradley_terry_loss",
    "dpo_loss",
    "entropy_from_logits",
    "group_advantages",
    "kl_penalty",
    "length_normalize",
    "make_norm",
    "masked_ce_loss",
    "multi_channel_advantages",
    "policy_loss",
    "selective_log_softmax",
]
