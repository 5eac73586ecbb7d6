"""`judge-eval`: a pairwise judge on VL-RewardBench, Multimodal RewardBench and held-out shapes pairs.

- VL-RewardBench as `cal.py` scores it: each item is shown in the order of its seeded coin (recorded in
  predictions as `flip`), judged once greedily or k times (`--repeats`, T 0.2, top_p 0.2 as `inference_hf.py`),
  labelled agree / reject / doesntMatch by majority; overall = Σ agree / Σ (agree + reject), macro over general,
  hallucination and reasoning; the group counts are printed. Verdicts are read by the benchmark's regex only.
- Multimodal RewardBench: `Output1`/`Output2` shown as given; `all` plus categories with the ID-prefix splits;
  an unparsed verdict counts as wrong and is reported, or with `--official` becomes the official random verdict
  (seed 123) and verdicts are read by the official rule.
- shapes (default): the demo's held-out pairs, each shown in a seeded order; scored like MMRB.
`--both-orders` judges every item with its answers swapped too and adds core's `position_bias` metrics
(`both_orders_accuracy`, `consistency`, `position1_rate`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.judge.config import EvalConfig

REPEAT_SAMPLING = {"temperature": 0.2, "top_p": 0.2, "top_k": 0}
"""VL-RewardBench `inference_hf.py` decoding of its k repeats."""


def load_benchmarks(cfg: EvalConfig) -> list[tuple[str, list[PairRecord]]]:
    """`--data`: comma-separated `shapes`, `vlrewardbench[=SOURCE]`, `mmrb=FOLDER` (`mmrlhf` too)."""
    from visionrl.core.demo_teacher import HELDOUT_SEED, demo_pairs
    from visionrl.core.evaluation.pairwise_registry import parse_benchmarks

    out: list[tuple[str, list[PairRecord]]] = []
    entries = [e.strip() for e in cfg.eval.data.split(",") if e.strip()]
    for entry in entries:
        if entry == "shapes":
            records = demo_pairs(HELDOUT_SEED, cfg.eval.limit or cfg.shapes_size)
            for r in records:
                r.meta["flip"] = bool(random.Random(f"{cfg.eval.seed}\t{r.id}").randint(0, 1))
            out.append(("shapes", records))
            continue
        (bench, source), = parse_benchmarks(entry, flag="--data")
        out.append((bench.name, bench.load(source, limit=cfg.eval.limit, seed=cfg.eval.seed)))
    if not out:
        from visionrl.core.errors import UserError

        raise UserError("--data: name at least one of shapes, vlrewardbench, mmrb=FOLDER")
    return out


def parser_for(cfg: EvalConfig, bench: str) -> Any:
    """The verdict reader: the benchmark's own rule for VL-RewardBench and under `--official`, else with fallback."""
    from visionrl.core.evaluation.pairwise_verdicts import parse_bracket_verdict
    from visionrl.judge.verdicts import parse_verdict

    if cfg.judge_prompt == "mmrb" and cfg.official:
        return lambda text: parse_bracket_verdict(text, official=True)
    strict = cfg.official or bench == "vlrewardbench"
    return lambda text: parse_verdict(cfg.judge_prompt, text, fallback=not strict)


def judge_in_order(vlm: Any, records: Sequence[PairRecord], cfg: EvalConfig, swapped: bool) -> list[list[str]]:
    """k judgements per record, answers shown in the record's order (`meta["flip"]`), or swapped."""
    from visionrl.core.evaluation.pairwise_scoring import presented
    from visionrl.core.hparams import SamplingParams
    from visionrl.judge.judging import greedy, sample_groups
    from visionrl.judge.prompts import judge_prompt

    prompts = []
    for r in records:
        first, second = presented(r)
        if swapped:
            first, second = second, first
        prompts.append(judge_prompt(cfg.judge_prompt, r.prompt, first, second, r.images))
    gen = {"engine": cfg.engine, "batch_size": cfg.eval.batch_size}
    if cfg.repeats == 1:
        return [[t] for t in greedy(vlm, prompts, cfg.max_new_tokens, **gen)]
    sampling = SamplingParams(max_new_tokens=cfg.max_new_tokens, **REPEAT_SAMPLING)
    return sample_groups(vlm, prompts, cfg.repeats, sampling, **gen)


def outcomes_of(records: Sequence[PairRecord], texts: list[list[str]], parse: Any, swapped: bool) -> list[list[Any]]:
    """Each record's k outcomes ("chosen", "rejected", None) from its judgements."""
    from visionrl.core.evaluation.pairwise_scoring import outcome_from_position

    flip = {"A": "B", "B": "A", None: None}
    return [[outcome_from_position(r, flip[parse(t)] if swapped else parse(t)) for t in group]
            for r, group in zip(records, texts)]


def majority(samples: list[Any]) -> Any:
    """One outcome from k samples by cal.py's strict majority (agree → chosen, reject → rejected, else None)."""
    from visionrl.core.evaluation.pairwise_scoring import vlrb_status

    return {"agree": "chosen", "reject": "rejected"}.get(vlrb_status(samples))


def score(bench: str, records: Sequence[PairRecord], outcomes: list[list[Any]], cfg: EvalConfig) -> dict[str, float]:
    from visionrl.core.evaluation.pairwise_scoring import score_mmrb, score_mmrlhf, score_vlrewardbench

    if bench == "vlrewardbench":
        return score_vlrewardbench(records, outcomes)
    single = [majority(o) for o in outcomes]
    if bench == "mmrlhf":
        return score_mmrlhf(records, single)
    return score_mmrb(records, single, official=cfg.official and bench == "mmrb")


def evaluate_benchmark(vlm: Any, bench: str, records: list[PairRecord], cfg: EvalConfig) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Metrics (`eval/<bench>/<metric>`) and prediction rows of one benchmark."""
    from visionrl.core.evaluation.pairwise_scoring import position_bias

    parse = parser_for(cfg, bench)
    texts = judge_in_order(vlm, records, cfg, swapped=False)
    outcomes = outcomes_of(records, texts, parse, swapped=False)
    metrics = score(bench, records, outcomes, cfg)
    rows = [{"benchmark": bench, "id": r.id, "category": r.category, "flip": bool(r.meta.get("flip")),
             "outputs": t, "outcomes": o} for r, t, o in zip(records, texts, outcomes)]
    if cfg.both_orders:
        swapped_texts = judge_in_order(vlm, records, cfg, swapped=True)
        swapped = outcomes_of(records, swapped_texts, parse, swapped=True)
        shown, other = [majority(o) for o in outcomes], [majority(o) for o in swapped]
        # position_bias wants (chosen shown first, chosen shown second); `flip` says which the shown order was.
        first = [b if r.meta.get("flip") else a for r, a, b in zip(records, shown, other)]
        second = [a if r.meta.get("flip") else b for r, a, b in zip(records, shown, other)]
        metrics |= {f"orders/{k}": v for k, v in position_bias(first, second).items()}
        for row, t, o in zip(rows, swapped_texts, swapped):
            row |= {"swapped_outputs": t, "swapped_outcomes": o}
    return {f"eval/{bench}/{k}": v for k, v in metrics.items()}, rows


def group_counts(metrics: dict[str, float]) -> list[str]:
    """VL-RewardBench's per-group counts, as cal.py prints them."""
    lines = []
    for group in ("general", "hallucination", "reasoning"):
        c = {k: int(metrics.get(f"eval/vlrewardbench/{k}/{group}", 0)) for k in ("agree", "reject", "unparsed", "other")}
        acc = metrics.get(f"eval/vlrewardbench/accuracy/{group}")
        lines.append(f"vlrewardbench {group}: agree {c['agree']}, reject {c['reject']}, doesntMatch {c['unparsed']}, "
                     f"other {c['other']}, accuracy {'n/a' if acc is None else f'{acc:.4f}'}")
    return lines


def run_eval(cfg: EvalConfig) -> dict[str, float]:
    """Load the benchmarks and the judge, judge every item, write metrics.json and predictions.jsonl."""
    import torch
    from visionrl.core.console import Console, one_metric_line
    from visionrl.core.evaluation.models import check_model_source, eval_model
    from visionrl.core.evaluation.outputs import write_results

    start = time.perf_counter()
    e = cfg.eval
    console = Console("judge-eval", quiet=e.quiet, verbose=e.verbose)
    console.quiet_libraries()
    check_model_source(cfg.eval.model)
    console.header("pairwise judge evaluation", {"model": e.model, "data": e.data,
                                                 "both orders": cfg.both_orders}, e.output_dir)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.eval.seed)
    benchmarks = load_benchmarks(cfg)
    vlm = eval_model(cfg.eval.model)
    metrics: dict[str, float] = {}
    predictions: list[dict[str, Any]] = []
    for bench, records in benchmarks:
        m, rows = evaluate_benchmark(vlm, bench, records, cfg)
        metrics |= m
        predictions += rows
        if bench == "vlrewardbench":
            for line in group_counts(m):
                console.line(line)
    metrics["eval/runtime_s"] = round(time.perf_counter() - start, 2)
    paths = write_results(cfg.eval.output_dir, cfg, metrics, predictions)
    shown = ["accuracy", "macro_accuracy", "orders/both_orders_accuracy", "orders/position1_rate", "items"]
    console.summary([*((bench, one_metric_line({k: metrics[f"eval/{bench}/{k}"] for k in shown
                                                 if f"eval/{bench}/{k}" in metrics}, shown))
                       for bench, _ in benchmarks),
                     ("metrics", str(paths["metrics"])), ("predictions", str(paths["predictions"]))])
    return metrics
