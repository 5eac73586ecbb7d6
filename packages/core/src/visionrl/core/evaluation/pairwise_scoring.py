"""Pairwise benchmark scores: pure functions of records and per-item outcomes, returning flat metric dicts.

An item's outcome is "chosen" (the judge or reward model preferred the labelled-better answer),
"rejected", or None (a judge's verdict that could not be parsed). A reward model's two scores become an
outcome with `outcome_from_scores`; a judge's verdict, given as the position it names (1/2 or A/B, as
shown), with `outcome_from_position`, which reads the record's `meta["flip"]` (True: the chosen answer was
shown second).

Metric names are the `<metric>` of TensorBoard tags `eval/<benchmark>/<metric>`; counts are floats too.
A ratio whose denominator is zero is left out (its counts say why) rather than reported as NaN, which
`metrics.json` could not hold as standard JSON.

Departures from the official scorers, numbered:

1. VL-RewardBench (`cal.py`): a group with no agree/reject item has no accuracy and the macro average is
   over the groups that have one (cal.py divides by zero); this only happens on subsets (`--limit`).
2. MM-RLHF-RewardBench (`cal_performance_mmreweard_bench.py`): a record whose image/video path names none
   of the five categories is counted under `other` (the official script leaves it out of every category).
   Per-category Acc+ is the share of ids having a record in the category whose records are all correct; the
   official script credits an all-correct id only to the first category (in keyword order) it has a record
   in, which is the same number when each id's records share one category, as in the benchmark.
3. Unparsed verdicts count as wrong for Multimodal RewardBench and MM-RLHF-RewardBench and are reported as
   `unparsed`; `score_mmrb(official=True)` instead draws the official random verdict (seed 123, in record
   order), which reproduces `scripts/2_get_accuracy.py` when the records are the whole file in its order.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Literal

from visionrl.core.data.records import PairRecord

Outcome = Literal["chosen", "rejected"] | None
Status = Literal["agree", "reject", "unparsed", "other"]

VLRB_GROUP: dict[str, str] = {
    "vlfeedback": "general",
    "wildvision-battle": "general",
    "povid": "hallucination",
    "rlhf-v": "hallucination",
    "rlaif-v": "hallucination",
    "reasoning_tasks": "reasoning",
}
"""cal.py's dataset → group mapping; a VL-RewardBench record's `category` is its dataset."""
VLRB_GROUPS = ("general", "hallucination", "reasoning")
MMRB_OFFICIAL_SEED = 123


# ---------------------------------------------------------------- outcomes


def chosen_position(record: PairRecord) -> Literal[1, 2]:
    """Where the chosen answer is shown: 2 when `record.meta["flip"]` is set, else 1."""
    return 2 if record.meta.get("flip") else 1


def presented(record: PairRecord) -> tuple[str, str]:
    """The two answers in the order they are shown (first, second)."""
    if record.meta.get("flip"):
        return record.rejected, record.chosen
    return record.chosen, record.rejected


def outcome_from_position(record: PairRecord, position: int | str | None) -> Outcome:
    """A verdict naming the first (1 or "A") or second (2 or "B") shown answer, as an outcome.

    >>> r = PairRecord("x", [], "q?", "good", "bad", meta={"flip": True})
    >>> outcome_from_position(r, "B"), outcome_from_position(r, 1), outcome_from_position(r, None)
    ('chosen', 'rejected', None)
    """
    if position is None:
        return None
    index = {1: 1, 2: 2, "A": 1, "B": 2}.get(position)  # type: ignore[call-overload]
    if index is None:
        raise ValueError(f"a verdict position is 1, 2, 'A', 'B' or None, got {position!r}")
    return "chosen" if index == chosen_position(record) else "rejected"


def outcome_from_scores(chosen_score: float, rejected_score: float) -> Outcome:
    """A reward model is right when it scores the chosen answer strictly higher (a tie is wrong).

    >>> outcome_from_scores(0.3, -1.0), outcome_from_scores(0.5, 0.5)
    ('chosen', 'rejected')
    """
    return "chosen" if chosen_score > rejected_score else "rejected"


def _check(records: Sequence[PairRecord], outcomes: Sequence[object]) -> None:
    if len(records) != len(outcomes):
        raise ValueError(f"{len(records)} records but {len(outcomes)} outcomes")


def _outcome(value: object, record: PairRecord) -> Outcome:
    if value not in ("chosen", "rejected", None):
        raise ValueError(f"record {record.id!r}: outcome must be 'chosen', 'rejected' or None, got {value!r}")
    return value  # type: ignore[return-value]


def _ratio(out: dict[str, float], name: str, num: float, den: float) -> None:
    if den > 0:
        out[name] = num / den


# ---------------------------------------------------------------- VL-RewardBench


def vlrb_status(samples: Sequence[Outcome]) -> Status:
    """cal.py's label of one item from its k samples: a strict majority of agree, reject or unparsed.

    >>> vlrb_status(["chosen"]), vlrb_status(["chosen", None, "rejected"]), vlrb_status([None, None, "chosen"])
    ('agree', 'other', 'unparsed')
    """
    counts = Counter(samples)
    half = len(samples) / 2
    if counts["chosen"] > half:
        return "agree"
    if counts["rejected"] > half:
        return "reject"
    if counts[None] > half:
        return "unparsed"
    return "other"


def score_vlrewardbench(
    records: Sequence[PairRecord], outcomes: Sequence[Outcome | Sequence[Outcome]]
) -> dict[str, float]:
    """VL-RewardBench (`cal.py`): accuracy over the items whose verdict parsed, per group and overall.

    Each item's outcome is one outcome or its k samples (labelled by `vlrb_status`). Items labelled
    unparsed (cal.py's doesntMatch) or other are left out of every denominator.

    Returns:
        `accuracy` (Σ agree / Σ (agree + reject)), `macro_accuracy` (mean of the group accuracies),
        `accuracy/<group>`, and the counts `items`, `agree`, `reject`, `unparsed`, `other`, each also
        per group as `<count>/<group>`, for the groups general, hallucination and reasoning.
    """
    _check(records, outcomes)
    counts = {g: Counter[str]() for g in VLRB_GROUPS}
    for record, outcome in zip(records, outcomes):
        group = VLRB_GROUP.get(record.category) or record.meta.get("group")
        if group not in counts:
            raise ValueError(
                f"record {record.id!r}: category {record.category!r} is not a VL-RewardBench dataset"
            )
        samples = [outcome] if outcome is None or isinstance(outcome, str) else list(outcome)
        if not samples:
            raise ValueError(f"record {record.id!r}: no outcome samples")
        counts[group][vlrb_status([_outcome(s, record) for s in samples])] += 1
        counts[group]["items"] += 1
    out: dict[str, float] = {}
    for name in ("items", "agree", "reject", "unparsed", "other"):
        out[name] = float(sum(c[name] for c in counts.values()))
        for g in VLRB_GROUPS:
            out[f"{name}/{g}"] = float(counts[g][name])
    _ratio(out, "accuracy", out["agree"], out["agree"] + out["reject"])
    for g in VLRB_GROUPS:
        _ratio(out, f"accuracy/{g}", counts[g]["agree"], counts[g]["agree"] + counts[g]["reject"])
    groups = [out[f"accuracy/{g}"] for g in VLRB_GROUPS if f"accuracy/{g}" in out]
    if groups:
        out["macro_accuracy"] = sum(groups) / len(groups)
    return out


# ---------------------------------------------------------------- Multimodal RewardBench


def score_mmrb(
    records: Sequence[PairRecord], outcomes: Sequence[Outcome], *, official: bool = False
) -> dict[str, float]:
    """Multimodal RewardBench (`scripts/2_get_accuracy.py`): accuracy over all items and per category.

    Args:
        official: an unparsed verdict becomes the official random one (A or B with probability 1/2, drawn
            in record order from a generator seeded 123); otherwise it counts as wrong.

    Returns:
        `accuracy` (the official `all`), `accuracy/<category>` (categories as loaded, with safety and
        reasoning split by ID prefix), and the counts `items`, `unparsed`, `items/<category>`,
        `unparsed/<category>`.
    """
    _check(records, outcomes)
    rng = random.Random(MMRB_OFFICIAL_SEED)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record, value in zip(records, outcomes):
        outcome = _outcome(value, record)
        c = counts[record.category]
        c["items"] += 1
        if outcome is None:
            c["unparsed"] += 1
            if official:
                outcome = outcome_from_position(record, "A" if rng.random() < 0.5 else "B")
        c["correct"] += outcome == "chosen"
    out = {"items": float(len(records)), "unparsed": float(sum(c["unparsed"] for c in counts.values()))}
    _ratio(out, "accuracy", sum(c["correct"] for c in counts.values()), len(records))
    for category, c in sorted(counts.items()):
        out[f"accuracy/{category}"] = c["correct"] / c["items"]
        out[f"items/{category}"] = float(c["items"])
        out[f"unparsed/{category}"] = float(c["unparsed"])
    return out


# ---------------------------------------------------------------- MM-RLHF-RewardBench


def score_mmrlhf(records: Sequence[PairRecord], outcomes: Sequence[Outcome]) -> dict[str, float]:
    """MM-RLHF-RewardBench (`cal_performance_mmreweard_bench.py`): Acc and Acc+, overall and per category.

    Acc is the mean over records; Acc+ the share of ids (`group_id`, else the record id) whose records are
    all correct. An unparsed verdict counts as wrong.

    Returns:
        `accuracy`, `accuracy_plus`, `accuracy/<category>`, `accuracy_plus/<category>`, and the counts
        `items`, `ids`, `unparsed`, `items/<category>`, `ids/<category>`, `unparsed/<category>`.
    """
    _check(records, outcomes)
    all_right: dict[str, bool] = {}
    ids_in: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record, value in zip(records, outcomes):
        outcome = _outcome(value, record)
        gid = record.group_id if record.group_id is not None else record.id
        all_right[gid] = all_right.get(gid, True) and outcome == "chosen"
        ids_in[record.category].add(gid)
        c = counts[record.category]
        c["items"] += 1
        c["correct"] += outcome == "chosen"
        c["unparsed"] += outcome is None
    out = {
        "items": float(len(records)),
        "ids": float(len(all_right)),
        "unparsed": float(sum(c["unparsed"] for c in counts.values())),
    }
    _ratio(out, "accuracy", sum(c["correct"] for c in counts.values()), len(records))
    _ratio(out, "accuracy_plus", sum(all_right.values()), len(all_right))
    for category, c in sorted(counts.items()):
        ids = ids_in[category]
        out[f"accuracy/{category}"] = c["correct"] / c["items"]
        out[f"accuracy_plus/{category}"] = sum(all_right[i] for i in ids) / len(ids)
        out[f"items/{category}"] = float(c["items"])
        out[f"ids/{category}"] = float(len(ids))
        out[f"unparsed/{category}"] = float(c["unparsed"])
    return out


# ---------------------------------------------------------------- position bias


def position_bias(chosen_first: Sequence[Outcome], chosen_second: Sequence[Outcome]) -> dict[str, float]:
    """Position-bias metrics of a pairwise judge that saw every item in both orders.

    Args:
        chosen_first: each item's outcome when the chosen answer was shown first.
        chosen_second: the same items' outcomes when it was shown second.

    Returns:
        `accuracy` (over all 2n verdicts, unparsed wrong), `both_orders_accuracy` (right in both orders),
        `consistency` (the same underlying answer preferred in both orders), `position1_rate` (share of
        parsed verdicts naming the answer shown first; 0.5 is unbiased), and the counts `items`, `unparsed`.

    >>> m = position_bias(["chosen", "chosen", None], ["chosen", "rejected", "rejected"])
    >>> m["both_orders_accuracy"], m["consistency"], m["position1_rate"]
    (0.3333333333333333, 0.3333333333333333, 0.8)
    """
    if len(chosen_first) != len(chosen_second):
        raise ValueError(f"{len(chosen_first)} outcomes in one order but {len(chosen_second)} in the other")
    pairs = list(zip(chosen_first, chosen_second))
    for a, b in pairs:
        if a not in ("chosen", "rejected", None) or b not in ("chosen", "rejected", None):
            raise ValueError(f"outcomes must be 'chosen', 'rejected' or None, got {(a, b)!r}")
    n = len(pairs)
    parsed = sum((a is not None) + (b is not None) for a, b in pairs)
    # The first-shown answer is the chosen one in the first order and the rejected one in the second.
    first = sum((a == "chosen") + (b == "rejected") for a, b in pairs)
    out = {"items": float(n), "unparsed": float(2 * n - parsed)}
    _ratio(out, "accuracy", sum((a == "chosen") + (b == "chosen") for a, b in pairs), 2 * n)
    _ratio(out, "both_orders_accuracy", sum(a == b == "chosen" for a, b in pairs), n)
    _ratio(out, "consistency", sum(a is not None and a == b for a, b in pairs), n)
    _ratio(out, "position1_rate", first, parsed)
    return out
