"""Held-out numbers of the demo model in every format, next to each format's blind baseline.

`visionrl.core.demo` runs `evaluate_formats` once after building the model and writes the result into
`demo_report.json`; the cache key hashes this file too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from visionrl.core import prompts as P
from visionrl.core.data.records import MCQRecord, PairRecord, VQARecord
from visionrl.core.data.shapes import blind_baseline
from visionrl.core.demo_teacher import HELDOUT_SEED, demo_pairs, demo_world, heldout_records, image_first


def _greedy(vlm: Any, prompts: Sequence[Any], max_new_tokens: int) -> list[str]:
    from visionrl.core.rollout import SamplingParams, generate_texts

    return generate_texts(vlm, prompts, SamplingParams(do_sample=False, max_new_tokens=max_new_tokens),
                          engine="lean")


def see_think_accuracy(vlm: Any, records: Sequence[VQARecord], max_new_tokens: int = 64) -> dict[str, list[float]]:
    """Greedy See-Think accuracy and format validity per record."""
    from visionrl.core.chat import Prompt
    from visionrl.core.rewards import extract_boxed, grade_answer, see_think_format

    prompts = [Prompt(P.format_segments(r.question, P.SEE_THINK_INSTRUCTION), list(r.images)) for r in records]
    texts = _greedy(vlm, prompts, max_new_tokens)
    acc = [float(grade_answer(extract_boxed(t), r.answer)) for t, r in zip(texts, records)]
    return {"accuracy": acc, "format": [see_think_format(t) for t in texts]}


def letter_scores(vlm: Any, prompts: Sequence[Any], texts: Sequence[str], records: Sequence[MCQRecord]
                  ) -> dict[str, list[float]]:
    """P(correct letter) and letter entropy / ln K right after `<answer>` (after the model's own think,
    `</think><answer>` teacher-forced where it wrote none): the robustness suite's letter scores
    (`core.evaluation.letters`), one forward per batch."""
    from visionrl.core.evaluation.letters import letter_token_ids, scoring_prefill, stats_for

    ids = letter_token_ids(vlm.tokenizer, sorted({k for r in records for k in r.options}))
    out: dict[str, list[float]] = {"p_correct": [], "entropy_norm": []}
    for lo in range(0, len(records), 64):
        batch = records[lo:lo + 64]
        scored = [replace(p, prefill=scoring_prefill(p.prefill, t)) for p, t in zip(prompts[lo:lo + 64], texts[lo:lo + 64])]
        for st in stats_for(vlm, scored, [list(r.options) for r in batch], [r.answer for r in batch], ids):
            out["p_correct"].append(st["p_correct"])
            out["entropy_norm"].append(st["entropy_norm"])
    return out


def mcq_scores(vlm: Any, records: Sequence[MCQRecord], max_new_tokens: int = 48) -> dict[str, list[float]]:
    """Greedy MCQ accuracy, think/answer format and letter scores per record (the robustness suite's base
    prompt and its demo token budget)."""
    from visionrl.core.rewards import extract_choice_letter, think_answer_format

    prompts = [image_first(P.mcq_prompt(r.question, r.options), r.images) for r in records]
    texts = _greedy(vlm, prompts, max_new_tokens)
    acc = [float(extract_choice_letter(t) == r.answer) for t, r in zip(texts, records)]
    return {"accuracy": acc, "format": [think_answer_format(t) for t in texts],
            **letter_scores(vlm, prompts, texts, records)}


def pairwise_scores(vlm: Any, pairs: Sequence[PairRecord], kind: str, max_new_tokens: int = 48) -> dict[str, list[float]]:
    """Greedy critic (`\\boxed{1|2}`) or judge (`[[A]]|[[B]]`) verdicts on the answers in the order
    `meta["flip"]` shows them: accuracy, whether the first shown answer was picked, whether a verdict parsed."""
    from visionrl.core.evaluation.pairwise_scoring import outcome_from_position, presented
    from visionrl.core.evaluation.pairwise_verdicts import parse_boxed_choice, parse_bracket_verdict

    make, parse = (P.critic_prompt, parse_boxed_choice) if kind == "critic" else (P.judge_prompt, parse_bracket_verdict)
    texts = _greedy(vlm, [image_first(make(p.prompt, *presented(p)), p.images) for p in pairs], max_new_tokens)
    picks = [parse(t) for t in texts]
    return {"accuracy": [float(outcome_from_position(p, v) == "chosen") for p, v in zip(pairs, picks)],
            "position1_rate": [float(v in (1, "A")) for v in picks],
            "parsed": [float(v is not None) for v in picks]}


def per_question(questions: Sequence[str], values: Sequence[float]) -> dict[str, float]:
    """Mean of `values` per question text."""
    groups: dict[str, list[float]] = {}
    for q, v in zip(questions, values):
        groups.setdefault(q, []).append(v)
    return {k: round(sum(v) / len(v), 3) for k, v in sorted(groups.items())}


def per_template(records: Sequence[VQARecord], values: Sequence[float], key: str = "template") -> dict[str, float]:
    """Mean of `values` per question template (`key="question"`: per question text)."""
    return per_question([r.question if key == "question" else r.meta[key] for r in records], values)


def _summary(values: dict[str, list[float]], questions: Sequence[str], blind: float) -> dict[str, Any]:
    means = {k: round(sum(v) / len(v), 4) for k, v in values.items()}
    return {**means, "blind_baseline": round(blind, 4), "per_question": per_question(questions, values["accuracy"])}


def evaluate_formats(vlm: Any, n: int) -> dict[str, dict[str, Any]]:
    """Held-out numbers of every format next to its blind baseline (the best constant answer: per template
    for open questions, one letter for MCQ, one position for verdicts)."""
    held, mcq, pairs = heldout_records(n), demo_world(HELDOUT_SEED).mcq(n), demo_pairs(HELDOUT_SEED, n)
    flips = sum(bool(p.meta["flip"]) for p in pairs) / len(pairs)
    qs = [p.prompt for p in pairs]
    return {"see_think": _summary(see_think_accuracy(vlm, held), [r.question for r in held], blind_baseline(held)),
            "mcq": _summary(mcq_scores(vlm, mcq), [r.question for r in mcq], blind_baseline(mcq)),
            "critic": _summary(pairwise_scores(vlm, pairs, "critic"), qs, max(flips, 1 - flips)),
            "judge": _summary(pairwise_scores(vlm, pairs, "judge"), qs, max(flips, 1 - flips))}


