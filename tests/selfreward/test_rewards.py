"""Vision-SR1 reward functions on hand-made responses (official `see_think_selfReward.py` semantics)."""

import pytest
import torch
from visionrl.core.rewards import see_think_format
from visionrl.core.rewards.base import RewardContext
from visionrl.core.rollout import Rollout
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
    (" < description > a / b < / description >", False, "< description > a / b < / description >"),  # official: raw
])
def test_extract_description(text, strict, expected):
    assert R.extract_description(text, strict) == expected


# (text, format reward, strict description): the format reward and the strict extractor read the tags
# through the same `normalize_tags`, so format 1 always comes with the description pass 2 must see.
SPACED = " < description > two squares < / description > < think > count < / think > \\boxed{2}"
TAG_TABLE = [
    (SPACED, 1.0, "two squares"),
    ("<description\n>two squares</\ndescription>\n<think>count</think>\\boxed{2}", 1.0, "two squares"),
    ("<\ndescription>\ntwo squares\n<\n/\ndescription\n>\n<think>count</think>\n\\boxed{2}\n", 1.0, "two squares"),
    ("\t<description >\ta / b <  /description>\t<think>count</think>\t\\boxed{2}", 1.0, "a/b"),
    ("<description></description><think>count</think>\\boxed{2}", 1.0, ""),  # empty, but read
    ("<DESCRIPTION>two squares</DESCRIPTION><think>count</think>\\boxed{2}", 0.0, ""),  # case-sensitive
    ("<Description>two squares</Description><think>count</think>\\boxed{2}", 0.0, ""),
    ("<desc ription>two squares</desc ription><think>count</think>\\boxed{2}", 0.0, ""),  # split name
    ("< description > two squares < / description > \\boxed{2}", 0.0, "two squares"),  # no think
]


@pytest.mark.parametrize(("text", "fmt", "description"), TAG_TABLE, ids=[
    "spaced", "newline-in-tags", "newline-split", "tabs", "empty", "upper-case", "capitalised", "split-name",
    "no-think"])
def test_format_and_strict_description_read_the_same_tags(text, fmt, description):
    assert see_think_format(text) == fmt
    assert R.extract_description(text, strict=True) == description


def _ctx(completions, answers):
    rows = [type("Row", (), {"answer": a, "question": "What color?"})() for a in answers]
    return RewardContext(prompts=["What color?"] * len(rows), completions=completions, rows=rows,
                         group_ids=[0] * len(rows), policy=object())


@pytest.fixture
def scripted_pass2(monkeypatch):
    """Runs the real `SecondPass` (extraction, caching, strictness) with pass 2 scripted: the 'model'
    boxes `answer(description)`, where description is exactly what the extractor handed to pass 2."""

    def install(answer):
        monkeypatch.setattr(R, "self_reward_prompt", lambda description, question: description)

        def generate(policy, descriptions, rows, **kwargs):
            texts = [f"<think>x</think> \\boxed{{{answer(d)}}}" for d in descriptions]
            n = len(texts)
            return Rollout(prompts=list(descriptions), rows=list(rows), group_ids_N=torch.zeros(n, dtype=torch.long),
                           completion_ids_NC=torch.ones(n, 2, dtype=torch.long),
                           completion_mask_NC=torch.ones(n, 2, dtype=torch.long), texts=texts,
                           clipped_N=torch.zeros(n, dtype=torch.bool))

        monkeypatch.setattr(R, "generate_rollout", generate)

    return install


NO_TAGS = "<think>x</think> \\boxed{red}"
BLUE = "<description> a blue square </description> <think>y</think> \\boxed{red}"


@pytest.mark.parametrize(("strict", "visual"), [(True, [1.0, 0.0, 0.0]), (False, [1.0, 1.0, 0.0])])
def test_visual_reward_and_leak_guard(scripted_pass2, strict, visual):
    """A perfect reader (answers red iff the description says red). A response without <description> that
    boxes the right answer: the official code hands the whole response to pass 2, which copies the box
    (free visual reward); strict hands over nothing."""
    scripted_pass2(lambda d: "red" if "red" in d else "blue")
    ctx = _ctx([GOOD, NO_TAGS, BLUE], ["red", "red", "red"])
    sp = R.SecondPass(strict)
    assert R.visual_reward_fn(sp)(ctx) == visual
    assert R.accuracy_reward(ctx) == [1.0, 1.0, 1.0]
    assert R.see_think_format_reward(ctx) == [1.0, 0.0, 1.0]
    assert R.description_format_fn(sp)(ctx) == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(("strict", "visual"), [(True, [1.0, 0.0, 1.0]), (False, [1.0, 1.0, 1.0])])
def test_strict_mode_gives_no_visual_reward_without_a_description(scripted_pass2, strict, visual):
    """Pass 2 always answers red, the right answer, whatever it is shown (a strong language prior).
    Only the strict rule can then zero the response that has no description; a description that is
    there, however wrong (BLUE), keeps its lucky reward."""
    scripted_pass2(lambda d: "red")
    ctx = _ctx([GOOD, NO_TAGS, BLUE], ["red", "red", "red"])
    sp = R.SecondPass(strict)
    assert R.visual_reward_fn(sp)(ctx) == visual
    assert ctx.extras["descriptions"][1] == ("" if strict else NO_TAGS)


def test_spaced_tags_earn_the_visual_reward(scripted_pass2):
    """The format reward accepts spaced tags (Vision-SR1's "handle qwen2.5vl-32b format"), so pass 2 must
    see that description too: overall = 0.9·1 + 0.1·1 + 1 = 2.0, as in the official code."""
    scripted_pass2(lambda d: "2" if d == "two squares" else "0")
    ctx = _ctx([SPACED], ["2"])
    sp = R.SecondPass(strict_description=True)
    acc, fmt, visual = R.accuracy_reward(ctx)[0], R.see_think_format_reward(ctx)[0], R.visual_reward_fn(sp)(ctx)[0]
    assert (acc, fmt, visual) == (1.0, 1.0, 1.0)
    assert 0.9 * acc + 0.1 * fmt + visual == pytest.approx(2.0)
    assert ctx.extras["descriptions"] == ["two squares"]


def test_accuracy_uses_last_box_and_mathruler_semantics():
    assert R.accuracy(["\\boxed{blue} then \\boxed{Red}", "\\boxed{\\frac{1}{2}}", "no box"], ["red", "0.5", "red"]) == [1.0, 1.0, 0.0]
