"""The `rm` and `hybrid` RL rewards: a table for hybrid, the plug-ins found through their entry points, and
their values from a trained demo reward model."""

from __future__ import annotations

import math

import pytest
from visionrl.core.data.records import MCQRecord, VQARecord
from visionrl.core.errors import UserError
from visionrl.core.rewards.base import RewardContext
from visionrl.core.rewards.plugins import RewardModelArgs, check_reward_args, find_plugin
from visionrl.rewardmodel.rewards import ground_truth_match, hybrid_values, rm_question, sigmoid

VQA = VQARecord("v", [], "What color is the shape on the left?", "red")
MCQ = MCQRecord("m", [], "Which colour?", {"A": "red", "B": "blue"}, "B")
NO_GT = VQARecord("n", [], "Describe the image.", "")


@pytest.mark.parametrize(("completion", "row", "score", "want"), [
    ("<think>left is red</think> \\boxed{red}", VQA, -5.0, 1.0),  # right answer: 1 whatever the score
    ("\\boxed{blue}", VQA, 0.0, 0.5),  # wrong: σ(0)
    ("\\boxed{blue}", VQA, 2.0, 1 / (1 + math.exp(-2.0))),
    ("red", VQA, -1.0, 1 / (1 + math.exp(1.0))),  # no box: no answer, so σ(score)
    ("<think>..</think><answer>B</answer>", MCQ, -3.0, 1.0),  # MCQ: the option letter
    ("<think>..</think><answer>A</answer>", MCQ, 1.0, sigmoid(1.0)),
    ("a red circle", NO_GT, 0.7, sigmoid(0.7)),  # no ground truth: σ(score)
])
def test_hybrid_table(completion, row, score, want):
    assert hybrid_values([ground_truth_match(completion, row)], [score]) == [pytest.approx(want)]


def test_sigmoid_is_stable_for_large_scores():
    assert sigmoid(1000.0) == 1.0 and sigmoid(-1000.0) == 0.0


def test_the_reward_model_reads_mcq_options():
    assert rm_question(MCQ, "Which colour?") == "Which colour?\nA. red\nB. blue"
    assert rm_question(VQA, VQA.question) == VQA.question


def test_modes_are_registered_by_the_package():
    assert find_plugin("rm").__name__ == "rm_plugin" and find_plugin("hybrid").__name__ == "hybrid_plugin"


def test_a_model_without_a_head_is_refused_naming_the_flag(tiny_build):
    with pytest.raises(UserError, match=r"^--reward-model .*: not a reward model \(no reward_head.json\)"):
        check_reward_args(RewardModelArgs(reward_model=str(tiny_build("qwen2_5_vl").path), reward_mode="hybrid"))


def test_rm_and_hybrid_rewards_from_a_trained_demo_reward_model(demo_rm):
    from visionrl.core.demo_teacher import demo_world
    from visionrl.core.evaluation.models import load_model
    from visionrl.core.lit.reward_scorer import load_reward_model
    from visionrl.core.rewards.plugins import load_reward_plugin
    from visionrl.rewardmodel.images import pair_prompt

    policy = load_model("demo")
    rows = demo_world(5).vqa(2)
    completions = [f"\\boxed{{{rows[0].answer}}}", "\\boxed{purple}", "no box", f"\\boxed{{{rows[1].answer}}}"]
    ctx = RewardContext(prompts=[r.question for r in rows for _ in range(2)], completions=completions,
                        rows=[r for r in rows for _ in range(2)], group_ids=[0, 0, 1, 1], policy=policy)
    rm = load_reward_plugin(RewardModelArgs(reward_model=str(demo_rm), reward_mode="rm", reward_weight=0.5), policy)
    hybrid = load_reward_plugin(RewardModelArgs(reward_model=str(demo_rm), reward_mode="hybrid"), policy)
    raw = rm.fn(ctx)
    scorer = load_reward_model(demo_rm)
    from visionrl.core.data.records import PairRecord

    want = scorer.score([pair_prompt(PairRecord("x", r.images, q, "", "")) for r, q in zip(ctx.rows, ctx.prompts)],
                        completions).tolist()
    assert (rm.name, rm.weight, hybrid.name, hybrid.weight) == ("rm", 0.5, "hybrid", 1.0)
    assert raw == pytest.approx(want, abs=1e-5)
    assert hybrid.fn(ctx) == pytest.approx([1.0, sigmoid(raw[1]), sigmoid(raw[2]), 1.0], abs=1e-5)
