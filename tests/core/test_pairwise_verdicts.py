"""Verdict parsers: tables, agreement with VL-RewardBench's regex, megabyte inputs, and every doctest of the
pairwise modules."""

import doctest
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from visionrl.core.evaluation import pairwise, pairwise_registry, pairwise_scoring, pairwise_verdicts
from visionrl.core.evaluation.pairwise_verdicts import (
    VLRB_JUDGMENT_PATTERN,
    parse_boxed_choice,
    parse_bracket_verdict,
    parse_overall_judgment,
)


@pytest.mark.parametrize(
    ("text", "last", "official"),
    [
        ("Explanation... Final verdict: [[B]]", "B", "B"),
        ("[[A]]", "A", "A"),
        ('Format: "[[A]]" if A is better, "[[B]]" if B is better. Verdict: [[A]]', "A", "A"),
        ('Format: "[[A]]" if A is better, "[[B]]" if B is better. Verdict: [[B]]', "B", "A"),
        ("[[B]] at first, but on reflection [[A]]", "A", "A"),
        ("[A] or [[ B ]] or [[C]]", None, None),
        ("", None, None),
    ],
)
def test_bracket_verdict(text, last, official):
    assert parse_bracket_verdict(text) == last
    assert parse_bracket_verdict(text, official=True) == official


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"<think>...</think> \boxed{1}", 1),
        (r"\boxed{2}", 2),
        (r"\boxed{ 2 }", 2),
        (r"\boxed{Answer 1}", 1),
        (r"\boxed{answer2}", 2),
        (r"\boxed{\text{Answer 2}}", 2),
        (r"\boxed{\textbf{Response 1}}", 1),
        (r"$\boxed{1}$.", 1),
        (r"\boxed{1} then \boxed{2}", 2),  # the last box counts
        (r"\boxed{2} then \boxed{", None),  # as mathruler: the last box is unclosed, so no box
        (r"\boxed{12}", None),
        (r"\boxed{A}", None),
        (r"\boxed{Answer 1 is better}", None),
        ("Answer 1", None),
        ("", None),
    ],
)
def test_boxed_choice(text, expected):
    assert parse_boxed_choice(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Overall Judgment: Answer 2 is better.", 2),
        ("### Overall Judgment\n**Answer 1 is better.**", 1),  # newlines and * removed first
        ("overall judgment - answer 1 is the better one", 1),  # case-insensitive; 'is the better'
        ("Therefore, Answer 2 is slightly better.", 2),
        ("Overall Judgment: Answer 1 is better. Wait: Answer 2 is better.", 2),  # greedy: the last one
        ("Answer 2 is better. Overall Judgment: Answer 1 is better.", 1),
        ("Answer 1 is better.", None),  # no Overall Judgment / Therefore before it
        ("Overall Judgment: Answer 1 is superior.", None),
        ("Overall Judgment: Answer 3 is better.", None),  # cal.py would count this as agreeing
        ("Overall Judgment: Answer 1", None),
    ],
)
def test_overall_judgment(text, expected):
    assert parse_overall_judgment(text) == expected


def official_overall(text: str) -> int | None:
    """VL-RewardBench (`inference_hf.py`, `cal.py`): search the regex after removing newlines and `*`."""
    m = re.search(VLRB_JUDGMENT_PATTERN, text.replace("\n", "").replace("*", ""))
    return None if m is None or int(m.group(1)) not in (1, 2) else int(m.group(1))


JUDGMENT_TOKENS = [
    "Overall Judgment", "overall judgment:", "Therefore", "THEREFORE,", "Answer", "answer", " ", "\n", "*", "-",
    "1", "2", "3", "12", "is", "the", "slightly", "better", "Better", ".", "Answer 1 is better", "x",
]  # fmt: skip
JUDGMENT_TEXT = st.one_of(st.text(), st.lists(st.sampled_from(JUDGMENT_TOKENS), max_size=30).map("".join))


@settings(deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(JUDGMENT_TEXT)
def test_overall_judgment_equals_the_official_regex(text):
    assert parse_overall_judgment(text) == official_overall(text)


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_overall_judgment, "Therefore " * 100_000),  # the official regex retries from every key
        (parse_overall_judgment, "Overall Judgment" + " Answer 1 is" * 80_000),
        (parse_overall_judgment, "Therefore" + "-" * 1_000_000),
        (parse_bracket_verdict, "[[A]" * 250_000),
        (parse_boxed_choice, "\\boxed{" * 100_000 + "}" * 100_000),
    ],
)
def test_megabyte_inputs_are_fast(parse, text):
    start = time.perf_counter()
    parse(text)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("module", [pairwise, pairwise_registry, pairwise_scoring, pairwise_verdicts], ids=lambda m: m.__name__)
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
