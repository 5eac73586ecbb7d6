"""Hand-computed checks of the Bradley-Terry and DPO/IPO losses (visionrl.core.losses.preference)."""

import math

import pytest
import torch
from visionrl.core.losses import DPO_LOSSES, bradley_terry_loss, dpo_loss, length_normalize


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-6
) -> None:
    """Shape, dtype and value check (torch.testing.assert_close costs seconds on its first call)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"{actual} != {expected}"


def softplus(x: float) -> float:
    """−log σ(−x) = log(1 + eˣ)."""
    return math.log1p(math.exp(x))


R_C = torch.tensor([2.0, 0.0], dtype=torch.float64)
R_R = torch.tensor([0.0, 1.0], dtype=torch.float64)


def test_bt_plain():
    """r_c − r_r = [2, −1]: loss = mean(−log σ(2), −log σ(−1)) = (log(1+e⁻²) + log(1+e))/2
    ≈ (0.126928 + 1.313262)/2 = 0.720095. accuracy = 1/2, margin = mean([2, −1]) = 0.5.
    """
    out = bradley_terry_loss(R_C, R_R)
    assert out.loss.item() == pytest.approx((softplus(-2.0) + softplus(1.0)) / 2)
    assert out.loss.item() == pytest.approx(0.720095, abs=1e-6)
    assert out.accuracy.item() == 0.5
    assert out.margin.item() == 0.5


def test_bt_margin_and_centering():
    """margin m = [1, 0]: r_c − r_r − m = [1, −1] -> (log(1+e⁻¹) + log(1+e))/2 ≈ 0.813262.
    Centering λ = 0.01: (r_c + r_r)² = [4, 1], mean 2.5 -> +0.025, total ≈ 0.838262.
    The reported margin is still the learned one, mean(r_c − r_r) = 0.5.
    Gradient of the centering term alone w.r.t. r_c: λ·2·(r_c + r_r)/B = 0.01·[4, 2]/2 = [0.02, 0.01].
    """
    margin = torch.tensor([1.0, 0.0], dtype=torch.float64)
    out = bradley_terry_loss(R_C, R_R, margin_B=margin, center_coef=0.01)
    assert out.loss.item() == pytest.approx((softplus(-1.0) + softplus(1.0)) / 2 + 0.025)
    assert out.margin.item() == 0.5

    r_c = R_C.clone().requires_grad_()
    with_center = bradley_terry_loss(r_c, R_R, center_coef=0.01).loss
    without = bradley_terry_loss(r_c, R_R).loss
    (grad_with,) = torch.autograd.grad(with_center, r_c)
    (grad_without,) = torch.autograd.grad(without, r_c)
    assert_close(grad_with - grad_without, torch.tensor([0.02, 0.01], dtype=torch.float64))


def test_length_normalize():
    """sums [−6, −2], lengths [3, 4]: "mean" -> [−2, −0.5]; "log" (BaseReward) -> [−6/ln 4, −2/ln 5]."""
    sums = torch.tensor([-6.0, -2.0])
    lengths = torch.tensor([3, 4])
    assert_close(length_normalize(sums, lengths), torch.tensor([-2.0, -0.5]))
    assert_close(
        length_normalize(sums, lengths, kind="log"), torch.tensor([-6 / math.log(4), -2 / math.log(5)])
    )


# DPO pairs: h = (π_c − ref_c) − (π_r − ref_r) = [(−1+2) − (−3+2), (−2+2) − (−1+2)] = [2, −1].
POL_C = torch.tensor([-1.0, -2.0], dtype=torch.float64)
POL_R = torch.tensor([-3.0, -1.0], dtype=torch.float64)
REF_C = torch.tensor([-2.0, -2.0], dtype=torch.float64)
REF_R = torch.tensor([-2.0, -2.0], dtype=torch.float64)


def test_dpo_sigmoid_and_metrics():
    """β = 0.1, βh = [0.2, −0.1]: loss = mean(log(1+e^−0.2), log(1+e^0.1)) ≈ (0.598139 + 0.744397)/2.

    Implicit rewards: chosen β·[1, 0] = [0.1, 0] (mean 0.05), rejected β·[−1, 1] = [−0.1, 0.1] (mean 0);
    margin = mean([0.2, −0.1]) = 0.05; accuracy = [0.1 > −0.1, 0 > 0.1] = 1/2.
    """
    out = dpo_loss(POL_C, POL_R, REF_C, REF_R, beta=0.1)
    assert out.loss.item() == pytest.approx((softplus(-0.2) + softplus(0.1)) / 2)
    assert out.loss.item() == pytest.approx(0.671268, abs=1e-6)
    assert out.chosen_reward.item() == pytest.approx(0.05)
    assert out.rejected_reward.item() == pytest.approx(0.0)
    assert out.reward_margin.item() == pytest.approx(0.05)
    assert out.reward_accuracy.item() == 0.5


def test_dpo_label_smoothing():
    """ε = 0.1: per pair (1−ε)·log(1+e^{−βh}) + ε·log(1+e^{βh}).
    pair 0: 0.9·softplus(−0.2) + 0.1·softplus(0.2); pair 1: 0.9·softplus(0.1) + 0.1·softplus(−0.1).
    """
    out = dpo_loss(POL_C, POL_R, REF_C, REF_R, beta=0.1, label_smoothing=0.1)
    pair0 = 0.9 * softplus(-0.2) + 0.1 * softplus(0.2)
    pair1 = 0.9 * softplus(0.1) + 0.1 * softplus(-0.1)
    assert out.loss.item() == pytest.approx((pair0 + pair1) / 2)


def test_ipo():
    """IPO with β = 0.1: (h − 1/(2β))² = ([2, −1] − 5)² = [9, 36], mean 22.5."""
    out = dpo_loss(POL_C, POL_R, REF_C, REF_R, beta=0.1, loss_type="ipo")
    assert out.loss.item() == pytest.approx(22.5)
    with pytest.raises(AssertionError, match="label smoothing"):
        dpo_loss(POL_C, POL_R, REF_C, REF_R, loss_type="ipo", label_smoothing=0.1)


def test_dpo_gradient_skips_reference():
    """Reference log-probs are constants: only the policy inputs get gradients."""
    pol_c = POL_C.clone().requires_grad_()
    ref_c = REF_C.clone().requires_grad_()
    dpo_loss(pol_c, POL_R, ref_c, REF_R).loss.backward()
    assert pol_c.grad is not None and ref_c.grad is None
    assert set(DPO_LOSSES) == {"sigmoid", "ipo"}
