"""Table tests of the format rewards (visionrl.core.rewards.format).

Every row is also checked against the paper's regex applied directly, so the tables pin the
papers' behaviour and not just ours.
"""

import re

import pytest
from visionrl.core.rewards import (
    cot_format,
    normalize_tag_spaces,
    pass2_format,
    see_think_format,
    think_answer_format,
)
from visionrl.core.rewards.format import COT_PATTERN, SEE_THINK_PATTERN, THINK_ANSWER_PATTERN

SEE_THINK = [
    ("<description>a red cube</description><think>one cube</think>\\boxed{1}", 1.0),
    ("  <description>a</description>\n<think>b</think>\n\\boxed{c}\n", 1.0),
    ("< description > a </ description > < think > b </ think > \\boxed{c}", 1.0),  # spaces removed first
    ("<description></description><think></think>\\boxed{}", 1.0),
    ("<description>a</description><think>b</think>\\boxed{\\frac{1}{2}}", 1.0),
    ("<description>a</description><think>b</think>\\boxed{1} and more", 0.0),
    ("<description>a</description><think>b</think>\\boxed{1}}", 1.0),  # `.*?` may swallow a brace
    ("<think>b</think>\\boxed{1}", 0.0),  # no description
    ("<description>a</description>\\boxed{1}", 0.0),  # no think
    ("<description>a</description><think>b</think>", 0.0),  # no box
    ("<description>a</description><think>b</think>\\boxed{1", 0.0),
    ("<think>b</think><description>a</description>\\boxed{1}", 0.0),  # wrong order
    ("intro <description>a</description><think>b</think>\\boxed{1}", 0.0),
    ("<description>a</description>x<think>b</think>\\boxed{1}", 0.0),  # only whitespace between blocks
    ("<description><think></description></think>\\boxed{1}", 0.0),
    ("<description>a</description><think>b</think>\\boxed{1}<think>c</think>\\boxed{2}", 1.0),
    ("", 0.0),
]


@pytest.mark.parametrize(("text", "expected"), SEE_THINK)
def test_see_think_format(text, expected):
    assert see_think_format(text) == expected
    regex = 1.0 if SEE_THINK_PATTERN.fullmatch(normalize_tag_spaces(text)) else 0.0
    assert regex == expected, "table disagrees with Vision-SR1's regex"


COT = [
    ("<think>count</think>\\boxed{3}", 1.0),
    ("<think>count</think>\n\n\\boxed{3}\n", 1.0),
    ("<think>a</think> b \\boxed{3}", 0.0),  # text between think and box
    (" <think>count</think>\\boxed{3}", 0.0),  # no leading whitespace allowed
    ("< think >count</think>\\boxed{3}", 0.0),  # no tag-space normalisation
    ("<think>count</think>\\boxed{3} done", 0.0),
    ("<think></think>\\boxed{}", 1.0),
    ("<think>unclosed \\boxed{3}", 0.0),
    ("<think>a</think>\\boxed{1}</think>\\boxed{2}", 1.0),
]


@pytest.mark.parametrize(("text", "expected"), COT)
def test_cot_and_pass2_format(text, expected):
    assert cot_format(text) == expected
    assert pass2_format(text) == expected
    assert (1.0 if COT_PATTERN.fullmatch(text) else 0.0) == expected, "table disagrees with Vision-R1's regex"


THINK_ANSWER = [
    ("<think>B fits</think><answer>B</answer>", 1.0),
    ("  <think>B fits</think>\n<answer>B</answer>\n", 1.0),
    ("<think></think><answer></answer>", 1.0),
    ("<think>x</think> so <answer>B</answer>", 0.0),
    ("<answer>B</answer>", 0.0),
    ("<think>x</think>", 0.0),
    ("<think>x</think><answer>B", 0.0),
    ("<think>x</think><answer>B</answer> trailing", 0.0),
    ("<think>x</think><answer>B</answer><answer>C</answer>", 1.0),
    ("<think><answer></think></answer>", 0.0),
]


@pytest.mark.parametrize(("text", "expected"), THINK_ANSWER)
def test_think_answer_format(text, expected):
    assert think_answer_format(text) == expected
    assert (1.0 if THINK_ANSWER_PATTERN.fullmatch(text) else 0.0) == expected, (
        "table disagrees with the regex"
    )


def test_patterns_are_the_papers():
    """The regexes are the papers' strings, character for character."""
    assert SEE_THINK_PATTERN.pattern == (
        r"^\s*<description>.*?</description>\s*<think>.*?</think>\s*\\boxed\{.*?\}\s*$"
    )
    assert COT_PATTERN.pattern == r"<think>.*?</think>\s*\\boxed\{.*?\}\s*$"
    assert SEE_THINK_PATTERN.flags & re.DOTALL and COT_PATTERN.flags & re.DOTALL
