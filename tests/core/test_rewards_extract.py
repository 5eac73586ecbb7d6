"""Table tests of answer extraction (visionrl.core.rewards.extract)."""

import re

import pytest
from mathruler.grader import extract_boxed_content
from visionrl.core.rewards import (
    answer_span,
    extract_answer_tag,
    extract_boxed,
    extract_choice_letter,
    extract_description,
    extract_number,
    extract_tag,
    extract_think,
    extract_yes_no,
    normalize_tag_spaces,
)

BOXED = [
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),  # nested braces
    (r"first \boxed{1}, then \boxed{2}.", "2"),  # the last box wins
    (r"\boxed{1} then \boxed{2", "None"),  # the last box is unclosed: the earlier one is NOT used
    (r"\boxed{\text{cat}}", r"\text{cat}"),
    (r"\boxed{ 42 }", "42"),  # stripped
    (r"\boxed{}", ""),
    (r"\boxed{a}}", "a"),
    (r"\boxed{a{b}{c{d}}e}", "a{b}{c{d}}e"),
    (r"\boxed {1}", "None"),  # a space breaks the command
    (r"\fbox{1}", "None"),
    ("no box at all", "None"),
    ("", "None"),
    ("\\boxed{" + "{" * 10_000, "None"),  # unclosed and deep: crosses several scan chunks
    ("\\boxed{" + "x" * 9_000 + "}", "x" * 9_000),
    ("\\boxed{" + "{}" * 5_000 + "}", "{}" * 5_000),
]


@pytest.mark.parametrize(("text", "expected"), BOXED)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected
    assert extract_boxed_content(text) == expected, "table disagrees with mathruler"


TAGS = [
    ("<answer> B </answer>", "answer", "B"),
    ("<answer>1</answer><answer>2</answer>", "answer", "1"),  # the first pair
    ("<answer>B", "answer", None),  # unclosed
    ("</answer>B<answer>", "answer", None),
    ("<answer></answer>", "answer", ""),
    ("<think>\nline 1\nline 2\n</think>", "think", "line 1\nline 2"),
    ("< answer >B</ answer >", "answer", None),  # no tag-space normalisation here
    ("<description>a cube</description>", "description", "a cube"),
]


@pytest.mark.parametrize(("text", "tag", "expected"), TAGS)
def test_extract_tag(text, tag, expected):
    assert extract_tag(text, tag) == expected
    m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.DOTALL)
    assert (m.group(1).strip() if m else None) == expected, "table disagrees with the regex"


def test_tag_helpers():
    text = "<description>red cube</description><think>one cube</think><answer>1</answer>"
    assert (extract_description(text), extract_think(text), extract_answer_tag(text)) == (
        "red cube",
        "one cube",
        "1",
    )


NORMALIZE = [
    ("< think > a </ think >", "<think>a</think>"),
    ("a / b", "a/b"),
    ("x  y", "x  y"),  # untouched away from < > /
    ("\n<description>\n cube \n</description>\n", "<description>cube</description>"),
    ("  ", "  "),
    ("<  <", "<<"),
    ("a\u00a0<", "a<"),  # non-breaking space is whitespace for `\s`
]


@pytest.mark.parametrize(("text", "expected"), NORMALIZE)
def test_normalize_tag_spaces(text, expected):
    assert normalize_tag_spaces(text) == expected
    assert re.sub(r"\s*(<|>|/)\s*", r"\1", text) == expected, "table disagrees with Vision-SR1's regex"


SPANS = [
    ("<think>A</think><answer> B </answer> \\boxed{C}", "B"),  # answer tag beats box
    ("<think>A</think> so \\boxed{ C }", "C"),
    ("<think>A</think> The answer is D. ", "The answer is D."),
    ("plain text ", "plain text"),
    ("<think>A</think><answer> B", "B"),  # generation stopped on "</answer>", which was cut
    ("<think>A</think><answer>\\boxed{B} C", "B"),  # a box beats an unclosed answer tag
]


@pytest.mark.parametrize(("text", "expected"), SPANS)
def test_answer_span(text, expected):
    assert answer_span(text) == expected


LETTERS = [
    ("B", "B"),
    ("(B)", "B"),
    ("[B]", "B"),
    ("B.", "B"),
    ("B:", "B"),
    ("b", "B"),
    (" B ", "B"),
    ("B. cat", "B"),
    ("B) cat", "B"),
    ("(B) cat", "B"),
    ("The answer is B", "B"),
    ("The answer is B.", "B"),
    ("Answer: (C)", "C"),
    ("the correct option is D", "D"),
    ("I pick choice E because ...", "E"),
    (r"\boxed{B}", "B"),
    (r"\boxed{(B) cat}", "B"),
    ("<answer>B</answer>", "B"),
    ("<think>A seems wrong, (C) too</think><answer>B</answer>", "B"),
    ("<think>maybe (A)</think> I will go with (D) here", "D"),
    # Ambiguous or absent.
    ("A or B", None),
    ("(A) and (B)", None),
    ("The answer is A, no wait, the answer is B", None),
    ("A dog is on the mat", None),  # a bare capital in running text is not an option
    ("the answer is a cat", None),  # lower-case letter in a phrase is a word
    ("cat", None),
    ("", None),
    ("Z", None),  # not one of the letters
    (r"\boxed{}", None),
]


@pytest.mark.parametrize(("text", "expected"), LETTERS)
def test_extract_choice_letter(text, expected):
    assert extract_choice_letter(text) == expected


def test_extract_choice_letter_custom_letters():
    assert extract_choice_letter("Z", letters="XYZ") == "Z"
    assert extract_choice_letter("E", letters="ABCD") is None


YES_NO = [
    ("Yes", "yes"),
    ("yes", "yes"),
    ("NO.", "no"),
    ("<answer>No</answer>", "no"),
    (r"\boxed{Yes}", "yes"),
    ("<think>no idea</think> Yes, there is.", "yes"),  # the think part is not the answer span
    ("yes and no", None),
    ("Yes, there is no dog.", None),  # both words appear in the span
    ("nothing", None),  # word-bounded
    ("eyes", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), YES_NO)
def test_extract_yes_no(text, expected):
    assert extract_yes_no(text) == expected


NUMBERS = [
    ("42", 42.0),
    ("about 1,000 cats", 1000.0),
    ("1,000,000", 1e6),
    ("1,000.5", 1000.5),
    ("(1,2)", 2.0),  # a tuple: the last element
    ("x = -3.5", -3.5),
    ("5-3", 3.0),  # binary minus
    ("\u22127", -7.0),  # unicode minus
    (".5", 0.5),
    ("3.", 3.0),
    (r"\frac{1}{4}", 0.25),
    (r"\dfrac{3}{4}", 0.75),
    (r"\frac12", 0.5),
    (r"-\frac{1}{2}", -0.5),
    (r"\frac{-1}{2}", -0.5),
    (r"\frac{1}{0}", None),
    ("$1,234 and 50%", 50.0),
    ("The answer is 42.", 42.0),
    ("<think>7 and 8</think><answer>9</answer>", 9.0),
    ("1e5", 5.0),  # no scientific notation
    ("1" * 400, None),  # overflows to inf
    ("no digits", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_extract_number(text, expected):
    assert extract_number(text) == expected
