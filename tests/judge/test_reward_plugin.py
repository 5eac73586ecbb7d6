"""A trained judge is a GRPO reward: core's `pairwise_sum` plug-in (`--reward-model <judge model dir>
--reward-mode pairwise_sum`) judges every ordered pair of a group with it, a core GRPO step runs on that reward, and
on answers of the form it was trained on the right one wins (a swapped pair order fails it: checked)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.slow
def test_a_core_grpo_step_with_the_trained_judge_as_pairwise_sum(judge_run, tmp_path: Path) -> None:
    from visionrl.core.chat import Prompt
    from visionrl.core.config import RunArgs
    from visionrl.core.demo_teacher import demo_world
    from visionrl.core.hparams import GRPOConfig, SamplingParams
    from visionrl.core.prompts import COT_INSTRUCTION, format_segments
    from visionrl.core.recipe import SHAPES_RL_SEED, Method, Recipe, Splits
    from visionrl.core.rewards.plugins import RewardModelArgs
    from visionrl.core.runner import train

    out, _ = judge_run
    judge_dir = (out / "model").resolve()  # <output-dir>/model links to the final judge
    assert (judge_dir / "config.json").is_file()
    records = demo_world(SHAPES_RL_SEED).vqa(4)
    recipe = Recipe(cli="grpo-test", method="GRPO with a judge reward", paper="2512.05145",
                    data=lambda: Splits(records, []),
                    build=lambda vlm, splits: Method(
                        train=splits.train, rewards=[],
                        prompt_fn=lambda r: Prompt(format_segments(r.question, COT_INSTRUCTION), list(r.images))))
    run = RunArgs(model="demo", max_steps=1, output_dir=tmp_path / "grpo", threads=1, save_every_n_steps=10)
    algo = GRPOConfig(num_generations=3, prompts_per_step=2, micro_batch_size=6, gen_batch_size=6, engine="lean",
                      sampling=SamplingParams(max_new_tokens=12))
    reward = RewardModelArgs(reward_model=str(judge_dir), reward_mode="pairwise_sum", reward_max_new_tokens=24)
    metrics = train(recipe, {"test": "grpo with a judge reward"}, run=run, algo=algo, reward=reward)
    assert metrics["steps"] == 1
    # Each completion's reward is its share of wins over the 2(G-1) ordered pairs it is in: the shares of a group
    # sum to (parsed verdicts) / (2(G-1)), so the mean is 1/2 when every verdict parses and less otherwise (the
    # arithmetic is checked exactly in tests/core/test_reward_plugins.py; this tiny judge was trained on one-word
    # answers, not on the policy's CoT completions, and often writes no verdict for them).
    assert 0.0 <= metrics["train"]["train/rewards/pairwise_sum/mean"] <= 0.5
    assert (tmp_path / "grpo" / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_the_trained_judge_as_pairwise_sum_prefers_the_right_answer(judge_run) -> None:
    """Through the plug-in registry, on answers in the form the judge was trained on (one colour word): the right
    colour wins its pairs, and every verdict parses (a group of 3 shares 6 wins among 4 games each: sum 1.5)."""
    from visionrl.core.demo_teacher import HELDOUT_SEED, demo_world
    from visionrl.core.rewards.base import RewardContext
    from visionrl.core.rewards.plugins import RewardModelArgs, load_reward_plugin

    out, _ = judge_run
    reward = load_reward_plugin(RewardModelArgs(reward_model=str((out / "model").resolve()),
                                                reward_mode="pairwise_sum", reward_max_new_tokens=24), None)
    records = demo_world(HELDOUT_SEED).vqa(12)
    rows = [r for r in records for _ in range(3)]
    # the right colour and two wrong ones, none of them "red" (the demo judge's designed shortcut)
    answers = [c for r in records for c in [r.answer, *[w for w in ("blue", "green", "yellow") if w != r.answer][:2]]]
    shares = reward.fn(RewardContext(prompts=[r.question for r in rows], completions=answers, rows=rows,
                                     group_ids=[i // 3 for i in range(len(rows))]))
    assert reward.name == "pairwise_sum" and len(shares) == len(rows)
    assert [sum(shares[i:i + 3]) for i in range(0, len(shares), 3)] == [1.5] * len(records)
    right = [shares[i] for i in range(0, len(shares), 3)]
    wrong = [s for i, s in enumerate(shares) if i % 3]
    assert sum(right) / len(right) >= 0.75 > 0.4 >= sum(wrong) / len(wrong), (right, wrong)
