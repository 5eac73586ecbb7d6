"""Verdict parsers: which shown answer a judgement prefers, `"A"` (shown first), `"B"` (shown second) or None.

The primary parser of each prompt is core's (`visionrl.core.evaluation.pairwise_verdicts`): the last `[[A]]` /
`[[B]]` for the MMRB prompt, VL-RewardBench's "Overall Judgment: Answer X is better" regex for the VLRB prompt.
When it finds nothing, `fallback` reads common free-form endings instead ("Answer: B", "Response A is better",
"\\boxed{A}", "the better answer is Answer 2"); the last such statement in the text counts, and a text whose
statements name both sides without a final one is None. Benchmark scoring by the official rules turns the
fallback off (`parse_verdict(..., fallback=False)`).
"""

from __future__ import annotations

import re
from typing import Literal

from visionrl.core.evaluation.pairwise_verdicts import parse_bracket_verdict, parse_overall_judgment

Verdict = Literal["A", "B"]

# A side: A/B (capitals only: "a" is an article) or 1/2, optionally named and in parentheses or brackets.
_SIDE = r"(?:(?:assistant|answer|response|option|output)\s*)?[\[(]?((?-i:[AB])|[12])[\])]?"
_END = r"(?=\s*(?:[.!,;:]|\n|$))"  # the side ends the statement: "Answer: A red ball" names no side
# Each pattern reads one side; the last match in the text is the judgement's conclusion.
_FALLBACKS = (
    # "Final verdict: [A]", "Verdict: B", "Answer: A", "Final answer: Answer 2", "Choice - 1"
    re.compile(rf"(?:verdict|answer|choice|judgment|judgement|decision)\s*[:\-=]\s*{_SIDE}{_END}", re.IGNORECASE),
    # "Response A is better", "Assistant B's answer is better", "Answer 2 is slightly better"
    re.compile(r"(?:assistant|answer|response|output|option)\s*\(?((?-i:[AB])|[12])\)?(?:'s\s+(?:answer|response))?"
               r"\s+is\s+(?:the\s+)?(?:slightly\s+|much\s+|clearly\s+)?(?:better|more\s+accurate|preferred|correct)",
               re.IGNORECASE),
    # "the better answer is Answer 2", "I prefer Response A"
    re.compile(rf"(?:better\s+(?:answer|response|one)\s+is|I\s+(?:prefer|choose|pick))\s+{_SIDE}{_END}",
               re.IGNORECASE),
    # "\boxed{A}", "\boxed{Answer 2}", "\boxed{\text{B}}"
    re.compile(r"\\boxed\{\s*(?:\\text\{)?\s*(?:(?:assistant|answer|response)\s*)?((?-i:[AB])|[12])\s*\}?\s*\}",
               re.IGNORECASE),
    # "[A]" alone on a line (a single bracket where the format asked for two)
    re.compile(r"^\s*\[([AB])\]\s*$", re.MULTILINE),
)
_SIDES: dict[str, Verdict] = {"A": "A", "1": "A", "B": "B", "2": "B"}


def fallback_verdict(text: str) -> Verdict | None:
    """The side the last free-form verdict statement in `text` names, or None.

    >>> fallback_verdict("Both are close. Response B is better.")
    'B'
    >>> fallback_verdict("Verdict: A")
    'A'
    >>> fallback_verdict("It is hard to say.") is None
    True
    """
    best: tuple[int, Verdict] | None = None
    for pattern in _FALLBACKS:
        for m in pattern.finditer(text):
            side = _SIDES.get(m.group(1))
            if side is not None and (best is None or m.end() > best[0]):
                best = (m.end(), side)
    return best[1] if best else None


def parse_mmrb(text: str, fallback: bool = True) -> Verdict | None:
    """`[[A]]` / `[[B]]` (the last one), else the free-form fallback.

    >>> parse_mmrb("Assistant A names the right colour. [[A]]"), parse_mmrb("[[B]]"), parse_mmrb("[[C]]") is None
    ('A', 'B', True)
    """
    verdict = parse_bracket_verdict(text)
    return verdict if verdict is not None or not fallback else fallback_verdict(text)


def parse_vlrb(text: str, fallback: bool = True) -> Verdict | None:
    """VL-RewardBench's "Overall Judgment: Answer X is better" (X = 1 → A, 2 → B), else the fallback.

    >>> parse_vlrb("Overall Judgment: Answer 2 is better."), parse_vlrb("Answer 3 is better", fallback=False)
    ('B', None)
    """
    number = parse_overall_judgment(text)
    if number is not None:
        return "A" if number == 1 else "B"
    return fallback_verdict(text) if fallback else None


PARSERS = {"mmrb": parse_mmrb, "vlrb": parse_vlrb}
"""Judge prompt style → its parser."""


def parse_verdict(style: str, text: str, *, fallback: bool = True) -> Verdict | None:
    """The verdict of a judgement written for the `style` prompt."""
    return PARSERS[style](text, fallback)
