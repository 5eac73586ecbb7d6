"""Per-token KL estimators between the policy and the frozen reference.

Schulman, "Approximating KL divergence" (http://joschu.net/blog/kl-approx.html): with samples from the
policy and x = log π_ref − log π_θ, the estimators of KL(π_θ ‖ π_ref) are k1 = −x, k2 = x²/2 and
k3 = eˣ − x − 1. GRPO (arXiv:2402.03300 Eq. 4) uses k3.

Where this pins down the sources:

1. Names follow verl/EasyR1: `k1` = EasyR1 "kl", `k2` = EasyR1 "mse", `k3` the raw k3 (TRL's fixed
   estimator) and `low_var_kl` = EasyR1's clamped k3.
2. `low_var_kl` reproduces EasyR1 `compute_kl` exactly: the log-ratio x is first clamped to [−20, 20]
   (so eˣ cannot overflow and give inf/NaN gradients), then the result is clamped to [−10, 10]. k3 ≥ 0,
   so only the upper bound ever binds; beyond it the token contributes no gradient.
3. Inputs in half precision are upcast to float32 first, as EasyR1 does; float64 stays float64.
4. eˣ − 1 is computed with `expm1`, which equals EasyR1's `exp(x) - 1` up to rounding and keeps
   precision when x is near 0 (the common case: policy close to the reference).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

KLKind = Literal["k1", "k2", "k3", "low_var_kl"]

# EasyR1 `compute_kl` ("low_var_kl"): bounds on the log-ratio before exp and on the estimate after it.
LOG_RATIO_CLAMP = 20.0
LOW_VAR_KL_CLAMP = 10.0


def _k1(logps_BT: Tensor, ref_logps_BT: Tensor) -> Tensor:
    """k1 = log π_θ − log π_ref: unbiased, high variance, can be negative."""
    return logps_BT - ref_logps_BT  # (B, T)


def _k2(logps_BT: Tensor, ref_logps_BT: Tensor) -> Tensor:
    """k2 = ½ (log π_θ − log π_ref)²: biased, low variance, ≥ 0."""
    return 0.5 * (logps_BT - ref_logps_BT).square()  # (B, T)


def _k3(logps_BT: Tensor, ref_logps_BT: Tensor) -> Tensor:
    """k3 = exp(ref − lp) − (ref − lp) − 1: unbiased and ≥ 0 (GRPO Eq. 4; TRL's estimator)."""
    x_BT = ref_logps_BT - logps_BT  # (B, T)
    return torch.expm1(x_BT) - x_BT  # (B, T) expm1 keeps precision for small x


def _low_var_kl(logps_BT: Tensor, ref_logps_BT: Tensor) -> Tensor:
    """EasyR1's k3: log-ratio clamped to ±20 before exp, estimate clamped to ±10 after."""
    x_BT = (ref_logps_BT - logps_BT).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)  # (B, T)
    return (torch.expm1(x_BT) - x_BT).clamp(-LOW_VAR_KL_CLAMP, LOW_VAR_KL_CLAMP)  # (B, T)


KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "k1": _k1,
    "k2": _k2,
    "k3": _k3,
    "low_var_kl": _low_var_kl,
}


def kl_penalty(logps_BT: Tensor, ref_logps_BT: Tensor, kind: KLKind = "low_var_kl") -> Tensor:
    """Per-token KL(π_θ ‖ π_ref) estimate; padding is not masked here (the caller aggregates).

    Paper: http://joschu.net/blog/kl-approx.html (k1/k2/k3); https://arxiv.org/abs/2402.03300 Eq. 4.

    Args:
        logps_BT: log π_θ of the sampled tokens (with grad).
        ref_logps_BT: log π_ref of the same tokens (no grad needed).
        kind: one of `KL_ESTIMATORS`.

    Returns:
        kl_BT, float32 or float64.
    """
    assert kind in KL_ESTIMATORS, f"unknown KL estimator {kind!r}; choose from {sorted(KL_ESTIMATORS)}"
    assert logps_BT.shape == ref_logps_BT.shape, (
        f"logps {tuple(logps_BT.shape)} and ref_logps {tuple(ref_logps_BT.shape)} differ in shape"
    )
    dtype = torch.promote_types(logps_BT.dtype, torch.float32)
    return KL_ESTIMATORS[kind](logps_BT.to(dtype), ref_logps_BT.to(dtype))  # (B, T)
