"""The reward modes on a hand-made rollout: one group of G = 4 responses.

    accuracy = [1, 0, 1, 0], format = [1, 1, 0, 0], visual = [1, 0, 0, 0]

z-scores use the unbiased std (EasyR1 / torch.std):
    z(accuracy): mean 0.5, std sqrt(1/3) = 0.57735       -> [ 0.86603, -0.86603,  0.86603, -0.86603]
    z(visual):   mean 0.25, std 0.5                      -> [ 1.5,     -0.5,     -0.5,     -0.5    ]
sum: overall = 0.9·acc + 0.1·fmt + visual = [2.0, 0.1, 0.9, 0.0]; mean 0.75,
    deviations [1.25, -0.65, 0.15, -0.75], var 2.57 / 3, std 0.925563 -> [1.35053, -0.70228, 0.16206, -0.81032]
decoupled_code: z(acc) + z(visual) = [2.36603, -1.36603, 0.36603, -1.36603]
decoupled_paper (α = 0.1; λ_ans, λ_vis = 0.5, 0.5 by default, and 0.3, 0.7 so that swapping them shows):
    r_ans = acc + 0.1·fmt = [1.1, 0.1, 1.0, 0.0]: mean 0.55, devs [.55, -.45, .45, -.55],
        var (0.3025 + 0.2025 + 0.2025 + 0.3025) / 3 = 0.336667, std 0.580230
        -> λ_ans · [0.94790, -0.77555, 0.77555, -0.94790]
    r_vis = visual + 0.1·fmt = [1.1, 0.1, 0.0, 0.0]: mean 0.3, devs [.8, -.2, -.3, -.3],
        var (0.64 + 0.04 + 0.09 + 0.09) / 3 = 0.2866667, std 0.535413
        -> λ_vis · [1.49417, -0.37354, -0.56032, -0.56032], applied to the 4 pass-2 rows appended after pass 1
"""

import pytest
import torch
from visionrl.core.hparams import GRPOConfig
from visionrl.core.lit.grpo import weighted_sum_advantages
from visionrl.core.rewards.base import RewardContext
from visionrl.core.rollout import Rollout
from visionrl.selfreward.modes import build_method

REWARDS = {"accuracy": torch.tensor([1.0, 0, 1, 0]), "format": torch.tensor([1.0, 1, 0, 0]),
           "visual": torch.tensor([1.0, 0, 0, 0]), "description_format": torch.tensor([1.0, 1, 1, 1])}


def _rollout(n=4, width=3, group=0):
    return Rollout(prompts=[None] * n, rows=[None] * n, group_ids_N=torch.full((n,), group),
                   completion_ids_NC=torch.ones(n, width, dtype=torch.long),
                   completion_mask_NC=torch.ones(n, width, dtype=torch.long), texts=[""] * n,
                   clipped_N=torch.zeros(n, dtype=torch.bool))


def _advantages(mode, ctx=None, **kwargs):
    method = build_method(mode, **kwargs)
    ro = _rollout()
    ctx = ctx or RewardContext(prompts=[], completions=[], rows=[], group_ids=[0] * 4)
    if method.advantage_fn is None:
        weights = {r.name: r.weight for r in method.rewards}
        return weighted_sum_advantages(ro, REWARDS, ctx, GRPOConfig(), weights)
    return method.advantage_fn(ro, REWARDS, ctx, GRPOConfig())


def test_sum_mode():
    rows, adv = _advantages("sum")
    assert len(rows) == 4
    assert adv.tolist() == pytest.approx([1.35053, -0.70228, 0.16206, -0.81032], abs=1e-4)


def test_decoupled_code_mode():
    _, adv = _advantages("decoupled_code")
    assert adv.tolist() == pytest.approx([2.36603, -1.36603, 0.36603, -1.36603], abs=1e-4)


@pytest.mark.parametrize("lambdas", [None, (0.3, 0.7)])
def test_decoupled_paper_mode_trains_pass2_tokens(lambdas):
    """λ_ans scales the pass-1 rows and λ_vis the pass-2 rows; None is the default (0.5, 0.5)."""
    ctx = RewardContext(prompts=[], completions=[], rows=[], group_ids=[0] * 4)
    ctx.extras["pass2"] = _rollout(width=5)
    rows, adv = _advantages("decoupled_paper", ctx, **({} if lambdas is None else {"lambdas": lambdas}))
    assert len(rows) == 8 and rows.completion_ids_NC.shape == (8, 5)
    assert rows.completion_mask_NC[:4, 3:].sum() == 0  # pass-1 rows padded to the pass-2 width, masked
    lam_ans, lam_vis = lambdas or (0.5, 0.5)
    expected = [lam_ans * x for x in (0.94790, -0.77555, 0.77555, -0.94790)]
    expected += [lam_vis * x for x in (1.49417, -0.37354, -0.56032, -0.56032)]
    assert adv.tolist() == pytest.approx(expected, abs=1e-4)


def test_baselines_have_no_visual_reward():
    r1 = build_method("vision-r1")
    assert [(r.name, r.weight) for r in r1.rewards] == [("accuracy", 0.9), ("format", 0.1)]
    assert "You FIRST think" in r1.prompt_fn(type("R", (), {"question": "Q", "images": []})()).content[-1]
    ns = build_method("no-self-reward")
    assert [r.name for r in ns.rewards] == ["accuracy", "format"]
    sr1 = build_method("sum")
    assert [(r.name, r.weight) for r in sr1.rewards] == [("accuracy", 0.9), ("format", 0.1), ("visual", 1.0),
                                                         ("description_format", 0.0)]


def test_zero_variance_group_gets_zero_advantage():
    method = build_method("sum")
    flat = {k: torch.ones(4) for k in REWARDS}
    _, adv = weighted_sum_advantages(_rollout(), flat, None, GRPOConfig(), {r.name: r.weight for r in method.rewards})
    assert adv.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_unknown_mode():
    with pytest.raises(ValueError, match="unknown mode"):
        build_method("nope")
