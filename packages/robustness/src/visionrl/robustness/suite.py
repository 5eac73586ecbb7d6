"""The robustness suite on one model: every record under every variant → greedy completion, parsed answer,
letter distribution at `<answer>`, and each judge's verdict on the reasoning.

Per (item, variant): (1) generate greedily from the prompt + assistant prefill; (2) parse the option letter
out of `<answer>` (format validity: `<think>…</think><answer>…</answer>` over prefill + completion); (3) one
teacher-forced forward up to `<answer>` for the restricted letter distribution (core `evaluation/letters.py`); (4) the
judges read the whole reasoning (prefill included: a model that writes past an injected wrong think and
answers correctly is *inconsistent*, the paper's "stubborn expert").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from visionrl.core.data.records import MCQRecord
from visionrl.core.evaluation.letters import ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, scoring_prefill
from visionrl.core.rewards import extract_choice_letter, think_answer_format
from visionrl.robustness.judge import NONE, Judge, JudgeItem, is_consistent, quadrant
from visionrl.robustness.perturb import Perturbed, perturb_all
from visionrl.robustness.prompts import ABSTAIN_OPTION


@dataclass
class ItemResult:
    """One (item, variant) row of predictions.jsonl."""

    id: str
    benchmark: str
    variant: str
    answer: str
    """Gold letter."""
    wrong_letter: str
    asserted_letter: str | None
    prefix: str
    caption: str
    completion: str
    """The model's greedy continuation after the prefix."""
    scoring_prompt: str
    """The exact text (chat template, prefill, completion up to `<answer>`) whose next-token logits give
    the letter probabilities."""
    letter_probs: dict[str, float]
    p_correct: float
    entropy: float
    entropy_norm: float
    parsed: str | None
    """Option letter read from the answer, or None."""
    format_ok: bool
    correct: bool
    think: str
    reasoning_choice: str = NONE
    """The primary (first) judge's reading of the reasoning."""
    consistent: bool = False
    quadrant: str = ""
    judges: dict[str, str] = field(default_factory=dict)
    """Every judge's reasoning choice."""
    abstain_letter: str | None = None
    """The letter of the abstain option when the variant offers one."""
    images: list[str] = field(default_factory=list)
    """Image paths (relative to the output dir) when the caller saved them."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def think_text(full: str) -> str:
    """The reasoning: the first `<think>` block, or what follows an unclosed `<think>` up to `<answer>`.

    >>> think_text("<think>a, so B</think><answer>B</answer>"), think_text("<think>open <answer>C")
    ('a, so B', 'open')
    """
    i = full.find(THINK_OPEN)
    if i == -1:
        return ""
    body = full[i + len(THINK_OPEN) :]
    for stop in (THINK_CLOSE, ANSWER_OPEN):
        j = body.find(stop)
        if j != -1:
            body = body[:j]
    return body.strip()


def _batches(n: int, size: int) -> list[range]:
    return [range(lo, min(n, lo + size)) for lo in range(0, n, size)]


def generate(
    vlm: Any, items: Sequence[Perturbed], *, batch_size: int, max_new_tokens: int, progress: bool = True
) -> list[str]:
    """Greedy completions after each item's prefill."""
    from tqdm.auto import tqdm
    from visionrl.core.rollout import SamplingParams, generate_texts

    greedy = SamplingParams(do_sample=False, max_new_tokens=max_new_tokens)
    texts: list[str] = []
    for idx in tqdm(_batches(len(items), batch_size), desc="generate", disable=not progress, leave=False):
        texts += generate_texts(vlm, [items[i].prompt for i in idx], greedy, batch_size=batch_size)
    return texts


def score(
    vlm: Any,
    items: Sequence[Perturbed],
    completions: Sequence[str],
    *,
    batch_size: int,
    progress: bool = True,
) -> list[tuple[str, dict[str, Any]]]:
    """(scoring prompt text, letter stats) per item."""
    import dataclasses

    from tqdm.auto import tqdm
    from visionrl.core.evaluation.letters import letter_token_ids, stats_for

    letters = [sorted(it.options) for it in items]
    ids = letter_token_ids(vlm.tokenizer, sorted({x for row in letters for x in row}))
    prompts = [
        dataclasses.replace(it.prompt, prefill=scoring_prefill(it.prefix, c))
        for it, c in zip(items, completions)
    ]
    out: list[tuple[str, dict[str, Any]]] = []
    for idx in tqdm(_batches(len(items), batch_size), desc="score", disable=not progress, leave=False):
        stats = stats_for(
            vlm, [prompts[i] for i in idx], [letters[i] for i in idx], [items[i].answer for i in idx], ids
        )
        out += [(vlm.render(prompts[i]), s) for i, s in zip(idx, stats)]
    return out


def judge_all(results: Sequence[ItemResult], items: Sequence[Perturbed], judges: Sequence[Judge]) -> None:
    """Fill each result's judge choices, consistency (primary judge) and quadrant, in place."""
    queries = [JudgeItem(it.question, it.options, r.think, r.parsed) for r, it in zip(results, items)]
    for j, judge in enumerate(judges):
        verdicts = judge(queries)
        for r, v in zip(results, verdicts):
            r.judges[judge.name] = v.choice
            if j == 0:
                r.reasoning_choice = v.choice
    for r in results:
        r.consistent = is_consistent(r.reasoning_choice, r.parsed)
        r.quadrant = quadrant(r.correct, r.consistent)


def run_suite(
    vlm: Any,
    benchmarks: dict[str, list[MCQRecord]],
    variants: Sequence[str],
    judges: Sequence[Judge],
    *,
    seed: int = 0,
    batch_size: int = 32,
    max_new_tokens: int = 64,
    progress: bool = True,
) -> list[ItemResult]:
    """Every record of every benchmark under every variant; results in (benchmark, variant, record) order."""
    assert judges, "the suite needs at least one judge"
    results: list[ItemResult] = []
    was_training = vlm.model.training
    vlm.model.eval()
    try:
        for bench, records in benchmarks.items():
            items = perturb_all(records, variants, seed)
            completions = generate(
                vlm, items, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress
            )
            scored = score(vlm, items, completions, batch_size=batch_size, progress=progress)
            part = [
                _result(bench, it, c, text, stats) for it, c, (text, stats) in zip(items, completions, scored)
            ]
            judge_all(part, items, judges)
            results += part
    finally:
        vlm.model.train(was_training)
    return results


def _result(
    bench: str, it: Perturbed, completion: str, scoring_text: str, stats: dict[str, Any]
) -> ItemResult:
    full = it.prefix + completion
    letters = "".join(sorted(it.options))
    abstain = next(
        (k for k, v in it.options.items() if v == ABSTAIN_OPTION and k not in it.record.options), None
    )
    parsed = extract_choice_letter(full, letters)
    return ItemResult(
        id=it.record.id,
        benchmark=bench,
        variant=it.variant,
        answer=it.answer,
        wrong_letter=it.wrong_letter,
        asserted_letter=it.asserted_letter,
        prefix=it.prefix,
        caption=it.caption,
        completion=completion,
        scoring_prompt=scoring_text,
        letter_probs=stats["letter_probs"],
        p_correct=stats["p_correct"],
        entropy=stats["entropy"],
        entropy_norm=stats["entropy_norm"],
        parsed=parsed,
        format_ok=think_answer_format(full) == 1.0,
        correct=parsed == it.answer,
        think=think_text(full),
        abstain_letter=abstain,
    )
