"""`rewardmodel-eval`: score one or more reward models on pairwise benchmarks, with their ensembles and the
modality router.

`--data` lists the benchmarks: `shapes` (the demo's held-out image and text pairs), `vlrewardbench[=SRC]`,
`mmrb=DIR`, `mmrlhf[=SRC]` (core's loaders and official scorers), plus `--rewardbench`/`--rmbench` text sets.
A pair is right when the chosen answer scores strictly higher. Each model is loaded, scores every benchmark
(each distinct prompt/response once) and the validation pairs, and is freed before the next one loads.

metrics.json: `{"models": {name: {benchmark: metrics}}, "ensembles": {kind: {benchmark: metrics}, "weights":
...}, "router": {benchmark: metrics}}`; every benchmark's metrics add `length_corr` and `ece` (`textbench`).
predictions.jsonl: one row per model (or ensemble), benchmark and pair with both scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.core.errors import UserError
from visionrl.rewardmodel.config import EvalConfig

Scores = tuple[list[float], list[float]]
"""(chosen scores, rejected scores) of a benchmark's pairs."""
TEXT_MODEL = "--text-model"
"""Key of the router's text model in the score table (its path may also be one of the models)."""


@dataclass
class Benchmark:
    name: str
    records: list[PairRecord]
    score: Callable[[Sequence[PairRecord], Sequence[bool]], dict[str, float]]


def _outcome_scorer(score: Callable[..., dict[str, float]]) -> Callable[[Sequence[PairRecord], Sequence[bool]], dict[str, float]]:
    return lambda records, correct: score(records, ["chosen" if ok else "rejected" for ok in correct])


def score_shapes(records: Sequence[PairRecord], correct: Sequence[bool]) -> dict[str, float]:
    """`accuracy` over image pairs, `text_accuracy` over text pairs, `accuracy/<category>` for each."""
    from visionrl.rewardmodel.textbench import score_by_category

    images = [(r, ok) for r, ok in zip(records, correct) if r.images]
    texts = [ok for r, ok in zip(records, correct) if not r.images]
    out = {k: v for k, v in score_by_category(records, correct).items() if "/" in k}
    if images:
        out["accuracy"] = sum(ok for _, ok in images) / len(images)
    if texts:
        out["text_accuracy"] = sum(texts) / len(texts)
    return out


def load_benchmarks(cfg: EvalConfig) -> list[Benchmark]:
    """The benchmarks `--data`, `--rewardbench` and `--rmbench` name, read before any model loads."""
    from visionrl.core.evaluation.pairwise_registry import PAIRWISE_BENCHMARKS, parse_benchmarks
    from visionrl.rewardmodel import demo_data as D
    from visionrl.rewardmodel import textbench as T

    limit, out = cfg.eval.limit, []
    entries = [e.strip() for e in cfg.eval.data.split(",") if e.strip()]
    if "shapes" in entries:
        n = limit or 300
        records = D.image_pairs(n - n // 3, D.HELDOUT_WORLD) + D.text_pairs(n // 3, D.HELDOUT_WORLD)
        out.append(Benchmark("shapes", records, score_shapes))
    rest = ",".join(e for e in entries if e != "shapes")
    for bench, source in parse_benchmarks(rest, flag="--data") if rest else []:
        records = bench.load(source, limit=limit, seed=cfg.eval.seed)
        out.append(Benchmark(bench.name, records, _outcome_scorer(PAIRWISE_BENCHMARKS[bench.name].score)))
    if cfg.rewardbench:
        out.append(Benchmark("rewardbench", T.load_rewardbench(cfg.rewardbench, limit=limit), T.score_by_category))
    if cfg.rmbench:
        out.append(Benchmark("rmbench", T.load_rmbench(cfg.rmbench, limit=limit), T.score_rmbench))
    if not out:
        raise UserError(f"--data {cfg.eval.data!r} names no benchmark")
    return out


def validation_pairs(cfg: EvalConfig) -> list[PairRecord]:
    """The weighted ensembles' validation set: `--validation-size` pairs sampled uniformly from the sources."""
    from visionrl.rewardmodel import demo_data as D
    from visionrl.rewardmodel.mixer import uniform_sample
    from visionrl.rewardmodel.sources import open_source, parse_sources

    n = cfg.validation_size
    if cfg.validation == "shapes":
        streams = [("shapes", D.image_pairs(n, D.VALIDATION_WORLD)), ("text", D.text_pairs(n, D.VALIDATION_WORLD))]
    else:
        streams = [(s.name, open_source(s, p)) for s, p in parse_sources(cfg.validation, flag="--validation")]
    return uniform_sample(streams, n, seed=cfg.eval.seed)


def score_pairs(scorer: Any, records: Sequence[PairRecord], batch_size: int) -> Scores:
    """Chosen and rejected scores, each distinct (prompt, images, response) scored once."""
    from visionrl.rewardmodel.images import pair_prompt

    keys: dict[tuple[Any, ...], int] = {}
    items: list[tuple[PairRecord, str]] = []
    index = []
    for r in records:
        for text in (r.chosen, r.rejected):
            key = (r.prompt, tuple(id(im) for im in r.images), text)
            if key not in keys:
                keys[key] = len(items)
                items.append((r, text))
            index.append(keys[key])
    flat: list[float] = []
    for lo in range(0, len(items), batch_size):
        chunk = items[lo:lo + batch_size]
        flat += scorer.score([pair_prompt(r) for r, _ in chunk], [t for _, t in chunk], batch_size=batch_size).tolist()
    scores = [flat[i] for i in index]
    return scores[0::2], scores[1::2]


def metrics_of(bench: Benchmark, scores: Scores) -> dict[str, float]:
    from visionrl.rewardmodel.textbench import calibration_error, length_correlation

    chosen, rejected = scores
    out = bench.score(bench.records, [c > r for c, r in zip(chosen, rejected)])
    corr = length_correlation(chosen + rejected, [r.chosen for r in bench.records] + [r.rejected for r in bench.records])
    if corr is not None:
        out["length_corr"] = corr
    out["ece"] = calibration_error(chosen, rejected)
    return out


def check_models(cfg: EvalConfig) -> list[tuple[str, str]]:
    """(flag, path) of every reward model, each checked to be one before anything loads."""
    from visionrl.core.lit.reward_scorer import read_head_spec

    named = [("--model", cfg.eval.model)] + [("--models", m) for m in cfg.models]
    named += [("--text-model", cfg.text_model)] if cfg.text_model else []
    for flag, path in named:
        if not Path(path).expanduser().is_dir():
            raise UserError(f"{flag} {path}: no such reward-model folder (rewardmodel-train writes one to "
                            "<output-dir>/model)")
        read_head_spec(path, flag)
    return named


def run_eval(cfg: EvalConfig) -> dict[str, Any]:
    """Score every model, ensemble and the router; write metrics.json and predictions.jsonl; return the metrics."""
    import torch
    from visionrl.core.console import Console
    from visionrl.core.evaluation.outputs import write_results
    from visionrl.core.lit.reward_scorer import load_reward_model

    e = cfg.eval
    console = Console("rewardmodel-eval", quiet=e.quiet, verbose=e.verbose)
    console.quiet_libraries()
    named = check_models(cfg)
    console.header("reward-model evaluation", {"models": len([n for n in named if n[0] != "--text-model"]),
                                               "router": cfg.text_model, "data": e.data}, e.output_dir)
    benches = load_benchmarks(cfg)
    models = [(f, p) for f, p in named if f != "--text-model"]
    weighted = len(models) > 1 and any(k != "mean" for k in cfg.ensembles)
    validation = validation_pairs(cfg) if weighted else []
    torch.manual_seed(cfg.eval.seed)
    scores: dict[str, dict[str, Scores]] = {}
    for flag, path in named:
        scorer = load_reward_model(path, flag=flag)
        texts_only = flag == "--text-model"  # the router asks the text model about text-only pairs only
        key = TEXT_MODEL if texts_only else path
        scores[key] = {b.name: score_pairs(scorer, [r for r in b.records if not (texts_only and r.images)],
                                           cfg.eval.batch_size) for b in benches}
        if validation and not texts_only:
            scores[key]["_validation"] = score_pairs(scorer, validation, cfg.eval.batch_size)
        del scorer
    metrics, rows = combine_all(cfg, benches, models, scores)
    paths = write_results(cfg.eval.output_dir, cfg, metrics, rows)
    console.summary([*summary_rows(metrics), ("metrics", str(paths["metrics"])),
                     ("predictions", str(paths["predictions"]))])
    return metrics


def summary_rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """One row per model, ensemble and the router: accuracy (and text accuracy) per benchmark.

    >>> summary_rows({"models": {"a/model": {"shapes": {"accuracy": 0.8, "text_accuracy": 0.9}}}})
    [('a/model', 'shapes accuracy 0.800 · text_accuracy 0.900')]
    """
    rows = []
    groups = [*metrics.get("models", {}).items(),
              *((f"ensemble {k}", v) for k, v in metrics.get("ensembles", {}).items() if k != "weights")]
    if "router" in metrics:
        groups.append(("router", metrics["router"]))
    for name, per_bench in groups:
        cells = [f"{bench} " + " · ".join(f"{k} {v:.3f}" for k, v in m.items() if k in ("accuracy", "text_accuracy"))
                 for bench, m in per_bench.items()]
        rows.append((name, " | ".join(cells)))
    return rows


def combine_all(cfg: EvalConfig, benches: Sequence[Benchmark], models: Sequence[tuple[str, str]],
                scores: dict[str, dict[str, Scores]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-model metrics, ensembles (two or more models) and the router, with their prediction rows."""
    from visionrl.rewardmodel.ensemble import combine, ensemble_weights, route

    paths = [p for _, p in models]
    out: dict[str, Any] = {"models": {}, "ensembles": {}}
    rows: list[dict[str, Any]] = []

    def report(name: str, bench: Benchmark, s: Scores) -> dict[str, float]:
        rows.extend({"model": name, "benchmark": bench.name, "id": r.id, "chosen_score": c, "rejected_score": j,
                     "correct": c > j} for r, c, j in zip(bench.records, *s))
        return metrics_of(bench, s)

    for p in paths:
        out["models"][p] = {b.name: report(p, b, scores[p][b.name]) for b in benches}
    final = {b.name: scores[paths[0]][b.name] for b in benches}
    if len(paths) > 1:
        weights = {}
        for kind in cfg.ensembles:
            val = [scores[p]["_validation"] for p in paths] if kind != "mean" else [([0.0], [0.0])] * len(paths)
            weights[kind] = w = ensemble_weights(kind, [v[0] for v in val], [v[1] for v in val])
            mixed = {b.name: (combine([scores[p][b.name][0] for p in paths], w),
                              combine([scores[p][b.name][1] for p in paths], w)) for b in benches}
            out["ensembles"][kind] = {b.name: report(f"ensemble:{kind}", b, mixed[b.name]) for b in benches}
            final = mixed if kind == cfg.ensembles[0] else final
        out["ensembles"]["weights"] = {k: dict(zip(paths, w)) for k, w in weights.items()}
    if cfg.text_model:
        out["router"] = {}
        for b in benches:
            text = iter(zip(*scores[TEXT_MODEL][b.name]))
            has_images = [bool(r.images) for r in b.records]
            routed = [next(text) if not img else (c, j) for img, c, j in zip(has_images, *final[b.name])]
            s = (route(has_images, final[b.name][0], [c for c, _ in routed]),
                 route(has_images, final[b.name][1], [j for _, j in routed]))
            out["router"][b.name] = report("router", b, s)
    return out, rows
