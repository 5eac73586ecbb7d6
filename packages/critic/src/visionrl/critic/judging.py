"""The model as a pairwise critic, the authors' way: which of two shown answers is better, and where it sits.

A verdict is read from the last `\\boxed{}` (`1`, `2`, also `Answer 1`), else from VL-RewardBench's
"Overall Judgment: Answer X is better" pattern, else it is unparsed (None). The judge is core's
`GenerativeJudge` (it counts its generations: the judge calls a self-critic report quotes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from visionrl.core.data.records import PairRecord
from visionrl.core.evaluation.pairwise_scoring import Outcome, outcome_from_position, presented
from visionrl.core.evaluation.pairwise_verdicts import parse_boxed_choice, parse_overall_judgment

Position = Literal[1, 2]


def parse_verdict(text: str) -> Position | None:
    r"""The shown position a critic's text names: last box, else "Overall Judgment", else None.

    >>> parse_verdict(r"<think>x</think> \boxed{2}"), parse_verdict("Overall Judgment: Answer 1 is better.")
    (2, 1)
    >>> parse_verdict(r"\boxed{3}") is None
    True
    """
    return parse_boxed_choice(text) or parse_overall_judgment(text)


@dataclass(frozen=True)
class Comparison:
    """One judge call: a question, its images, and two answers in the order they are shown."""

    question: str
    images: list[Any] = field(default_factory=list)
    first: str = ""
    second: str = ""


@dataclass(frozen=True)
class Verdict:
    position: Position | None
    """1: the first shown answer is better; 2: the second; None: unparsed."""
    text: str


def critic_judge(vlm: Any, *, max_new_tokens: int, batch_size: int = 16, prefill: str = "",
                 engine: str = "hf", name: str = "self") -> Any:
    """A `GenerativeJudge[Comparison, Verdict]`: harness prompt (system, image first), greedy decoding."""
    from visionrl.core.evaluation.judges import GenerativeJudge
    from visionrl.core.hparams import SamplingParams
    from visionrl.critic.prompts import eval_critic_prompt

    def render(c: Comparison) -> Any:
        return eval_critic_prompt(c.question, c.first, c.second, c.images, prefill=prefill)

    return GenerativeJudge(vlm, name=name, render=render, parse=lambda text, _: Verdict(parse_verdict(text), text),
                           sampling=SamplingParams(do_sample=False, max_new_tokens=max_new_tokens),
                           batch_size=batch_size, engine=engine)


def mirrored(record: PairRecord) -> PairRecord:
    """The same pair shown in the other order."""
    from dataclasses import replace

    return replace(record, meta={**record.meta, "flip": not record.meta.get("flip")})


@dataclass
class PairJudgement:
    """A benchmark pair judged in its recorded order (and, with both orders, in the other one too)."""

    record: PairRecord
    shown: Verdict
    other: Verdict | None = None

    @property
    def outcome(self) -> Outcome:
        return outcome_from_position(self.record, self.shown.position)

    def by_chosen_position(self) -> tuple[Outcome, Outcome]:
        """(outcome with the chosen answer shown first, outcome with it shown second); needs both orders."""
        assert self.other is not None, "judged in one order only"
        other = outcome_from_position(mirrored(self.record), self.other.position)
        return (other, self.outcome) if self.record.meta.get("flip") else (self.outcome, other)


def judge_pairs(judge: Any, records: Sequence[PairRecord], *, both_orders: bool = False) -> list[PairJudgement]:
    """Judge every pair as recorded (`meta["flip"]`: chosen shown second), and mirrored when `both_orders`."""
    def comparison(r: PairRecord) -> Comparison:
        first, second = presented(r)
        return Comparison(r.prompt, list(r.images), first, second)

    shown = judge([comparison(r) for r in records])
    other = judge([comparison(mirrored(r)) for r in records]) if both_orders else [None] * len(records)
    return [PairJudgement(r, s, o) for r, s, o in zip(records, shown, other)]
