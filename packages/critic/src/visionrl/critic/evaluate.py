"""`critic-eval`: a checkpoint as a critic, as a policy, and as its own best-of-N judge (arXiv 2509.00676).

Writes into `--output-dir`: `metrics.json` (`{"critic": {benchmark: {...}}, "policy": {...},
"self_critic": {...}}`), `samples.jsonl` (one row per judged pair, policy question and self-critic question,
with the generated texts) and `config.yaml`. Every source and the model flag are checked, and every record
read, before the model loads: a bad row fails in seconds with its file and row.
"""

from __future__ import annotations

import time
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.core.errors import UserError
from visionrl.critic.config import EvalConfig

CRITIC_LOCAL = ("shapes", "pairs")


def parse_critic_data(spec: str, flag: str = "--data") -> list[tuple[str, str | None]]:
    """`"shapes,vlrewardbench=DIR,pairs=SRC"` → [(name, source or None), ...], names checked."""
    from visionrl.core.evaluation.pairwise_registry import PAIRWISE_BENCHMARKS, parse_benchmarks

    out: list[tuple[str, str | None]] = []
    for entry in (e.strip() for e in spec.split(",") if e.strip()):
        name, _, source = (s.strip() for s in entry.partition("="))
        if name == "pairs" and not source:
            raise UserError(f"{flag}: pairs needs a source; pass pairs=FOLDER or pairs=OWNER/NAME")
        if name in CRITIC_LOCAL:
            out.append((name, source or None))
        elif name in PAIRWISE_BENCHMARKS:
            (bench, src), = parse_benchmarks(entry, flag=flag)
            out.append((bench.name, src))
        else:
            raise UserError(f"{flag} {spec!r}: unknown critic benchmark {name!r}; choose from "
                            f"{', '.join((*CRITIC_LOCAL, *PAIRWISE_BENCHMARKS))}")
    if not out:
        raise UserError(f"{flag} is empty; pass shapes or a benchmark")
    return out


def _with_coins(pairs: list[PairRecord], seed: int) -> list[PairRecord]:
    from visionrl.critic.data import pair_coin

    for p in pairs:
        p.meta = {"flip": pair_coin(seed, p.id).random() < 0.5, "category": p.category}
    return pairs


def load_critic_benchmark(name: str, source: str | None, cfg: EvalConfig) -> list[PairRecord]:
    """One critic benchmark's pairs, each with its presentation coin (`meta["flip"]`)."""
    from visionrl.core.evaluation.pairwise_registry import PAIRWISE_BENCHMARKS
    from visionrl.critic.data import load_pairs

    limit, seed = cfg.eval.limit, cfg.eval.seed
    if name == "shapes":
        from visionrl.core.demo_teacher import HELDOUT_SEED, demo_pairs

        return _with_coins(demo_pairs(HELDOUT_SEED, limit or cfg.shapes_size), seed)
    if name == "pairs":
        assert source is not None
        return _with_coins(load_pairs(source, limit=limit), seed)
    return PAIRWISE_BENCHMARKS[name].load(source, limit=limit, seed=seed)


def load_all(cfg: EvalConfig) -> tuple[dict[str, list[PairRecord]], dict[str, list[Any]]]:
    """Critic and policy records of the requested reports (nothing loads for a report not asked for)."""
    from visionrl.critic.policy import load_policy_benchmark, parse_policy_data

    critic_specs = parse_critic_data(cfg.eval.data) if "critic" in cfg.reports else []
    wants_policy = "policy" in cfg.reports or "self-critic" in cfg.reports
    policy_specs = parse_policy_data(cfg.policy_data) if wants_policy else []
    if "self-critic" in cfg.reports and "policy" not in cfg.reports:
        policy_specs = policy_specs[:1]
    critic = {name: load_critic_benchmark(name, src, cfg) for name, src in critic_specs}
    policy = {name: load_policy_benchmark(name, src, cfg.eval.limit, cfg.shapes_size) for name, src in policy_specs}
    return critic, policy


def check_lengths(cfg: EvalConfig, vlm: Any, critic: dict[str, list[Any]],
                  policy: dict[str, list[Any]]) -> tuple[dict[str, dict[str, int]], list[int] | None]:
    """Every critic and policy prompt within `--max-prompt-tokens` (`--overlong-prompts drop`: dropped, in place,
    and counted per report and benchmark), and every self-critic judge prompt: the question with two sampled
    answers of up to `--policy-max-new-tokens` each, counted at that bound before any answer is sampled (an upper
    bound: with `--self-critic-shown answer` the judge sees only the answers' final parts). Returns the counts
    and the indices (into the first policy benchmark as checked) of the questions the self-critic report may
    use (None: no self-critic report)."""
    from visionrl.core.data.lengths import check_prompt_lengths
    from visionrl.core.evaluation.pairwise_scoring import presented
    from visionrl.critic.policy import policy_prompts
    from visionrl.critic.prompts import eval_critic_prompt

    e = cfg.eval
    shown = {"critic": lambda r: eval_critic_prompt(r.prompt, *presented(r), r.images, prefill=cfg.prefill),
             "policy": lambda r: policy_prompts([r], cfg.prefill)[0]}
    dropped: dict[str, dict[str, int]] = {"critic": {}, "policy": {}}
    for report, data in (("critic", critic), ("policy", policy)):
        for name, records in data.items():
            data[name], dropped[report][name], _ = check_prompt_lengths(
                vlm, records, shown[report], limit=e.max_prompt_tokens, policy=e.overlong_prompts,
                what=f"{name} {report} benchmark")
            _some_left(records, data[name], f"{name} {report} benchmark", e.max_prompt_tokens)
    if "self-critic" not in cfg.reports or not policy:
        return dropped, None
    name, records = next(iter(policy.items()))
    what = f"{name} self-critic judge (two answers of up to --policy-max-new-tokens {cfg.policy_max_new_tokens})"
    kept, n, _ = check_prompt_lengths(
        vlm, records, lambda r: eval_critic_prompt(r.question, cfg.prefill, cfg.prefill, r.images, prefill=cfg.prefill),
        limit=e.max_prompt_tokens, policy=e.overlong_prompts, reserve=2 * cfg.policy_max_new_tokens, what=what)
    _some_left(records, kept, what, e.max_prompt_tokens)
    # without a policy report, the questions its own check dropped are this report's drops too
    dropped["self_critic"] = {name: n + (dropped["policy"].get(name, 0) if "policy" not in cfg.reports else 0)}
    left = {id(r) for r in kept}  # by identity: benchmark ids may repeat
    return dropped, [i for i, r in enumerate(records) if id(r) in left]


def _some_left(records: list[Any], kept: list[Any], what: str, limit: int) -> None:
    """A report over no records is refused (its accuracies would read 0)."""
    if records and not kept:
        from visionrl.core.errors import UserError

        raise UserError(f"--max-prompt-tokens {limit}: every {what} record is over it; nothing left to report")


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Check, load, run the reports, write metrics.json, samples.jsonl and config.yaml; returns the metrics."""
    import torch
    from visionrl.core.console import Console
    from visionrl.core.evaluation.models import check_model_source, eval_model
    from visionrl.core.evaluation.outputs import write_jsonl, write_results

    start, e = time.perf_counter(), cfg.eval
    console = Console("critic-eval", quiet=e.quiet, verbose=e.verbose)
    console.quiet_libraries()
    check_model_source(e.model)
    console.header("LLaVA-Critic-R1 evaluation", {
        "model": e.model, "critic": e.data if "critic" in cfg.reports else None,
        "policy": cfg.policy_data if {"policy", "self-critic"} & set(cfg.reports) else None,
        "reports": ", ".join(cfg.reports)}, e.output_dir)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    critic_data, policy_data = load_all(cfg)
    vlm = eval_model(e.model)
    dropped, self_critic_rows = check_lengths(cfg, vlm, critic_data, policy_data)
    torch.manual_seed(e.seed)
    metrics, samples = run_reports(cfg, vlm, critic_data, policy_data, console, self_critic_rows)
    for report, counts in dropped.items():
        for name, n in counts.items():
            if n and name in metrics.get(report, {}):
                metrics[report][name]["dropped_overlong"] = float(n)
    metrics["runtime_s"] = round(time.perf_counter() - start, 2)
    paths = write_results(e.output_dir, cfg, metrics)
    write_jsonl(e.output_dir / "samples.jsonl", samples)
    console.summary([*summary_rows(metrics), ("metrics", str(paths["metrics"])),
                     ("samples", str(e.output_dir / "samples.jsonl"))])
    return metrics


def run_reports(cfg: EvalConfig, vlm: Any, critic_data: dict[str, list[PairRecord]],
                policy_data: dict[str, list[Any]], console: Any,
                self_critic_rows: list[int] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The critic, policy and self-critic reports asked for, each phase under its own progress bar (the
    self-critic on the first policy benchmark's questions at `self_critic_rows` only, when given)."""
    from visionrl.core.evaluation.pairwise_registry import PAIRWISE_BENCHMARKS
    from visionrl.critic import reports
    from visionrl.critic.judging import critic_judge

    gen = {"batch_size": cfg.eval.batch_size, "engine": cfg.engine}
    judge = critic_judge(vlm, max_new_tokens=cfg.max_new_tokens, prefill=cfg.prefill, **gen)
    metrics: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    for name, records in critic_data.items():
        bench = PAIRWISE_BENCHMARKS.get(name)
        with console.bar(f"critic {name}", total=len(records) * (1 + cfg.both_orders), unit=" prompts"):
            m, rows = reports.critic_report(judge, name, records, score=bench.score if bench else None,
                                            both_orders=cfg.both_orders)
        metrics.setdefault("critic", {})[name] = m
        samples += rows
    greedy: dict[str, list[str]] = {}
    for name, records in policy_data.items():
        with console.bar(f"policy {name}", total=len(records), unit=" prompts"):
            m, rows, greedy[name] = reports.policy_report(vlm, name, records, max_new_tokens=cfg.policy_max_new_tokens,
                                                          prefill=cfg.prefill, **gen)
        if "policy" in cfg.reports:
            metrics.setdefault("policy", {})[name] = m
            samples += rows
    if "self-critic" in cfg.reports and policy_data:
        with console.bar("self-critic", unit=" prompts"):
            metrics["self_critic"], rows = self_critic(cfg, vlm, judge, policy_data, greedy, self_critic_rows)
        samples += rows
    return metrics, samples


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """One closing line per benchmark and report."""
    from visionrl.core.console import one_metric_line

    keys = {"critic": ["accuracy", "macro_accuracy", "accuracy_plus", "position1_rate", "unparsed"],
            "policy": ["accuracy", "format"],
            "self_critic": ["greedy_accuracy", "majority_accuracy", "self_critic_accuracy", "oracle_pass_at_n",
                            "judge_calls"]}
    return [(f"{report.replace('_', '-')} {name}", one_metric_line(m, keys[report]))
            for report in keys for name, m in metrics.get(report, {}).items()]


def self_critic(cfg: EvalConfig, vlm: Any, judge: Any, policy_data: dict[str, list[Any]],
                greedy: dict[str, list[str]],
                rows_at: list[int] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The self-critic report on the first policy benchmark (its questions at `rows_at`, when given)."""
    from visionrl.critic import reports

    name, records = next(iter(policy_data.items()))
    answers = greedy[name]
    if rows_at is not None:
        records, answers = [records[i] for i in rows_at], [answers[i] for i in rows_at]
    candidates = reports.sample_candidates(vlm, records, cfg.self_critic_n, temperature=cfg.temperature,
                                           top_p=cfg.top_p, max_new_tokens=cfg.policy_max_new_tokens,
                                           batch_size=cfg.eval.batch_size, prefill=cfg.prefill, engine=cfg.engine)
    calls_before = judge.calls
    metrics, rows = reports.self_critic_report(records, candidates, answers, reports.model_judge_fn(judge),
                                               strategy=cfg.strategy, both_orders=cfg.self_critic_both_orders,
                                               shown=cfg.self_critic_shown, seed=cfg.eval.seed)
    assert judge.calls - calls_before <= metrics["judge_calls"], "the judge generated more than it was asked"
    for row in rows:
        row["benchmark"] = name
    return {name: {**metrics, "strategy": cfg.strategy, "shown": cfg.self_critic_shown}}, rows
