"""Stage I: synthesise preference pairs from one iteration's prompts (closed: majority vote; open: error
injection), generation sharded over ranks.

`pairs.jsonl` holds one row per prompt: a pair (`chosen`, `rejected`, `category` = closed | open, `meta` with the
vote counts or the injected error types) or the reason it was dropped (`dropped`: tie, below_threshold,
one_answer, empty, no_correct, all_correct, match_size, no_error_site, no_content_change, length_ratio).
With `--lone-answer pool` a closed question whose samples agree on one answer is paired with another answer of the
same kind from this iteration's samples instead of being dropped (`alternative: pool` in its row).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.judge.config import TrainConfig
from visionrl.judge.inject import pick_error_types, program_inject, validate_rewrite
from visionrl.judge.judging import greedy, sample_groups
from visionrl.judge.majority import label_by_ground_truth, majority_vote, normalize_answer
from visionrl.judge.prompts import answer_prompt, rewrite_prompt
from visionrl.judge.sources import PromptItem


def item_rng(seed: int, iteration: int, item_id: str, salt: str) -> random.Random:
    """A generator per item: the same draws whichever rank handles the item, whatever the world size."""
    return random.Random(f"{seed}:{iteration}:{item_id}:{salt}")


def answer_of(text: str, cfg: TrainConfig) -> str:
    """What a closed sample answers: its `\\boxed{}` content (`--closed-answers boxed`), or the whole text."""
    from visionrl.core.rewards.extract import NO_BOX, extract_boxed

    if cfg.closed_answers == "response":
        return text.strip()
    box = extract_boxed(text)
    return "" if box == NO_BOX else box


def closed_rows(vlm: Any, items: Sequence[PromptItem], cfg: TrainConfig, iteration: int) -> list[dict[str, Any]]:
    """Sample N answers per closed prompt and label a pair by majority (and by the reference, for the ablation)."""
    cot = cfg.closed_answers == "boxed"
    groups = sample_groups(vlm, [answer_prompt(it.question, it.images(), cot=cot) for it in items],
                           cfg.num_samples, cfg.sampling, engine=cfg.engine, batch_size=cfg.batch_size)
    rows = []
    for it, texts in zip(items, groups):
        answers = [answer_of(t, cfg) for t in texts]
        shown = answers if cfg.closed_answers == "boxed" else [t.strip() for t in texts]
        vote = majority_vote(answers, cfg.majority_threshold, item_rng(cfg.run.seed, iteration, it.id, "majority"))
        pool = cfg.lone_answer == "pool"
        if pool and vote.dropped == "one_answer" and max(vote.counts.values()) < cfg.majority_threshold:
            vote = type(vote)(None, None, vote.counts, "below_threshold")  # a lone answer is a majority too
        row: dict[str, Any] = {"prompt_id": it.id, "kind": "closed", "counts": vote.counts,
                               "majority_ok": vote.dropped is None or (pool and vote.dropped == "one_answer")}
        if cfg.pair_labels == "ground_truth":
            if it.answer is None:
                vote = type(vote)(None, None, vote.counts, "no_correct")
            else:
                vote = label_by_ground_truth(answers, it.answer, item_rng(cfg.run.seed, iteration, it.id, "truth"))
        if pool:
            row["texts"] = distinct_texts(answers, shown)
        if vote.dropped is not None:
            row["dropped"] = vote.dropped
            if pool and vote.dropped in LONE:  # its one answer is in `texts`; pooling gives it a pair
                row["prompt"] = it.question
        else:
            assert vote.chosen is not None and vote.rejected is not None
            row |= {"prompt": it.question, "chosen": shown[vote.chosen], "rejected": shown[vote.rejected]}
        rows.append(row)
    return rows


LONE = ("one_answer", "all_correct")
"""Drop reasons of a question whose samples hold a single distinct answer (majority labels; ground-truth labels)."""


def distinct_texts(answers: Sequence[str], shown: Sequence[str]) -> dict[str, str]:
    """Normalised answer → the first sample text showing it."""
    out: dict[str, str] = {}
    for a, t in zip(answers, shown):
        norm = normalize_answer(a)
        if norm:
            out.setdefault(norm, t)
    return out


def answer_kind(norm: str) -> str:
    """The kind of a normalised short answer; a pool alternative is of the same kind.

    >>> [answer_kind(a) for a in ("b", "yes", "12", "3.5", "red", "two dogs")]
    ['letter', 'yes/no', 'number', 'number', 'other', 'other']
    """
    if re.fullmatch(r"[a-e]", norm):
        return "letter"
    if norm in ("yes", "no"):
        return "yes/no"
    if re.fullmatch(r"-?\d+(?:\.\d+)?", norm):
        return "number"
    return "other"


def pair_lone_answers(rows: Sequence[dict[str, Any]], seed: int, iteration: int) -> list[dict[str, Any]]:
    """`--lone-answer pool`: pair each question whose samples agree on one answer with a different answer of the
    same kind (option letter, yes/no, number, other) that the generator gave to any closed question of this
    iteration, drawn uniformly by a generator seeded per prompt. Runs on the gathered rows of all ranks, so the
    draw does not depend on the world size; a question with no such alternative stays dropped.

    >>> rows = [{"prompt_id": "p0", "kind": "closed", "texts": {"red": "Red"}, "dropped": "one_answer",
    ...          "counts": {"red": 16}, "prompt": "Colour?", "majority_ok": True},
    ...         {"prompt_id": "p1", "kind": "closed", "texts": {"blue": "blue", "2": "two"}, "prompt": "Colour?",
    ...          "chosen": "blue", "rejected": "two", "majority_ok": True}]
    >>> [(r.get("chosen"), r.get("rejected"), r.get("alternative")) for r in pair_lone_answers(rows, 0, 0)]
    [('Red', 'blue', 'pool'), ('blue', 'two', None)]
    """
    pool: dict[str, dict[str, str]] = {}
    for r in rows:
        for norm, text in r.get("texts", {}).items():
            pool.setdefault(answer_kind(norm), {}).setdefault(norm, text)
    def alternatives(norm: str) -> list[str]:
        return sorted(a for a in pool.get(answer_kind(norm), {}) if a != norm)

    out = []
    for r in rows:
        counts = r.get("counts", {})
        if len(counts) == 1 and r.get("majority_ok") and not alternatives(next(iter(counts))):
            r = r | {"majority_ok": False}  # majority labels would have no pair either (read by --match-size)
        if r.get("dropped") in LONE and "prompt" in r:
            (norm, text), = r["texts"].items()
            if others := alternatives(norm):
                alt = item_rng(seed, iteration, r["prompt_id"], "lone").choice(others)
                r = {k: v for k, v in r.items() if k != "dropped"} | {
                    "chosen": text, "rejected": pool[answer_kind(norm)][alt], "alternative": "pool"}
        out.append(r)
    return out


def open_rows(vlm: Any, items: Sequence[PromptItem], cfg: TrainConfig, iteration: int) -> list[dict[str, Any]]:
    """The generator's greedy response per open prompt, and an error-injected rewrite of it."""
    originals = greedy(vlm, [answer_prompt(it.question, it.images(), cot=False) for it in items],
                       cfg.sampling.max_new_tokens, engine=cfg.engine, batch_size=cfg.batch_size)
    rngs = [item_rng(cfg.run.seed, iteration, it.id, "inject") for it in items]
    if cfg.injector == "program":
        injected = [program_inject(o.strip(), rng, cfg.max_errors) for o, rng in zip(originals, rngs)]
        rewrites, errors = [i.text for i in injected], [i.errors for i in injected]
    else:
        asks = [pick_error_types(rng, cfg.max_errors) for rng in rngs]
        prompts = [rewrite_prompt(o.strip(), k, types) for o, (k, types) in zip(originals, asks)]
        groups = sample_groups(vlm, prompts, 1, cfg.sampling, engine=cfg.engine, batch_size=cfg.batch_size)
        rewrites = [g[0].strip() for g in groups]
        errors = [types for _, types in asks]
    rows = []
    for it, original, rewrite, errs in zip(items, originals, rewrites, errors):
        row: dict[str, Any] = {"prompt_id": it.id, "kind": "open", "errors": list(errs)}
        problem = "no_error_site" if not errs else validate_rewrite(original.strip(), rewrite, *cfg.length_ratio)
        if problem is not None:
            row["dropped"] = problem
        else:
            row |= {"prompt": it.question, "chosen": original.strip(), "rejected": rewrite}
        rows.append(row)
    return rows


def synthesize(vlm: Any, items: Sequence[PromptItem], cfg: TrainConfig, iteration: int) -> list[dict[str, Any]]:
    """Rows for this rank's share of prompts (closed and open), in the order of `items`."""
    closed = [it for it in items if it.kind == "closed"]
    opened = [it for it in items if it.kind == "open"]
    by_id = {r["prompt_id"]: r for r in closed_rows(vlm, closed, cfg, iteration)}
    by_id |= {r["prompt_id"]: r for r in open_rows(vlm, opened, cfg, iteration)}
    return [by_id[it.id] for it in items]


def match_size(rows: list[dict[str, Any]], seed: int, iteration: int) -> list[dict[str, Any]]:
    """The ablation at equal data size: keep as many closed ground-truth pairs as majority labels would give."""
    target = sum(1 for r in rows if r["kind"] == "closed" and r.get("majority_ok"))
    pairs = [i for i, r in enumerate(rows) if r["kind"] == "closed" and "dropped" not in r]
    keep = set(random.Random(f"{seed}:{iteration}:match").sample(pairs, min(target, len(pairs))))
    out = []
    for i, r in enumerate(rows):
        if i in pairs and i not in keep:
            r = {k: v for k, v in r.items() if k not in ("prompt", "chosen", "rejected", "alternative")} | {
                "dropped": "match_size"}
        out.append(r)
    return out


def finish_rows(rows: list[dict[str, Any]], iteration: int) -> list[dict[str, Any]]:
    """Give every pair its id (`it<k>-<prompt id>`) and category."""
    return [r | {"id": f"it{iteration}-{r['prompt_id']}", "category": r["kind"]} if "dropped" not in r else r
            for r in rows]


def pair_records(rows: Sequence[dict[str, Any]], pool: dict[str, PromptItem]) -> list[PairRecord]:
    """The pairs of `pairs.jsonl` rows as core `PairRecord`s, images from the prompt pool."""
    return [PairRecord(r["id"], pool[r["prompt_id"]].images(), r["prompt"], r["chosen"], r["rejected"],
                       r["category"], meta={"prompt_id": r["prompt_id"]})
            for r in rows if "dropped" not in r]


def pair_stats(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Counts of prompts, pairs and drop reasons per kind (`pairs/closed`, `dropped/closed/tie`, ...; pairs whose
    alternative came from the pool: `pairs/closed/pooled`)."""
    out: Counter[str] = Counter()
    for r in rows:
        out[f"prompts/{r['kind']}"] += 1
        if "dropped" in r:
            out[f"dropped/{r['kind']}/{r['dropped']}"] += 1
        else:
            out[f"pairs/{r['kind']}"] += 1
            out["pairs"] += 1
            if r.get("alternative") == "pool":
                out[f"pairs/{r['kind']}/pooled"] += 1
    return {k: float(v) for k, v in sorted(out.items())}
