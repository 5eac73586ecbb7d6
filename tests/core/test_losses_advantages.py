"""Hand-computed checks of GRPO advantages (visionrl.core.losses.advantages)."""

import math

import pytest
import torch
from visionrl.core.losses import ADV_SCALES, group_advantages, multi_channel_advantages


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-6, atol: float = 1e-6
) -> None:
    """Shape, dtype and value check (torch.testing.assert_close costs seconds on its first call)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert torch.allclose(actual, expected, rtol=rtol, atol=atol), f"{actual} != {expected}"


EPS = 1e-6

# Three groups with non-contiguous, unsorted ids:
#   id 7 -> positions 0, 2, 5, 6 with rewards [1, 0, 0, 1]
#   id 3 -> positions 1, 3       with rewards [2, 2]   (zero variance)
#   id 9 -> position 4           with reward  [5]      (group of one)
REWARDS = torch.tensor([1.0, 2.0, 0.0, 2.0, 5.0, 0.0, 1.0])
GROUP_IDS = torch.tensor([7, 3, 7, 3, 9, 7, 7])
SIGNS = torch.tensor([1.0, 0.0, -1.0, 0.0, 0.0, -1.0, 1.0])  # sign of r − mean_7 in group 7, else 0


def test_group_scale_by_hand():
    """Group 7: mean = 0.5, unbiased var = 4·0.25/3 = 1/3, std = √(1/3) ≈ 0.57735.

    So A = ±0.5 / (√(1/3) + 1e-6) ≈ ±0.86602 for group 7; groups 3 and 9 give exactly 0.
    """
    adv = group_advantages(REWARDS, GROUP_IDS, scale="group")
    expected = SIGNS * 0.5 / (math.sqrt(1 / 3) + EPS)
    assert_close(adv, expected, rtol=0, atol=1e-6)
    assert torch.equal(adv[[1, 3, 4]], torch.zeros(3))


def test_batch_scale_by_hand():
    """Mean stays per group; std is over all 7 rewards (TRL scale_rewards="batch").

    Batch mean = 11/7. Squared deviations ·49: 16, 9, 121, 9, 576, 121, 16 -> sum 868/49.
    Unbiased var = 868/(49·6) = 868/294, std ≈ 1.71825; A = ±0.5/(1.71825 + 1e-6) ≈ ±0.29099 in group 7.
    """
    adv = group_advantages(REWARDS, GROUP_IDS, scale="batch")
    expected = SIGNS * 0.5 / (math.sqrt(868 / 294) + EPS)
    assert_close(adv, expected, rtol=0, atol=1e-6)
    assert torch.equal(adv[[1, 3, 4]], torch.zeros(3))


def test_none_scale_is_centering_only():
    """Dr. GRPO: A = r − mean_g, i.e. ±0.5 in group 7 and 0 elsewhere, with no division."""
    adv = group_advantages(REWARDS, GROUP_IDS, scale="none")
    assert torch.equal(adv, SIGNS * 0.5)


# Equal rewards whose float group mean is not the reward itself, in float32 and in float64 (3 × 0.1
# happens to average back to exactly 0.1 in float32, so it cannot show the special case is needed).
UNEVEN_MEANS = {torch.float32: (0.9, 0.3), torch.float64: (0.1, 0.7)}


@pytest.mark.parametrize("dtype", list(UNEVEN_MEANS), ids=str)
@pytest.mark.parametrize("scale", sorted(ADV_SCALES))
def test_zero_variance_groups_are_exactly_zero(scale, dtype):
    """Groups {a ×3}, {b ×6} and {0.25}. In float, mean(a ×3) = a + δ with |δ| ≈ 6e-8 (float32) or
    1e-17 (float64), so the plain formula gives −δ/(std + eps) ≠ 0 (|A| ≈ 0.06 for "group" in float32,
    −δ alone for "none"); A must still be exactly 0 in every group."""
    a, b = UNEVEN_MEANS[dtype]
    rewards = torch.tensor([a, a, a, b, b, b, b, b, b, 0.25], dtype=dtype)
    ids = torch.tensor([4, 4, 4, 1, 1, 1, 1, 1, 1, 2])
    for value, n in ((a, 3), (b, 6)):  # the premise: the group mean is inexact
        assert torch.zeros(1, dtype=dtype).index_add_(0, torch.zeros(n, dtype=torch.long),
                                                      torch.full((n,), value, dtype=dtype)) / n != value
    adv = group_advantages(rewards, ids, scale=scale)
    assert torch.equal(adv, torch.zeros(10, dtype=dtype))


# One group [0, 0.002] (mean 0.001, unbiased std √2·1e-3) and one constant group [0.001, 0.001]. The std
# is as small as a few eps, so where eps sits shows at 1e-12 in float64 (atol 1e-6 hid it at std ≈ 0.6).
SMALL = torch.tensor([0.0, 0.002, 0.001, 0.001], dtype=torch.float64)
SMALL_IDS = torch.tensor([0, 0, 1, 1])


@pytest.mark.parametrize(("scale", "std"), [
    ("group", math.sqrt(2) * 1e-3),  # √((1e-6 + 1e-6)/1)
    ("batch", math.sqrt(2 / 3) * 1e-3),  # batch mean 0.001, √((1e-6 + 1e-6 + 0 + 0)/3)
], ids=["group", "batch"])
def test_eps_is_added_to_the_std_outside_the_square_root(scale, std):
    """A = ±1e-3 / (std + 1e-6) in group 0, 0 in group 1: ±0.706607 ("group"), ±1.223246 ("batch").

    The alternatives all miss by more than 1e-4: eps inside the root, ±1e-3/√(std² + 1e-6), gives
    ±0.57735 / ±0.774597; no eps gives ±0.707107 / ±1.224745; the biased std (÷n) ±0.999001 ("group").
    """
    adv = group_advantages(SMALL, SMALL_IDS, scale=scale)
    a = 1e-3 / (std + EPS)
    expected = torch.tensor([-a, a, 0.0, 0.0], dtype=torch.float64)
    assert_close(adv, expected, rtol=1e-12, atol=0)
    for wrong in (1e-3 / math.sqrt(std**2 + EPS), 1e-3 / std):
        assert abs(wrong - a) > 1e-4


def test_group_order_does_not_matter():
    """Permuting samples (and their ids) permutes the advantages; id values themselves do not matter."""
    perm = torch.tensor([6, 0, 4, 2, 1, 5, 3])
    adv = group_advantages(REWARDS, GROUP_IDS)
    adv_perm = group_advantages(REWARDS[perm], GROUP_IDS[perm] * 100 - 5)
    assert_close(adv_perm, adv[perm])


def test_integer_rewards_and_empty_input():
    """Integer rewards are promoted to float; an empty batch returns an empty tensor."""
    adv = group_advantages(torch.tensor([1, 0]), torch.tensor([0, 0]))
    assert_close(adv, torch.tensor([0.5, -0.5]) / (math.sqrt(0.5) + EPS))
    assert group_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long)).numel() == 0


def test_multi_channel_by_hand():
    """Two channels over groups {0: rows 0,1} and {1: rows 2,3}; weights [1.0, 0.5].

    Channel 0 rewards [1, 0, 1, 1]: group 0 mean 0.5, std √0.5 -> ±0.5/√0.5 = ±0.70711; group 1 constant -> 0.
    Channel 1 rewards [0, 0, 3, 1]: group 0 constant -> 0; group 1 mean 2, std √2 -> ±1/√2 = ±0.70711,
    times weight 0.5 -> ±0.35355.
    """
    rewards_NK = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 3.0], [1.0, 1.0]])
    ids = torch.tensor([0, 0, 1, 1])
    adv_NK = multi_channel_advantages(rewards_NK, ids, weights_K=[1.0, 0.5])
    a0 = 0.5 / (math.sqrt(0.5) + EPS)
    a1 = 0.5 * 1.0 / (math.sqrt(2.0) + EPS)
    expected = torch.tensor([[a0, 0.0], [-a0, 0.0], [0.0, a1], [0.0, -a1]])
    assert_close(adv_NK, expected, rtol=0, atol=1e-6)
    assert adv_NK[0, 1] == 0.0 and adv_NK[2, 0] == 0.0


def test_multi_channel_rejects_wrong_weight_count():
    with pytest.raises(AssertionError, match="weights"):
        multi_channel_advantages(torch.zeros(4, 2), torch.zeros(4), weights_K=[1.0])
