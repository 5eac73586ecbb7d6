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


@pytest.mark.parametrize("scale", sorted(ADV_SCALES))
def test_zero_variance_groups_are_exactly_zero(scale):
    """Rewards 0.1 ×3: the float mean (0.1+0.1+0.1)/3 need not equal 0.1, but A must be exactly 0."""
    rewards = torch.tensor([0.1, 0.1, 0.1, 0.7, 0.7, 0.7, 0.3])
    ids = torch.tensor([4, 4, 4, 1, 1, 1, 2])
    adv = group_advantages(rewards, ids, scale=scale)
    assert torch.equal(adv, torch.zeros(7))


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
