"""The critic reward, table-driven (EasyR1 math.py: 0.9·accuracy + 0.1·format), and its named-reward wiring."""

from __future__ import annotations

import pytest
from visionrl.core.rewards.base import RewardContext
from visionrl.core.rewards.extract import normalize_tag_spaces
from visionrl.core.rewards.format import MATH_FORMAT_PATTERN
from visionrl.critic.rewards import build_rewards, critic_accuracy, critic_reward, rewards_of

# (completion, ground truth, accuracy, format); overall = 0.9·acc + 0.1·fmt
TABLE = [
    (r"<think> Answer 2 misses the cup </think> \boxed{1}", "1", 1, 1),
    (r"<think>x</think>\boxed{1} and some trailing text", "1", 1, 1),  # trailing text allowed
    (r"<think>x</think> \boxed{2}", "1", 0, 1),  # wrong choice, right layout
    (r"<think>x</think> \boxed{Answer 1}", "1", 0, 1),  # mathruler: "answer1" != "1"
    (r"<think>x</think> \boxed{Answer 1}", "Answer 1", 1, 1),  # the phrase ground truth
    (r"\boxed{1}", "1", 1, 0),  # no think
    (r"The answer is 1 </think> \boxed{1}", "1", 1, 0),  # no opening <think>
    (r"<think>x</think> \boxed{2} on second thought \boxed{1}", "1", 1, 1),  # two boxes: the last counts
    (r"<think>x</think> \boxed{1} on second thought \boxed{2}", "1", 0, 1),
    (r"< think > x < / think > \boxed{1}", "1", 1, 1),  # spaces inside tags are removed first
    (r"<think>x</think> 1", "1", 0, 0),  # no box
    (r"<think>x</think> \boxed{1", "1", 0, 0),  # unclosed box
    (r"<think>x \boxed{1}</think>", "1", 1, 0),  # the box inside the think: format needs it after
    ("", "2", 0, 0),
]


@pytest.mark.parametrize(("text", "gt", "acc", "fmt"), TABLE)
def test_reward_table(text, gt, acc, fmt):
    assert critic_accuracy(text, gt) == acc
    assert critic_reward(text, gt) == pytest.approx(0.9 * acc + 0.1 * fmt)
    # the format term is exactly EasyR1's greedy regex on the tag-normalised text
    assert bool(MATH_FORMAT_PATTERN.fullmatch(normalize_tag_spaces(text))) == bool(fmt)


def test_format_weight_moves_the_split():
    text = r"\boxed{1}"  # right, no think
    assert critic_reward(text, "1", format_weight=0.3) == pytest.approx(0.7)
    assert critic_reward(text, "1", format_weight=1.0) == 0.0


def ctx(texts, answers):
    rows = [type("Row", (), {"answer": a})() for a in answers]
    return RewardContext(prompts=[""] * len(texts), completions=texts, rows=rows, group_ids=[0] * len(texts))


def test_named_rewards_and_weights():
    texts, answers = [r"<think>x</think> \boxed{2}", r"\boxed{1}"], ["2", "2"]
    acc, fmt = build_rewards("critic", format_weight=0.1)
    assert (acc.name, acc.weight, fmt.name, fmt.weight) == ("accuracy", 0.9, "format", 0.1)
    assert acc.fn(ctx(texts, answers)) == [1.0, 0.0] and fmt.fn(ctx(texts, answers)) == [1.0, 0.0]
    only_acc, only_fmt = build_rewards("format-only", format_weight=0.1)
    assert (only_acc.weight, only_fmt.weight) == (0.0, 1.0)  # the ablation rewards the template alone


def test_prefill_counts_as_part_of_the_answer():
    # MiMo: the prompt ends with "<think>", so the completion starts inside the think
    texts = [r" the left one is red </think> \boxed{1}"]
    acc, fmt = build_rewards("critic", prefill="<think>")
    assert fmt.fn(ctx(texts, ["1"])) == [1.0] and acc.fn(ctx(texts, ["1"])) == [1.0]
    assert build_rewards("critic")[1].fn(ctx(texts, ["1"])) == [0.0]


def test_rewards_of_matches_the_per_text_reward():
    texts = [r[0] for r in TABLE]
    gts = [r[1] for r in TABLE]
    got = rewards_of(texts, gts, 0.1)
    assert got["reward"] == pytest.approx([critic_reward(t, g) for t, g in zip(texts, gts)])
