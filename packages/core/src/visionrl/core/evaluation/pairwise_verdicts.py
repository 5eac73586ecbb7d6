"""Verdict parsers for pairwise judges: which of two shown answers a judgement names, or None.

Pure functions of the generated text, linear in its length. Departures from the benchmark code, numbered:

1. `parse_bracket_verdict` takes the *last* `[[A]]`/`[[B]]` (a judgement may quote the format before
   concluding). Multimodal RewardBench's `scripts/2_get_accuracy.py` returns A whenever `[[A]]` occurs
   anywhere, else B if `[[B]]` occurs; `official=True` reproduces that rule.
2. `parse_overall_judgment` answers exactly as VL-RewardBench's regex (`VLRB_JUDGMENT_PATTERN`, from
   `inference_hf.py`/`cal.py`, searched after removing newlines and `*`) but without its backtracking,
   which is quadratic in the number of "Therefore"s; a property test checks the two agree. A number
   other than 1 or 2 ("Answer 3 is better") is None here; cal.py counts it as agreeing with the label.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Literal

from visionrl.core.rewards.extract import extract_boxed

VLRB_JUDGMENT_PATTERN = re.compile(
    r"(?:Overall Judgment|Therefore)\s*.*\s*-*\s*Answer\s*(\d+)\s*is\s*(?:the\s*)?(?:slightly\s*)?better",
    re.IGNORECASE,
)
_JUDGMENT_KEY = re.compile(r"Overall Judgment|Therefore", re.IGNORECASE)
# Everything after the key's greedy `.*`: matches never overlap (each holds one "Answer"), so `finditer`
# sees them all and the last one is where the greedy `.*` settles.
_JUDGMENT_TAIL = re.compile(r"Answer\s*(\d+)\s*is\s*(?:the\s*)?(?:slightly\s*)?better", re.IGNORECASE)
# `\boxed{Answer 1}`, `\boxed{\text{Response 2}}`, `\boxed{2}`, `\boxed{**1**.}`
_BOX_WRAPPERS = re.compile(r"\\(?:textbf|text|mathrm|mathbf)\s*|[{}$*\s]")
_BOX_CHOICE = re.compile(r"(?:answer|response)?([12])[.:]?", re.IGNORECASE)


def parse_bracket_verdict(text: str, *, official: bool = False) -> Literal["A", "B"] | None:
    """The last `[[A]]` or `[[B]]` in `text` (MT-Bench / Multimodal RewardBench judge format).

    Args:
        official: Multimodal RewardBench's rule instead: A if `[[A]]` occurs anywhere, else B if `[[B]]`.

    >>> parse_bracket_verdict('Output "[[A]]" or "[[B]]". ... B is more precise. [[B]]')
    'B'
    >>> parse_bracket_verdict('Output "[[A]]" or "[[B]]". ... [[B]]', official=True)
    'A'
    >>> parse_bracket_verdict("A is better") is None
    True
    """
    a, b = text.rfind("[[A]]"), text.rfind("[[B]]")
    if official:
        return "A" if a >= 0 else "B" if b >= 0 else None
    if a < 0 and b < 0:
        return None
    return "A" if a > b else "B"


def parse_boxed_choice(text: str) -> Literal[1, 2] | None:
    r"""The choice in the last `\boxed{}` (LLaVA-Critic-R1 output): 1 or 2, also spelled `Answer 1`.

    The box is found as mathruler's `extract_boxed_content` finds it (the critic's reward reads it so):
    the last `\boxed{`, brace-matched; if that one is unclosed there is no box.

    >>> parse_boxed_choice(r"<think>2 misses the cup</think> \boxed{1}")
    1
    >>> parse_boxed_choice(r"\boxed{1} no, \boxed{\text{Answer 2}}")
    2
    >>> parse_boxed_choice(r"\boxed{3}") is None
    True
    """
    content = _BOX_WRAPPERS.sub("", extract_boxed(text))
    m = _BOX_CHOICE.fullmatch(content)
    return None if m is None else (1 if m.group(1) == "1" else 2)


def parse_overall_judgment(text: str) -> Literal[1, 2] | None:
    """The answer VL-RewardBench's "Overall Judgment: Answer X is better" regex reads from `text`.

    Newlines and `*` are removed first, as in the benchmark code; the last "Answer X is (the)
    (slightly) better" after the first "Overall Judgment" or "Therefore" counts (case-insensitive).

    >>> parse_overall_judgment("... Overall Judgment: **Answer 2 is better.**")
    2
    >>> parse_overall_judgment("Therefore, Answer 1 is slightly better than Answer 2.")
    1
    >>> parse_overall_judgment("Answer 1 is better.") is None  # no "Overall Judgment"/"Therefore" before it
    True
    """
    text = text.replace("\n", "").replace("*", "")
    key = _JUDGMENT_KEY.search(text)
    if key is None:
        return None
    tails = deque(_JUDGMENT_TAIL.finditer(text, key.end()), maxlen=1)  # keeps the last match
    if not tails:
        return None
    number = int(tails[0].group(1))
    return number if number in (1, 2) else None  # type: ignore[return-value]
