"""Hand-computed checks of the per-token KL estimators (visionrl.core.losses.kl)."""

import math

import pytest
import torch
from visionrl.core.losses import KL_ESTIMATORS, kl_penalty


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-6
) -> None:
    """Shape, dtype and value check (torch.testing.assert_close costs seconds on its first call)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"{actual} != {expected}"


# One sequence of 3 tokens; d = lp − ref = [0.5, −1.0, 0.0], x = ref − lp = −d = [−0.5, 1.0, 0.0].
LP = torch.tensor([[-1.0, -2.0, -0.5]], dtype=torch.float64)
REF = torch.tensor([[-1.5, -1.0, -0.5]], dtype=torch.float64)


def _k3(x: float) -> float:
    return math.exp(x) - x - 1


def test_k1_by_hand():
    """k1 = lp − ref = [0.5, −1.0, 0.0]: may be negative."""
    assert_close(kl_penalty(LP, REF, "k1"), torch.tensor([[0.5, -1.0, 0.0]], dtype=torch.float64))


def test_k2_by_hand():
    """k2 = ½ d² = [0.125, 0.5, 0.0]."""
    assert_close(kl_penalty(LP, REF, "k2"), torch.tensor([[0.125, 0.5, 0.0]], dtype=torch.float64))


@pytest.mark.parametrize("kind", ["k3", "low_var_kl"])
def test_k3_by_hand(kind):
    """k3 = eˣ − x − 1: x = −0.5 -> e^−0.5 − 0.5 ≈ 0.106531; x = 1 -> e − 2 ≈ 0.718282; x = 0 -> 0.

    All are below 10, so low_var_kl equals k3 here.
    """
    expected = torch.tensor([[_k3(-0.5), _k3(1.0), 0.0]], dtype=torch.float64)
    assert_close(kl_penalty(LP, REF, kind), expected, rtol=0, atol=1e-12)


def test_low_var_kl_clamp():
    """Large log-ratios: x = ref − lp.

    x = 5:    k3 = e⁵ − 6 ≈ 142.41 -> low_var_kl = 10 (upper clamp).
    x = −12:  k3 = e^−12 + 11 ≈ 11.000006 -> 10.
    x = 2:    k3 = e² − 3 ≈ 4.389056 -> unchanged.
    x = 100:  raw k3 overflows float32 to inf; low_var_kl clamps x to 20 first, then the estimate to 10,
              and its gradient stays finite (0, since the clamp binds).
    """
    lp = torch.tensor([[0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[5.0, -12.0, 2.0, 100.0]])
    low = kl_penalty(lp, ref, "low_var_kl")
    assert_close(low, torch.tensor([[10.0, 10.0, _k3(2.0), 10.0]]))
    raw = kl_penalty(lp.detach(), ref, "k3")
    assert raw[0, 0] == pytest.approx(_k3(5.0), rel=1e-6)
    assert torch.isinf(raw[0, 3])
    low.sum().backward()
    # d/dlp of k3 = 1 − eˣ where unclamped (x = 2: 1 − e²); 0 where the ±10 clamp binds.
    assert_close(lp.grad, torch.tensor([[0.0, 0.0, 1.0 - math.exp(2.0), 0.0]]))


def test_low_precision_is_upcast():
    """bf16 inputs come back as float32 (EasyR1 upcasts before the exp)."""
    out = kl_penalty(LP.bfloat16(), REF.bfloat16(), "low_var_kl")
    assert out.dtype == torch.float32


def test_registry_and_unknown_kind():
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3", "low_var_kl"}
    with pytest.raises(AssertionError, match="unknown KL estimator"):
        kl_penalty(LP, REF, "full")  # type: ignore[arg-type]
