"""PPO-clip policy loss for GRPO, its loss aggregations, and the log-prob/entropy helpers.

PPO, arXiv:1707.06347 Eq. 7; GRPO, arXiv:2402.03300 Eq. 3; clip-higher, DAPO arXiv:2503.14476 §3.1;
dual clip, arXiv:1912.09729. Per token, with r = exp(lp − lp_old):
L = max(−A·r, −A·clip(r, 1 − ε_low, 1 + ε_high)), and for A < 0 with dual clip c: L = min(L, −A·c).

Where this departs from, or pins down, the papers:

1. The clipped ratio is computed in log space, exp(clamp(lp − lp_old, log(1 − ε_low), log(1 + ε_high))),
   as EasyR1 does. It equals clamp(r, 1 − ε_low, 1 + ε_high) up to rounding, with the same zero gradient
   outside the range.
2. The log-ratio is clamped to ±20 before exp (EasyR1), so a stale or padded token cannot overflow.
3. KL is a loss term, not a reward penalty: β·kl is added token-wise before aggregation, so it is
   normalised exactly like the surrogate. For "bnpo" this is EasyR1's pg + β·masked_mean(kl); for the
   other modes it is TRL's `per_token_loss + beta * per_token_kl`.
4. Clip fractions follow TRL's `clip_ratio/low_mean` and `clip_ratio/high_mean`: low = (A < 0 and
   r < 1 − ε_low), high = (A > 0 and r > 1 + ε_high), as fractions of valid tokens of this micro-batch.
   EasyR1 names differ: its `pg_clipfrac_higher` counts both sides where the clipped branch wins, and its
   `pg_clipfrac_lower` is our `clip_dual_frac` (A < 0 and the dual bound binds).
5. Aggregation ("loss_type" in TRL) is a registry of normalisers; `AggNorm` carries the counts of the
   whole accumulated batch (one mini-batch: all micro-batches of one optimizer step on this rank), so
   that each micro-batch loss can be backpropagated on its own:
   - "grpo": per-sequence token mean, summed / global_sequences (GRPO Eq. 3; TRL's "grpo"). Every
     sequence weighs 1/n of its mini-batch however the mini-batch is split, even unevenly (TRL's
     `mean() / gradient_accumulation_steps` is the same thing for its always-equal micro-batches).
   - "bnpo": token mean over the micro-batch, / num_micro_batches (TRL's "bnpo"). This is EasyR1 as
     Vision-SR1 forked it (`masked_mean(...) / gradient_accumulation` in `update_policy`), so the
     selfreward `paper-*` presets use it; current EasyR1 is "dapo". Not invariant: micro-batches with
     fewer tokens weigh each token more.
   - "dr_grpo": token sum / (global_sequences · max_completion_len) (Dr. GRPO, arXiv:2503.20783).
   - "dapo": token sum / global_tokens (DAPO §3.3, token-level loss). TRL's default, and current
     EasyR1's (`loss_avg_mode="token"`: one token mean over the mini-batch of all ranks; under DDP the
     caller passes all ranks' tokens / W, see `make_norm`).
   "grpo", "dr_grpo" and "dapo" give the same loss and gradient for any micro-batch split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from visionrl.core.losses.kl import KLKind, kl_penalty

LossAgg = Literal["grpo", "bnpo", "dr_grpo", "dapo"]

# EasyR1 `compute_policy_loss`: bound on the log importance ratio before exp.
LOG_RATIO_CLAMP = 20.0


class AggNorm(NamedTuple):
    """Counts of the whole accumulated batch (all micro-batches of one optimizer step on this rank)."""

    num_micro_batches: int
    global_sequences: int
    global_tokens: float
    max_completion_len: int


def make_norm(mask_BT_full: Tensor, num_micro_batches: int, max_completion_len: int) -> AggNorm:
    """Build `AggNorm` from the completion mask of the full accumulated batch.

    Under DDP, whose gradient all-reduce averages over W ranks, pass
    `norm._replace(global_tokens=all_reduced_tokens / W)` to match TRL's "dapo" across ranks.
    """
    assert num_micro_batches >= 1, f"num_micro_batches must be >= 1, got {num_micro_batches}"
    assert max_completion_len >= 1, f"max_completion_len must be >= 1, got {max_completion_len}"
    return AggNorm(
        num_micro_batches=num_micro_batches,
        global_sequences=int(mask_BT_full.shape[0]),
        global_tokens=max(float(mask_BT_full.sum()), 1.0),  # an all-padding batch gives loss 0, not NaN
        max_completion_len=max_completion_len,
    )


def _agg_grpo(x_BT: Tensor, mask_BT: Tensor, norm: AggNorm) -> Tensor:
    """GRPO Eq. 3: 1/n Σ_i 1/|o_i| Σ_t over the n sequences of the mini-batch, whatever the split."""
    per_seq_B = (x_BT * mask_BT).sum(-1) / mask_BT.sum(-1).clamp(min=1)  # (B,)
    return per_seq_B.sum() / norm.global_sequences  # ()


def _agg_bnpo(x_BT: Tensor, mask_BT: Tensor, norm: AggNorm) -> Tensor:
    """Token mean of the micro-batch (Vision-SR1's EasyR1 `masked_mean`), averaged over micro-batches."""
    return (x_BT * mask_BT).sum() / mask_BT.sum().clamp(min=1) / norm.num_micro_batches  # ()


def _agg_dr_grpo(x_BT: Tensor, mask_BT: Tensor, norm: AggNorm) -> Tensor:
    """Dr. GRPO: a constant normaliser, so no length bias (arXiv:2503.20783)."""
    return (x_BT * mask_BT).sum() / (norm.global_sequences * norm.max_completion_len)  # ()


def _agg_dapo(x_BT: Tensor, mask_BT: Tensor, norm: AggNorm) -> Tensor:
    """DAPO §3.3: token-level mean over the whole accumulated batch."""
    return (x_BT * mask_BT).sum() / norm.global_tokens  # ()


AGGREGATIONS: dict[str, Callable[[Tensor, Tensor, AggNorm], Tensor]] = {
    "grpo": _agg_grpo,
    "bnpo": _agg_bnpo,
    "dr_grpo": _agg_dr_grpo,
    "dapo": _agg_dapo,
}


class PolicyLossOut(NamedTuple):
    """The loss to backpropagate and the statistics metrics need (all but `loss` detached)."""

    loss: Tensor
    """Scalar, normalised for this micro-batch: Σ over micro-batches of loss.backward() is the step."""
    pg_loss: Tensor
    """The surrogate alone, aggregated like `loss` (so loss = pg_loss + β·agg(kl))."""
    kl: Tensor
    """Masked token mean of the per-token KL on this micro-batch; 0 without ref log-probs."""
    clip_low_frac: Tensor
    """Fraction of valid tokens with A < 0 and r < 1 − ε_low."""
    clip_high_frac: Tensor
    """Fraction of valid tokens with A > 0 and r > 1 + ε_high."""
    clip_dual_frac: Tensor
    """Fraction of valid tokens with A < 0 where the dual-clip bound −A·c binds; 0 without dual clip."""
    ratio_mean: Tensor
    """Masked token mean of r = exp(lp − lp_old)."""


def _masked_mean(x_BT: Tensor, mask_BT: Tensor) -> Tensor:
    return ((x_BT * mask_BT).sum() / mask_BT.sum().clamp(min=1)).detach()  # ()


def policy_loss(
    logps_BT: Tensor,
    old_logps_BT: Tensor,
    adv_B_or_BT: Tensor,
    mask_BT: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    clip_dual: float | None = None,
    agg: LossAgg = "grpo",
    ref_logps_BT: Tensor | None = None,
    beta: float = 0.0,
    kl_kind: KLKind = "low_var_kl",
    norm: AggNorm,
) -> PolicyLossOut:
    """PPO-clip surrogate with clip-higher, optional dual clip and optional KL loss, aggregated by `agg`.

    Papers: https://arxiv.org/abs/1707.06347 (PPO), https://arxiv.org/abs/2402.03300 (GRPO),
    https://arxiv.org/abs/2503.14476 (DAPO clip-higher, token-level loss),
    https://arxiv.org/abs/1912.09729 (dual clip), https://arxiv.org/abs/2503.20783 (Dr. GRPO).

    Args:
        logps_BT: log π_θ of the sampled tokens (with grad).
        old_logps_BT: log π_old of the same tokens (rollout-time policy; treated as constant).
        adv_B_or_BT: advantages per sequence (broadcast over tokens) or per token (multi-channel).
        mask_BT: 1 for completion tokens to train on, 0 for padding.
        clip_low, clip_high: ε_low, ε_high of the clip range [1 − ε_low, 1 + ε_high].
        clip_dual: dual-clip constant c > 1 applied to A < 0 tokens (EasyR1: 3.0); None disables it.
        agg: key of `AGGREGATIONS`.
        ref_logps_BT: log π_ref; needed when beta > 0, and used for the `kl` statistic when given.
        beta: KL loss coefficient β.
        kl_kind: key of `KL_ESTIMATORS`.
        norm: counts of the accumulated batch, from `make_norm`.
    """
    assert agg in AGGREGATIONS, f"unknown loss aggregation {agg!r}; choose from {sorted(AGGREGATIONS)}"
    assert 0.0 <= clip_low < 1.0, f"clip_low must be in [0, 1), got {clip_low}"
    assert clip_high >= 0.0, f"clip_high must be >= 0, got {clip_high}"
    assert clip_dual is None or clip_dual > 1.0, f"clip_dual must be > 1, got {clip_dual}"
    assert beta == 0.0 or ref_logps_BT is not None, "beta > 0 needs ref_logps_BT"
    assert logps_BT.shape == old_logps_BT.shape == mask_BT.shape, "logps, old_logps and mask differ in shape"
    dtype = torch.promote_types(logps_BT.dtype, torch.float32)
    lp_BT = logps_BT.to(dtype)  # (B, T)
    mask = mask_BT.to(dtype)  # (B, T)
    adv = adv_B_or_BT.detach().to(dtype)  # (B,) or (B, T)
    adv_BT = (adv.unsqueeze(-1) if adv.dim() == 1 else adv).expand_as(lp_BT)  # (B, T)

    delta_BT = lp_BT - old_logps_BT.detach().to(dtype)  # (B, T) log r
    log_ratio_BT = delta_BT.clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T) no overflow in exp
    ratio_BT = log_ratio_BT.exp()  # (B, T)
    clipped_BT = log_ratio_BT.clamp(math.log1p(-clip_low), math.log1p(clip_high)).exp()  # (B, T)
    pg_BT = torch.maximum(-adv_BT * ratio_BT, -adv_BT * clipped_BT)  # (B, T) pessimistic bound
    neg_BT = adv_BT < 0  # (B, T)
    dual_active_BT = torch.zeros_like(neg_BT)  # (B, T)
    if clip_dual is not None:
        dual_bound_BT = -adv_BT * clip_dual  # (B, T) caps the loss of A < 0 tokens with huge r
        dual_active_BT = neg_BT & (pg_BT > dual_bound_BT)  # (B, T)
        pg_BT = torch.where(neg_BT, torch.minimum(pg_BT, dual_bound_BT), pg_BT)  # (B, T)

    kl_BT = None
    if ref_logps_BT is not None:
        kl_BT = kl_penalty(lp_BT, ref_logps_BT.detach(), kl_kind).to(dtype)  # (B, T)
    total_BT = pg_BT + beta * kl_BT if (kl_BT is not None and beta != 0.0) else pg_BT  # (B, T)

    aggregate = AGGREGATIONS[agg]
    low_BT = neg_BT & (ratio_BT < 1.0 - clip_low)  # (B, T) bool
    high_BT = (adv_BT > 0) & (ratio_BT > 1.0 + clip_high)  # (B, T) bool
    return PolicyLossOut(
        loss=aggregate(total_BT, mask, norm),
        pg_loss=aggregate(pg_BT.detach(), mask, norm),
        kl=_masked_mean(kl_BT, mask) if kl_BT is not None else lp_BT.new_zeros(()),
        clip_low_frac=_masked_mean(low_BT.to(dtype), mask),
        clip_high_frac=_masked_mean(high_BT.to(dtype), mask),
        clip_dual_frac=_masked_mean(dual_active_BT.to(dtype), mask),
        ratio_mean=_masked_mean(ratio_BT, mask),
    )


def selective_log_softmax(logits_BTV: Tensor, ids_BT: Tensor) -> Tensor:
    """log softmax(logits)[ids] per position, without materialising the (B, T, V) log-softmax.

    Computes logit[id] − logsumexp(logits) one sequence at a time in float32 (or float64), so peak extra
    memory is one (T, V) row rather than the whole batch. Logits and ids must already be aligned
    (logits at t predict ids at t).

    Returns:
        logps_BT in float32 (float64 for float64 logits).
    """
    assert logits_BTV.shape[:-1] == ids_BT.shape, "logits_BTV and ids_BT must agree on (B, T)"
    dtype = torch.promote_types(logits_BTV.dtype, torch.float32)
    rows = []
    for row_TV, ids_T in zip(logits_BTV, ids_BT, strict=True):
        row_TV = row_TV.to(dtype)  # (T, V)
        picked_T = row_TV.gather(-1, ids_T.unsqueeze(-1)).squeeze(-1)  # (T,)
        rows.append(picked_T - torch.logsumexp(row_TV, dim=-1))  # (T,)
    if not rows:
        return logits_BTV.new_zeros(ids_BT.shape, dtype=dtype)
    return torch.stack(rows)  # (B, T)


def entropy_from_logits(logits_BTV: Tensor, chunk_size: int = 128) -> Tensor:
    """Entropy H = −Σ_v p_v log p_v of the next-token distribution at every position.

    Uses log_softmax (itself logsumexp-based) in float32, `chunk_size` positions at a time to bound
    memory. −inf logits (a masked vocabulary) contribute 0, not NaN.

    Returns:
        entropy_BT in float32 (float64 for float64 logits).
    """
    *lead, vocab = logits_BTV.shape
    dtype = torch.promote_types(logits_BTV.dtype, torch.float32)
    flat_NV = logits_BTV.reshape(-1, vocab)  # (B·T, V)
    chunks = []
    for chunk_CV in flat_NV.split(chunk_size):
        logp_CV = F.log_softmax(chunk_CV.to(dtype), dim=-1)  # (C, V)
        # 0·log 0 = 0: clamp −inf to the most negative finite value so p·log p is 0, not NaN.
        logp_CV = logp_CV.clamp(min=torch.finfo(dtype).min)  # (C, V)
        chunks.append(-(logp_CV.exp() * logp_CV).sum(-1))  # (C,)
    if not chunks:
        return logits_BTV.new_zeros(lead, dtype=dtype)
    return torch.cat(chunks).reshape(lead)  # (B, T)
