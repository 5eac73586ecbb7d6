"""`math_format` (EasyR1's math format reward): a table, equality with EasyR1's regex, linear time."""

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from visionrl.core.rewards import math_format
from visionrl.core.rewards.format import MATH_FORMAT_PATTERN

TOKENS = [
    "<think>", "</think>", "\\boxed{", "{", "}", " ", "\n", "\t", "<", ">", "/", "a", "1", "think", "\\boxed",
]  # fmt: skip
TEXT = st.one_of(st.text(), st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))


def easyr1(text: str) -> float:
    """EasyR1 `examples/reward_function/math.py`: normalise tag spaces, then the greedy fullmatch."""
    text = re.sub(r"\s*(<|>|/)\s*", r"\1", text)
    return 1.0 if re.fullmatch(MATH_FORMAT_PATTERN, text) else 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>a</think>\\boxed{1}", 1.0),
        ("< think > a </ think > \\boxed{1} trailing words", 1.0),  # spaces around tags, trailing text
        ("<think>a</think>b\\boxed{}c", 1.0),  # an empty box is a box
        ("<think>\n</think>\n\\boxed{\n}\n", 1.0),
        (" <think>a</think>\\boxed{1}", 1.0),  # the leading space goes with the one around `<`
        ("x <think>a</think>\\boxed{1}", 0.0),  # text before <think>
        ("<think>a\\boxed{1}</think>", 0.0),  # the box must follow </think>
        ("<think>a</think>\\boxed{1", 0.0),  # unclosed box
        ("<think>a</think>", 0.0),
        ("", 0.0),
    ],
)
def test_table(text, expected):
    assert math_format(text) == expected == easyr1(text)


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(TEXT)
def test_equals_easyr1_regex(text):
    assert math_format(text) == easyr1(text)


@pytest.mark.parametrize(
    "text",
    [
        "<think>" + "</think>" * 200_000,  # the greedy regex retries every </think>
        "<think></think>\\boxed{" + "</think>\\boxed{" * 60_000,
        "<think>" + "a" * 1_000_000 + "</think>\\boxed{1}",
    ],
)
def test_megabyte_inputs_are_fast(text):
    start = time.perf_counter()
    math_format(text)
    assert time.perf_counter() - start < 1.0
