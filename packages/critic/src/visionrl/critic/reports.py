"""The three reports of `critic-eval`: the model as a critic, as a policy, and as its own best-of-N judge.

Each returns (metrics, sample rows). Metrics are flat `{name: number}` dicts per benchmark; sample rows go to
`samples.jsonl` with the generated texts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import PairRecord, VQARecord
from visionrl.core.evaluation.pairwise_scoring import Outcome, position_bias


# ---- critic ------------------------------------------------------------------------------------------
def category_scores(records: Sequence[PairRecord], outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Accuracy over all items (count-weighted; unparsed = wrong), per category, and the macro mean.

    >>> r = [PairRecord(str(i), [], "q", "a", "b", c) for i, c in enumerate("xxy")]
    >>> m = category_scores(r, ["chosen", None, "chosen"])
    >>> m["accuracy"], m["accuracy/x"], m["macro_accuracy"], m["unparsed"]
    (0.6666666666666666, 0.5, 0.75, 1.0)
    """
    groups: dict[str, list[Outcome]] = {}
    for rec, o in zip(records, outcomes):
        groups.setdefault(rec.category or "all", []).append(o)
    out = {"items": float(len(records)), "unparsed": float(sum(o is None for o in outcomes)),
           "accuracy": sum(o == "chosen" for o in outcomes) / max(1, len(outcomes))}
    for cat, os_ in sorted(groups.items()):
        out[f"accuracy/{cat}"] = sum(o == "chosen" for o in os_) / len(os_)
        out[f"items/{cat}"] = float(len(os_))
    out["macro_accuracy"] = sum(out[f"accuracy/{c}"] for c in groups) / max(1, len(groups))
    return out


def critic_report(judge: Any, name: str, records: Sequence[PairRecord], *, score: Any = None,
                  both_orders: bool = False) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Judge every pair (in both orders if asked); the benchmark's official scorer (`score`) first, then the
    per-category, count-weighted and macro numbers it lacks, then the position-bias metrics."""
    from visionrl.critic.judging import judge_pairs

    judged = judge_pairs(judge, records, both_orders=both_orders)
    outcomes = [j.outcome for j in judged]
    metrics = dict(score(records, outcomes)) if score is not None else {}
    for k, v in category_scores(records, outcomes).items():
        metrics.setdefault(k, v)
    if both_orders:
        first, second = zip(*(j.by_chosen_position() for j in judged)) if judged else ((), ())
        metrics.update({f"both_orders/{k}": v for k, v in position_bias(first, second).items()})
        metrics["consistency"] = metrics["both_orders/consistency"]
        metrics["position1_rate"] = metrics["both_orders/position1_rate"]
        metrics["both_orders_accuracy"] = metrics["both_orders/both_orders_accuracy"]
    rows = [{"report": "critic", "benchmark": name, "id": j.record.id, "category": j.record.category,
             "flip": bool(j.record.meta.get("flip")), "verdict": j.shown.position, "outcome": j.outcome,
             "completion": j.shown.text,
             **({"other_verdict": j.other.position, "other_completion": j.other.text} if j.other else {})}
            for j in judged]
    return metrics, rows


# ---- policy ------------------------------------------------------------------------------------------
def policy_report(vlm: Any, name: str, records: Sequence[VQARecord], *, max_new_tokens: int, batch_size: int,
                  prefill: str = "", engine: str = "hf") -> tuple[dict[str, float], list[dict[str, Any]], list[str]]:
    """Greedy answers to the harness prompts, graded; also returns the texts (the self-critic's greedy baseline)."""
    from visionrl.core.rollout import SamplingParams, generate_texts
    from visionrl.critic.policy import policy_prompts, score_policy

    texts = [prefill + t for t in generate_texts(vlm, policy_prompts(records, prefill),
                                                 SamplingParams(do_sample=False, max_new_tokens=max_new_tokens),
                                                 batch_size=batch_size, engine=engine)]
    metrics, right = score_policy(records, texts)
    rows = [{"report": "policy", "benchmark": name, "id": r.id, "question": r.question, "answer": r.answer,
             "answer_type": r.meta["answer_type"], "completion": t, "correct": ok}
            for r, t, ok in zip(records, texts, right)]
    return metrics, rows, texts


# ---- self-critic -------------------------------------------------------------------------------------
def model_judge_fn(judge: Any) -> Any:
    """A `selfcritic.JudgeFn` over a critic `GenerativeJudge`: (record, first, second) -> 1 / 2 / None."""
    from visionrl.critic.judging import Comparison

    def judge_fn(triples: Sequence[tuple[VQARecord, str, str]]) -> list[int | None]:
        return [v.position for v in judge([Comparison(r.question, list(r.images), a, b) for r, a, b in triples])]

    return judge_fn


def sample_candidates(vlm: Any, records: Sequence[VQARecord], n: int, *, temperature: float, top_p: float,
                      max_new_tokens: int, batch_size: int, prefill: str = "", engine: str = "hf") -> list[list[str]]:
    """N answers per question at the training rollout's sampling settings (prefill included in each text)."""
    from visionrl.core.rollout import SamplingParams, generate_texts
    from visionrl.critic.policy import policy_prompts

    prompts = [p for p in policy_prompts(records, prefill) for _ in range(n)]
    sampling = SamplingParams(temperature=temperature, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens)
    texts = [prefill + t for t in generate_texts(vlm, prompts, sampling, batch_size=batch_size, engine=engine)]
    return [texts[i * n:(i + 1) * n] for i in range(len(records))]


def shown_candidate(text: str, form: str) -> str:
    r"""What the judge sees of a candidate: the `full` text (think + answer), or its final `answer` only.

    >>> shown_candidate(r"<think>the left one is red</think> \boxed{red}", "answer")
    'red'
    """
    from visionrl.core.rewards import answer_span

    return text if form == "full" else answer_span(text)


def self_critic_report(records: Sequence[VQARecord], candidates: Sequence[Sequence[str]], greedy: Sequence[str],
                       judge_fn: Any, *, strategy: str, both_orders: bool = False, shown: str = "full",
                       seed: int = 0) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Greedy vs majority vote vs self-critic vs oracle pass@N on the same questions, with judge-call counts.
    The judge sees each candidate as `shown` says (`full` or `answer`); grading reads the full text."""
    from visionrl.critic.policy import answer_key, is_correct
    from visionrl.critic.selfcritic import majority_vote, oracle_pass_at_n, select_many

    groups = [(r, [shown_candidate(c, shown) for c in cands]) for r, cands in zip(records, candidates)]
    picks = select_many(groups, judge_fn, strategy, both_orders=both_orders, rng=random.Random(seed))
    rows, sums = [], {"greedy": 0.0, "majority": 0.0, "self_critic": 0.0, "oracle": 0.0, "sample": 0.0}
    for r, cands, g, pick in zip(records, candidates, greedy, picks):
        kind = r.meta["answer_type"]
        right = [is_correct(c, r.answer, kind) for c in cands]
        vote = majority_vote([answer_key(c, kind) for c in cands])
        res = {"greedy": is_correct(g, r.answer, kind), "majority": vote is not None and right[vote],
               "self_critic": right[pick.index], "oracle": oracle_pass_at_n(right), "sample": sum(right) / len(right)}
        for k, v in res.items():
            sums[k] += float(v)
        rows.append({"report": "self-critic", "id": r.id, "answer": r.answer, "candidates": list(cands),
                     "correct": right, "chosen": pick.index, "majority": vote, "judge_calls": pick.calls,
                     **{k: v for k, v in res.items() if k != "sample"}})
    q = max(1, len(records))
    calls = sum(p.calls for p in picks)
    metrics = {f"{k}_accuracy" if k != "oracle" else "oracle_pass_at_n": v / q for k, v in sums.items()}
    metrics.update({"n": float(len(candidates[0]) if candidates else 0), "questions": float(len(records)),
                    "judge_calls": float(calls), "judge_calls_per_question": calls / q,
                    "unparsed_verdicts": sum(p.unparsed for p in picks) / max(1, calls),
                    "coin_flips": float(sum(p.coin_flips for p in picks))})
    return metrics, rows
