"""Format rewards: 1.0 if a completion has the layout a paper asks for, else 0.0.

Each reward is defined by the paper's regex (kept verbatim below as `*_PATTERN`), applied with
`re.fullmatch` and `re.DOTALL`. Departure from the papers' code, numbered:

1. Those regexes chain lazy `.*?` groups, and when a fullmatch fails Python's backtracking engine
   retries every combination of tag positions: on 1 MB of repeated tags that is quadratic or worse.
   We first run `_layout_matches`, a linear scan that accepts exactly the strings the regex
   accepts (proof sketch in its docstring; checked against the regex by a property test), and only
   run the regex on strings that pass, where it cannot backtrack far.

Sources: Vision-SR1 `see_think_selfReward.py` (See-Think, arXiv:2508.19652), its newer
`self_reward.py` (pass-2 format) and Vision-R1 `cot_val.py` (think + boxed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from visionrl.core.rewards.extract import normalize_tag_spaces

SEE_THINK_PATTERN = re.compile(
    r"^\s*<description>.*?</description>\s*<think>.*?</think>\s*\\boxed\{.*?\}\s*$", re.DOTALL
)
COT_PATTERN = re.compile(r"<think>.*?</think>\s*\\boxed\{.*?\}\s*$", re.DOTALL)
THINK_ANSWER_PATTERN = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)


@dataclass(frozen=True)
class _Layout:
    """`opener ANY joint_1 ANY ... joint_k ANY closer`, with optional whitespace around it all."""

    opener: str
    joints: tuple[re.Pattern[str], ...]
    closer: str
    leading_space: bool


def _joint(left: str, right: str) -> re.Pattern[str]:
    # `\s*+` is possessive: the right literal starts with a non-space, so nothing is lost.
    return re.compile(re.escape(left) + r"\s*+" + re.escape(right))


_SEE_THINK = _Layout(
    "<description>", (_joint("</description>", "<think>"), _joint("</think>", "\\boxed{")), "}", True
)
_COT = _Layout("<think>", (_joint("</think>", "\\boxed{"),), "}", False)
_THINK_ANSWER = _Layout("<think>", (_joint("</think>", "<answer>"),), "</answer>", True)


def _layout_matches(text: str, layout: _Layout) -> bool:
    """Linear-time answer to "does the layout's regex fullmatch `text`?".

    Why it is exact: the trailing `\\s*$` can only eat the trailing whitespace (the closer ends in
    a non-space), so the closer must end the right-stripped text; likewise the opener must start
    it. Between them the `.*?` gaps accept anything, so a match exists iff the joints occur in
    order without overlapping. Taking each joint's leftmost occurrence after the previous one is
    optimal: a joint's leftmost occurrence also ends first, leaving the most room for the rest.
    """
    core = text.rstrip()
    if layout.leading_space:
        core = core.lstrip()
    pos, end = len(layout.opener), len(core) - len(layout.closer)
    if end < pos or not core.startswith(layout.opener) or not core.endswith(layout.closer):
        return False
    for joint in layout.joints:
        m = joint.search(core, pos, end)
        if m is None:
            return False
        pos = m.end()
    return True


def normalize_tags(text: str) -> str:
    """The text as Vision-SR1 reads its pass-1 tags: whitespace around `<`, `>` and `/` removed.

    The one tag normalisation of the See-Think layout: `see_think_format` checks the layout on this
    text and Vision-SR1's strict description extractor reads the description from it, so every
    response the format reward accepts has a description the extractor finds. Tag names stay
    case-sensitive, as in Vision-SR1's regex.

    >>> normalize_tags(" < description >\\n a / b </\\ndescription > <DESCRIPTION>")
    '<description>a/b</description><DESCRIPTION>'
    """
    return normalize_tag_spaces(text)


def see_think_format(text: str) -> float:
    r"""Vision-SR1 pass-1 format: `<description>…</description><think>…</think>\boxed{…}`.

    Checked on `normalize_tags(text)` (whitespace around `<`, `>` and `/` removed), as Vision-SR1 does.

    >>> see_think_format("<description> a cube </description> <think> 1 </think> \\boxed{1}")
    1.0
    >>> see_think_format("<think>1</think> \\boxed{1}")
    0.0
    """
    text = normalize_tags(text)
    ok = _layout_matches(text, _SEE_THINK) and SEE_THINK_PATTERN.fullmatch(text) is not None
    return 1.0 if ok else 0.0


def cot_format(text: str) -> float:
    r"""Vision-R1 format: `<think>…</think>` then `\boxed{…}`, nothing before `<think>`.

    No tag-space normalisation, as in Vision-R1's `cot_val.py`.

    >>> cot_format("<think>count</think>\n\\boxed{3}\n")
    1.0
    >>> cot_format(" <think>count</think>\\boxed{3}")  # leading space is not allowed
    0.0
    """
    ok = _layout_matches(text, _COT) and COT_PATTERN.fullmatch(text) is not None
    return 1.0 if ok else 0.0


def pass2_format(text: str) -> float:
    r"""Vision-SR1 `description_format` of the pass-2 answer; logged, never rewarded.

    Same check as `cot_format`, as in Vision-SR1's `self_reward.py` (the older
    `see_think_selfReward.py` reused the pass-1 regex, so it was always 0).

    >>> pass2_format("<think>the description says 3</think> \\boxed{3}")
    1.0
    """
    return cot_format(text)


def think_answer_format(text: str) -> float:
    """`<think>…</think>` then `<answer>…</answer>`, whitespace allowed between and around.

    >>> think_answer_format(" <think>B fits</think>\\n<answer>B</answer> ")
    1.0
    >>> think_answer_format("<think>B fits</think><answer>B</answer> extra")
    0.0
    """
    ok = _layout_matches(text, _THINK_ANSWER) and THINK_ANSWER_PATTERN.fullmatch(text) is not None
    return 1.0 if ok else 0.0


# EasyR1 `examples/reward_function/math.py` (the LLaVA-Critic-R1 format reward), applied after its
# `re.sub(r"\s*(<|>|/)\s*", r"\1", response)`. Greedy `.*` and trailing text allowed.
MATH_FORMAT_PATTERN = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)


def math_format(text: str) -> float:
    r"""EasyR1 math format: starts with `<think>`, then `</think>`, then `\boxed{`, then a `}`; anything after.

    Equal to `MATH_FORMAT_PATTERN.fullmatch(normalize_tag_spaces(text))` (a property test checks it) but
    linear: each literal's leftmost occurrence after the previous one leaves the most room for the rest,
    where the greedy regex backtracks over every `</think>` (quadratic on adversarial text).

    >>> math_format("<think> 2 is wrong </think> so \\boxed{1} done")
    1.0
    >>> math_format("answer: <think>x</think>\\boxed{1}")  # text before <think>
    0.0
    """
    text = normalize_tag_spaces(text)
    if not text.startswith("<think>"):
        return 0.0
    i = text.find("</think>", len("<think>"))
    j = -1 if i < 0 else text.find("\\boxed{", i + len("</think>"))
    return 1.0 if j >= 0 and text.find("}", j + len("\\boxed{")) >= 0 else 0.0
