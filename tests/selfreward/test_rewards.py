"""Vision-SR1 reward functions on hand-made responses (official `see_think_selfReward.py` semantics)."""

import pytest
from visionrl.core.rewards import see_think_format
from visionrl.core.rewards.base import RewardContext
from visionrl.selfreward import rewards as R

GOOD = "<description> a red circle </description> <think> the circle is red </think> \\boxed{red}"


@pytest.mark.parametrize(("text", "ok"), [
    (GOOD, 1.0),
    ("<description>a</description><think>b</think>\\boxed{c}", 1.0),
    ("  < description > a </ description >\n<think>b</think> \\boxed{c}  ", 1.0),  # tag spaces normalised
    ("<think>b</think> \\boxed{c}", 0.0),  # no description
    ("<description>a</description> \\boxed{c}", 0.0),  # no think
    ("<description>a</description><think>b</think>", 0.0),  # no box
    ("<description>a</description><think>b</think>\\boxed{c} extra", 0.0),  # anchored at the end
    ("x <description>a</description><think>b</think>\\boxed{c}", 0.0),  # anchored at the start
    ("<think>b</think><description>a</description>\\boxed{c}", 0.0),  # order matters
])
def test_see_think_format_table(text, ok):
    assert see_think_format(text) == ok


@pytest.mark.parametrize(("text", "strict", "expected"), [
    (GOOD, True, "a red circle"),
    (GOOD, False, "a red circle"),
    ("<think>x</think> \\boxed{red}", True, ""),  # strict: no tags, no description
    ("<think>x</think> \\boxed{red}", False, "<think>x</think> \\boxed{red}"),  # official leak: whole response
])
def test_extract_description(text, strict, expected):
    assert R.extract_description(text, strict) == expected


def _ctx(completions, answers):
    rows = [type("Row", (), {"answer": a, "question": "What color?"})() for a in answers]
    return RewardContext(prompts=["What color?"] * len(rows), completions=completions, rows=rows,
                         group_ids=[0] * len(rows), policy=None)


class ScriptedSecondPass(R.SecondPass):
    """Pass 2 without a model: 'answers' red iff the description mentions red (a perfect reader)."""

    def __call__(self, ctx):
        import torch
        from visionrl.core.rollout import Rollout

        if "pass2" not in ctx.extras:
            descs = [R.extract_description(t, self.strict) for t in ctx.completions]
            texts = [f"<think>x</think> \\boxed{{{'red' if 'red' in d else 'blue'}}}" for d in descs]
            n = len(texts)
            ctx.extras["pass2"] = Rollout(prompts=[None] * n, rows=list(ctx.rows), group_ids_N=torch.zeros(n, dtype=torch.long),
                                          completion_ids_NC=torch.ones(n, 2, dtype=torch.long),
                                          completion_mask_NC=torch.ones(n, 2, dtype=torch.long), texts=texts,
                                          clipped_N=torch.zeros(n, dtype=torch.bool))
            ctx.extras["descriptions"] = descs
        return ctx.extras["pass2"]


@pytest.mark.parametrize(("strict", "visual"), [(True, [1.0, 0.0, 0.0]), (False, [1.0, 1.0, 0.0])])
def test_visual_reward_and_leak_guard(strict, visual):
    """A response without <description> that boxes the right answer: the official code hands the whole
    response to pass 2 (which copies the box → free visual reward); strict gives no visual reward."""
    completions = [GOOD, "<think>x</think> \\boxed{red}", "<description> a blue square </description> <think>y</think> \\boxed{red}"]
    ctx = _ctx(completions, ["red", "red", "red"])
    sp = ScriptedSecondPass(strict)
    assert R.visual_reward_fn(sp)(ctx) == visual
    assert R.accuracy_reward(ctx) == [1.0, 1.0, 1.0]
    assert R.see_think_format_reward(ctx) == [1.0, 0.0, 1.0]
    assert R.description_format_fn(sp)(ctx) == [1.0, 1.0, 1.0]


def test_accuracy_uses_last_box_and_mathruler_semantics():
    assert R.accuracy(["\\boxed{blue} then \\boxed{Red}", "\\boxed{\\frac{1}{2}}", "no box"], ["red", "0.5", "red"]) == [1.0, 1.0, 0.0]
