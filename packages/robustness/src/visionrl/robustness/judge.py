"""Faithfulness (think ≡ answer): which option the reasoning concludes, by a rule judge or an LLM judge,
compared with the final answer; agreement between several judges (strict agreement, Fleiss' κ).

A judge is core's `Judge` (`visionrl.core.evaluation.judges`): `judge(items) -> list[Verdict]` with a
`name`; `make_judge` resolves `rule`, `self` or a model id into one. NONE (the reasoning commits to no
option, or the verdict cannot be parsed) counts as inconsistent (robustness-cot.md §1.4, [R]).
Consistency is computed here from the judge's `reasoning_choice` and the parsed answer, not taken from
the judge's own "consistent" field, so every judge is held to one definition (the field is kept in `raw`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from visionrl.core.evaluation.judges import Judge as CoreJudge

NONE = "NONE"


@dataclass(frozen=True)
class JudgeItem:
    """What a judge reads: the question, the shown options, the full reasoning and the parsed answer."""

    question: str
    options: dict[str, str]
    think: str
    answer: str | None


@dataclass(frozen=True)
class Verdict:
    choice: str
    """The option letter the reasoning concludes, or NONE."""
    parsed: bool = True
    """False when an LLM judge's output held no readable verdict (the choice is then NONE)."""
    raw: str = ""


Judge = CoreJudge[JudgeItem, Verdict]


def is_consistent(choice: str, answer: str | None) -> bool:
    """think ≡ answer: the reasoning commits to the option that was answered (NONE is inconsistent)."""
    return choice != NONE and answer is not None and choice == answer


QUADRANTS: tuple[str, ...] = (
    "consistent-correct",
    "inconsistent-correct",
    "consistent-incorrect",
    "inconsistent-incorrect",
)


def quadrant(correct: bool, consistent: bool) -> str:
    """The item's cell of the correct × consistent table.

    >>> quadrant(True, False)
    'inconsistent-correct'
    """
    return f"{'consistent' if consistent else 'inconsistent'}-{'correct' if correct else 'incorrect'}"


# ---- rule judge -----------------------------------------------------------------------------------------
_CONCLUSION = re.compile(
    r"(?i:answer|option|choice)\s*+(?i:is|should be|would be|must be|:)?\s*+(?i:option|choice)?\s*+"
    r"\(?([A-Z])(?![A-Za-z0-9])"
)


class RuleJudge:
    """The reasoning's choice is the letter of its last "answer is X" / "answer should be X" / "option X"
    phrase (only the item's letters count); NONE when there is none."""

    name = "rule"

    def __call__(self, items: Sequence[JudgeItem]) -> list[Verdict]:
        return [Verdict(self.choice(it.think, it.options)) for it in items]

    @staticmethod
    def choice(think: str, options: dict[str, str]) -> str:
        """
        >>> RuleJudge.choice("blue, so the answer is A. Wait, the answer should be (C)", {"A": "", "C": ""})
        'C'
        >>> RuleJudge.choice("the answer is clearly blue", {"A": "", "B": ""})
        'NONE'
        """
        hits = [m.group(1) for m in _CONCLUSION.finditer(think) if m.group(1) in options]
        return hits[-1] if hits else NONE


# ---- LLM judge ------------------------------------------------------------------------------------------
_OBJECT = re.compile(r"\{[^{}]*\}")
_FIELD = re.compile(r"reasoning_choice\W{0,4}([A-Za-z]+)")


def parse_verdict(text: str, letters: Sequence[str]) -> Verdict:
    """Read `{"reasoning_choice": "B", "consistent": false}` out of a judge's output (the last JSON object
    that has the field; else the field written loosely); an unknown letter becomes NONE.

    >>> parse_verdict('Sure. {"reasoning_choice": "b", "consistent": true}', "ABCD").choice
    'B'
    >>> v = parse_verdict("no idea", "ABCD"); (v.choice, v.parsed)
    ('NONE', False)
    """
    value: str | None = None
    for obj in reversed(_OBJECT.findall(text)):
        try:
            data = json.loads(obj)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "reasoning_choice" in data:
            value = str(data["reasoning_choice"])
            break
    if value is None:
        m = _FIELD.search(text)
        value = m.group(1) if m else None
    if value is None:
        return Verdict(NONE, parsed=False, raw=text)
    choice = value.strip().strip("()").upper()
    return Verdict(choice if choice in letters else NONE, parsed=True, raw=text)


def LLMJudge(vlm: Any, name: str = "llm", *, batch_size: int = 16, max_new_tokens: int = 64) -> Judge:  # noqa: N802
    """Any local or hub VLM/LLM answering the recommended judge prompt greedily (core's `GenerativeJudge`:
    verdicts are cached by prompt, so re-judging the same reasoning costs nothing)."""
    from visionrl.core.chat import Prompt
    from visionrl.core.evaluation.judges import GenerativeJudge
    from visionrl.core.hparams import SamplingParams
    from visionrl.robustness.prompts import judge_prompt

    return GenerativeJudge(
        vlm,
        name=name,
        render=lambda it: Prompt([judge_prompt(it.question, it.options, it.think, it.answer or "")]),
        parse=lambda text, it: parse_verdict(text, list(it.options)),
        sampling=SamplingParams(do_sample=False, max_new_tokens=max_new_tokens),
        batch_size=batch_size,
    )


def make_judge(
    spec: str,
    *,
    flag: str,
    evaluated: Any,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    loaded: dict[str, Any] | None = None,
) -> Judge:
    """The judge `spec` names: `rule`, `self` (the evaluated model) or a model id (loaded once per name)."""
    from visionrl.core.evaluation.judges import resolve_judge

    return resolve_judge(
        spec,
        flag=flag,
        evaluated=evaluated,
        rule=RuleJudge(),
        loaded=loaded,
        make=lambda vlm, name: LLMJudge(vlm, name, batch_size=batch_size, max_new_tokens=max_new_tokens),
    )


# ---- agreement between judges ---------------------------------------------------------------------------
def agreement(choices: Sequence[Sequence[str]], categories: Sequence[str]) -> dict[str, float]:
    """Strict agreement (all judges give the same choice) and Fleiss' κ over `categories`.

    Args:
        choices: one list per judge, one choice per item (the same items in the same order).
        categories: every possible choice (letters and NONE).
    """
    import torch
    from torchmetrics.functional.nominal import fleiss_kappa

    assert len(choices) >= 2, "agreement needs at least two judges"
    n = len(choices[0])
    assert all(len(c) == n for c in choices), "every judge must rate the same items"
    if n == 0:
        return {"strict_agreement": float("nan"), "fleiss_kappa": float("nan")}
    index = {c: i for i, c in enumerate(categories)}
    counts = torch.zeros(n, len(categories), dtype=torch.long)  # (items, categories): raters per category
    for judge_choices in choices:
        for i, c in enumerate(judge_choices):
            counts[i, index[c]] += 1
    strict = float((counts.max(dim=1).values == len(choices)).float().mean())
    return {"strict_agreement": strict, "fleiss_kappa": float(fleiss_kappa(counts, mode="counts"))}
