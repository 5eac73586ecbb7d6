"""Verdict parsers on real-looking judge outputs: the MMRB `[[A]]`/`[[B]]` format, VL-RewardBench's "Overall
Judgment", the free-form fallbacks, and what must stay unparsed."""

from __future__ import annotations

import pytest
from visionrl.judge.verdicts import fallback_verdict, parse_mmrb, parse_verdict, parse_vlrb

MMRB = [
    ("Assistant A correctly identifies the red square, while Assistant B says it is blue. [[A]]", "A"),
    ("Both answers mention the dog, but only B counts three of them. Final verdict: [[B]]", "B"),
    ('I must output "[[A]]" or "[[B]]". Assistant B is more precise.\n\n[[B]]', "B"),
    ("Assistant A's answer matches the image. [[A]]", "A"),
    ("Assistant B's answer matches the image. [[B]]</s>", "B"),
    ("**Explanation:** A misreads the chart.\n\n**Verdict:** [[B]]", "B"),
    ("[[A]]", "A"),
    ("After comparing both responses, [[A]] is better because it is grounded; no wait, [[B]].", "B"),
    # fallbacks when the brackets are missing
    ("Assistant B is better.", "B"),
    ("Final verdict: A", "A"),
    ("My verdict: [B]", "B"),
    ("Response A is slightly better than Response B.", "A"),
    ("Both are fluent. The better answer is Answer 2.", "B"),
    ("I choose Assistant A.", "A"),
    ("\\boxed{B}", "B"),
    ("Assistant A's response is more accurate.", "A"),
    ("Verdict - 1", "A"),
    ("The comparison ends here.\n[A]\n", "A"),
    # nothing to read
    ("Both responses are equally good.", None),
    ("It is a tie.", None),
    ("Final answer: A red ball sits on the table.", None),  # "A" is an article here
    ("verdict: a tie between them", None),
    ("[[C]]", None),
    ("", None),
]

VLRB = [
    ("1. Accuracy: Answer 1 is wrong about the colour.\n...\nOverall Judgment: Answer 2 is better.", "B"),
    ("**Overall Judgment:** **Answer 1 is better.**", "A"),
    ("Therefore, Answer 1 is slightly better.", "A"),
    ("Overall Judgment:\nAnswer 2 is the better answer... Answer 2 is better", "B"),
    ("Overall Judgment - Answer 1 is better than Answer 2.", "A"),
    ("Answer 2 is better.", "B"),  # no key phrase: the regex misses it, the fallback reads it
    ("Overall Judgment: both are acceptable.", None),
    ("Overall Judgment: Answer 3 is better.", None),
]


@pytest.mark.parametrize(("text", "verdict"), MMRB)
def test_mmrb_parser(text: str, verdict: str | None) -> None:
    assert parse_mmrb(text) == verdict
    assert parse_verdict("mmrb", text) == verdict


@pytest.mark.parametrize(("text", "verdict"), VLRB)
def test_vlrb_parser(text: str, verdict: str | None) -> None:
    assert parse_vlrb(text) == verdict


def test_official_scoring_reads_only_the_benchmark_format() -> None:
    assert parse_vlrb("Answer 2 is better.", fallback=False) is None
    assert parse_mmrb("Assistant B is better.", fallback=False) is None
    assert parse_verdict("vlrb", "Overall Judgment: Answer 2 is better.", fallback=False) == "B"


def test_the_last_statement_wins() -> None:
    assert fallback_verdict("Answer: A. On reflection, Response B is better.") == "B"
    assert fallback_verdict("Response B is better. Final answer: A") == "A"

