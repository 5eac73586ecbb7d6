"""Reward plug-ins (visionrl.core.rewards.plugins) and their runner hooks: modes are found through entry points
(a missing provider names --reward-mode), a folder without reward_head.json names --reward-model, a plug-in
is refused for non-GRPO runs and appended to a GRPO method's rewards, and the pairwise_sum reward counts wins
over all ordered pairs of a group (table and a run with a real judge model)."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import pytest
from visionrl.core.errors import UserError
from visionrl.core.hparams import GRPOConfig, SFTConfig
from visionrl.core.recipe import Method
from visionrl.core.rewards import plugins
from visionrl.core.rewards.base import NamedReward, RewardContext
from visionrl.core.rewards.plugins import (
    RewardModelArgs,
    check_reward_args,
    find_plugin,
    load_reward_plugin,
    ordered_pairs,
    win_shares,
)


@dataclass
class FakeEntryPoint:
    name: str
    target: Any
    group: str = "visionrl.rewards"

    def load(self) -> Any:
        return self.target


def fake_factory(args: RewardModelArgs, policy: Any) -> NamedReward:
    return NamedReward("ignored", lambda ctx: [0.25] * len(ctx.completions), 7.0)


@pytest.fixture
def only_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed entry points replaced by one fake `rm` mode."""
    monkeypatch.setattr(plugins, "metadata", types.SimpleNamespace(
        entry_points=lambda group=None: [FakeEntryPoint("rm", fake_factory)]))


# ---- finding modes ----------------------------------------------------------------------------------
def test_core_registers_pairwise_sum():
    assert find_plugin("pairwise_sum").__name__ == "pairwise_sum_plugin"


def test_a_mode_nobody_installed_names_the_flag_and_the_provider(only_fake):
    with pytest.raises(UserError, match=r"^--reward-mode hybrid: no installed package provides this reward "
                                        r"\(install visionrl-rewardmodel; installed modes: rm\)$"):
        find_plugin("hybrid")


def test_the_plugin_is_named_after_its_mode_and_weighted_by_the_flag(only_fake, tiny_build):
    reward = load_reward_plugin(RewardModelArgs(reward_model=str(tiny_build("qwen2_5_vl").path), reward_mode="rm",
                                                reward_weight=0.5), None)
    assert (reward.name, reward.weight) == ("rm", 0.5)
    assert reward.fn(RewardContext(["q"], ["a", "b"], [None, None], [0, 0])) == [0.25, 0.25]


def test_check_runs_the_modes_own_check_and_the_model_source(monkeypatch, tmp_path):
    from visionrl.core.lit.reward_scorer import read_head_spec

    fake_factory.check = lambda args: read_head_spec(args.reward_model)  # type: ignore[attr-defined]
    monkeypatch.setattr(plugins, "metadata", types.SimpleNamespace(
        entry_points=lambda group=None: [FakeEntryPoint("rm", fake_factory)]))
    try:
        model = tmp_path / "m"
        model.mkdir()
        (model / "config.json").write_text("{}")
        with pytest.raises(UserError, match=r"^--reward-model .*/m: not a reward model \(no reward_head.json\)"):
            check_reward_args(RewardModelArgs(reward_model=str(model), reward_mode="rm"))
        with pytest.raises(UserError, match=r"^--reward-model .*missing: no such model folder"):
            check_reward_args(RewardModelArgs(reward_model=str(tmp_path / "missing"), reward_mode="rm"))
    finally:
        del fake_factory.check  # type: ignore[attr-defined]
    check_reward_args(RewardModelArgs())  # no --reward-model: nothing to check


# ---- runner hooks -------------------------------------------------------------------------------------
def test_runner_refuses_a_plugin_for_non_grpo_runs_and_appends_it_for_grpo(only_fake, tiny_build):
    from visionrl.core.runner import check_reward_plugin, with_reward_plugin

    args = RewardModelArgs(reward_model=str(tiny_build("qwen2_5_vl").path), reward_mode="rm")
    with pytest.raises(UserError, match=r"^--reward-model .*: a reward plug-in is a GRPO reward, but this run "
                                        r"trains with SFTConfig; drop --reward-model$"):
        check_reward_plugin(args, SFTConfig())
    check_reward_plugin(args, GRPOConfig())
    check_reward_plugin(None, SFTConfig())
    base = Method(train=[], rewards=[NamedReward("accuracy", lambda ctx: [1.0])])
    method = with_reward_plugin(base, args, None)
    assert [r.name for r in method.rewards] == ["accuracy", "rm"] and len(base.rewards) == 1
    assert with_reward_plugin(base, RewardModelArgs(), None) is base


# ---- pairwise_sum -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("groups", "want"), [
    ([0, 0], [(0, 1), (1, 0)]),
    ([0, 0, 0], [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]),
    ([5, 7, 5, 7], [(0, 2), (2, 0), (1, 3), (3, 1)]),
])
def test_ordered_pairs_are_all_g_times_g_minus_1_within_groups(groups, want):
    assert ordered_pairs(groups) == want


@pytest.mark.parametrize(("verdicts", "want"), [
    # pairs of a group of 3: (0,1) (0,2) (1,0) (1,2) (2,0) (2,1); each completion plays 4 games
    (["A", "A", "B", "A", "B", "B"], [1.0, 0.5, 0.0]),  # 0 wins all four; 1 beats 2 twice
    (["B", "B", "A", "A", "A", "A"], [0.0, 0.75, 0.75]),  # 1 and 2 each win both games as A and one as B
    ([None] * 6, [0.0, 0.0, 0.0]),  # unparsed: a win for nobody
    (["A"] * 6, [0.5, 0.5, 0.5]),  # a judge that always names the first answer: pure position bias
])
def test_win_shares_table(verdicts, want):
    assert win_shares(3, ordered_pairs([0, 0, 0]), verdicts) == want


def test_pairwise_sum_with_a_real_judge_model(demo_model_dir):
    from visionrl.core.demo_teacher import demo_world

    rows = demo_world(2).vqa(2)
    answers = [["red", "blue", "green"], ["yellow", "red", "blue"]]
    ctx = RewardContext(prompts=[r.question for r in rows for _ in range(3)],
                        completions=[f"\\boxed{{{a}}}" for group in answers for a in group],
                        rows=[r for r in rows for _ in range(3)], group_ids=[0, 0, 0, 1, 1, 1])
    reward = find_plugin("pairwise_sum")(RewardModelArgs(reward_model=str(demo_model_dir),
                                                         reward_mode="pairwise_sum", reward_max_new_tokens=32), None)
    values = reward.fn(ctx)
    assert len(values) == 6 and all(0.0 <= v <= 1.0 for v in values)
    for g in (slice(0, 3), slice(3, 6)):  # at most one win per game: Σ shares·2(G−1) ≤ G(G−1)
        assert sum(values[g]) * 4 <= 6 + 1e-9
