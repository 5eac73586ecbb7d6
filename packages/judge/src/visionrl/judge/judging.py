"""Stage II: the judge rates pairs in both orders; the filter keeps the verdicts that match the synthetic label.

Filter (reference §1.6): a pair's traces are kept only when the judge is right in both orders (`both`; one right
trace per order is kept, the first of the K samples), or every right trace (`single`, the ablation). Unparsed
verdicts count as wrong. Retention = kept traces / (2 × pairs judged), overall and per category, so both modes
report on one scale.

The held-out evaluation judges greedily in both orders and reports core's `position_bias` metrics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.judge.prompts import ORDERS, Order, judge_prompt
from visionrl.judge.verdicts import parse_verdict

RIGHT: dict[Order, str] = {"chosen_first": "A", "chosen_second": "B"}
"""The verdict that names the chosen answer in each order."""


def shown(pair: PairRecord, order: Order) -> tuple[str, str]:
    """The two answers as shown (A, B)."""
    return (pair.chosen, pair.rejected) if order == "chosen_first" else (pair.rejected, pair.chosen)


def order_prompt(pair: PairRecord, order: Order, style: str) -> Any:
    first, second = shown(pair, order)
    return judge_prompt(style, pair.prompt, first, second, pair.images)  # type: ignore[arg-type]


def sample_groups(vlm: Any, prompts: Sequence[Any], n: int, sampling: Any, *, engine: str,
                  batch_size: int) -> list[list[str]]:
    """`n` sampled completions per prompt, grouped per prompt."""
    from visionrl.core.rollout import generate_rollout

    if not prompts:
        return []
    rollout = generate_rollout(vlm, prompts, list(range(len(prompts))), num_generations=n, sampling=sampling,
                               engine=engine, batch_size=batch_size)
    return [rollout.texts[i * n:(i + 1) * n] for i in range(len(prompts))]


def greedy(vlm: Any, prompts: Sequence[Any], max_new_tokens: int, *, engine: str, batch_size: int) -> list[str]:
    """One greedy completion per prompt."""
    from visionrl.core.hparams import SamplingParams
    from visionrl.core.rollout import generate_texts

    if not prompts:
        return []
    return generate_texts(vlm, prompts, SamplingParams(do_sample=False, max_new_tokens=max_new_tokens),
                          engine=engine, batch_size=batch_size)


def judge_rows(vlm: Any, pairs: Sequence[PairRecord], *, style: str, samples: int, sampling: Any, engine: str,
               batch_size: int) -> list[dict[str, Any]]:
    """K sampled judgements per pair and order: `{pair, category, chosen_first: [...], chosen_second: [...]}`,
    each judgement `{text, verdict, correct}`."""
    prompts = [order_prompt(p, o, style) for p in pairs for o in ORDERS]
    groups = sample_groups(vlm, prompts, samples, sampling, engine=engine, batch_size=batch_size)
    rows = []
    for i, pair in enumerate(pairs):
        row: dict[str, Any] = {"pair": pair.id, "category": pair.category}
        for j, order in enumerate(ORDERS):
            verdicts = [parse_verdict(style, t) for t in groups[2 * i + j]]
            row[order] = [{"text": t, "verdict": v, "correct": v == RIGHT[order]}
                          for t, v in zip(groups[2 * i + j], verdicts)]
        rows.append(row)
    return rows


def filter_traces(rows: Sequence[dict[str, Any]], mode: str) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Kept traces `{pair, order, text, category}` and the retention statistics of one iteration."""
    kept: list[dict[str, Any]] = []
    count: Counter[str] = Counter()
    for row in rows:
        cat = row["category"]
        right = {o: next((s["text"] for s in row[o] if s["correct"]), None) for o in ORDERS}
        keep = [o for o in ORDERS if right[o] is not None]
        if mode == "both" and len(keep) < 2:
            keep = []
        kept += [{"pair": row["pair"], "order": o, "text": right[o], "category": cat} for o in keep]
        judged = [s for o in ORDERS for s in row[o]]
        count.update({"pairs": 1, f"pairs/{cat}": 1, "kept": len(keep), f"kept/{cat}": len(keep),
                      "judgements": len(judged), "right": sum(s["correct"] for s in judged),
                      "unparsed": sum(s["verdict"] is None for s in judged),
                      "verdict_a": sum(s["verdict"] == "A" for s in judged)})
    stats = {k: float(v) for k, v in sorted(count.items())}
    for key in [k for k in count if k == "pairs" or k.startswith("pairs/")]:
        suffix = key.removeprefix("pairs")
        stats[f"retention{suffix}"] = count[f"kept{suffix}"] / (2 * count[key])
    if count["judgements"]:
        stats["label_agreement"] = count["right"] / count["judgements"]
    return kept, stats


def heldout_rows(vlm: Any, records: Sequence[PairRecord], *, style: str, max_new_tokens: int, engine: str,
                 batch_size: int, fallback: bool = True) -> list[dict[str, Any]]:
    """Greedy judgements of each record in both orders: `{id, chosen_first: {text, verdict}, chosen_second: ...}`."""
    prompts = [order_prompt(r, o, style) for r in records for o in ORDERS]
    texts = greedy(vlm, prompts, max_new_tokens, engine=engine, batch_size=batch_size)
    return [{"id": r.id, **{o: {"text": texts[2 * i + j], "verdict": parse_verdict(style, texts[2 * i + j],
                                                                                      fallback=fallback)}
                            for j, o in enumerate(ORDERS)}} for i, r in enumerate(records)]


def both_orders_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """core `position_bias` of held-out rows: accuracy (both orders averaged), both_orders_accuracy, consistency,
    position1_rate, items, unparsed."""
    from visionrl.core.evaluation.pairwise_scoring import position_bias

    def outcome(row: dict[str, Any], order: Order) -> str | None:
        verdict = row[order]["verdict"]
        return None if verdict is None else "chosen" if verdict == RIGHT[order] else "rejected"

    return position_bias([outcome(r, "chosen_first") for r in rows], [outcome(r, "chosen_second") for r in rows])
