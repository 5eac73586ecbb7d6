"""`robustness-eval`: the robustness and CoT-consistency suite of arXiv 2602.12506 on any checkpoint.

Writes into `--output-dir`: `metrics.json` (every reported number, flat `eval/<benchmark>/<variant>/<metric>`
keys), `predictions.jsonl` (one row per item and variant: the exact scoring prompt, the saved image path,
letter probabilities, P(correct), entropy, parsed answer, correctness, the judges' reading of the reasoning,
consistency), `images/`, `report.md` and four PNG figures.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from visionrl.robustness.config import EvalConfig


def build_judges(names: tuple[str, ...], vlm: Any, cfg: EvalConfig) -> list[Any]:
    """Judges from `--judges` names (a model named twice is loaded once)."""
    from visionrl.robustness.judge import make_judge

    loaded: dict[str, Any] = {}
    return [make_judge(name, flag="--judges", evaluated=vlm, batch_size=cfg.eval.batch_size,
                       max_new_tokens=cfg.judge_max_new_tokens, loaded=loaded) for name in names]


def save_images(benchmarks: dict[str, list[Any]], out: Path) -> dict[tuple[str, str], list[str]]:
    """Each record's images as PNG under `out/images/`; (benchmark, id) → paths relative to `out`."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    paths: dict[tuple[str, str], list[str]] = {}
    for bench, records in benchmarks.items():
        for r in records:
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", f"{bench}-{r.id}")
            rel = [f"images/{stem}_{k}.png" for k in range(len(r.images))]
            for im, p in zip(r.images, rel):
                im.save(out / p)  # PNG is lossless: the saved pixels are the ones the model saw
            paths[(bench, r.id)] = rel
    return paths


def judge_agreement(results: list[Any], names: list[str]) -> dict[str, float]:
    """Strict agreement and Fleiss' κ of the judges' reasoning choices, per benchmark."""
    from visionrl.robustness.judge import NONE, agreement

    out: dict[str, float] = {}
    for bench in dict.fromkeys(r.benchmark for r in results):
        rows = [r for r in results if r.benchmark == bench]
        cats = sorted({c for r in rows for c in r.letter_probs} | {NONE})
        stats = agreement([[r.judges[n] for r in rows] for n in names], cats)
        out.update({f"eval/{bench}/judges/{k}": v for k, v in stats.items()})
    return out


def run_eval(cfg: EvalConfig, *, judges: list[Any] | None = None) -> dict[str, float]:
    """Load data and model, run the suite, write every output file; returns metrics.json's content."""
    import torch
    from visionrl.core.console import Console
    from visionrl.core.data.lengths import check_prompt_lengths
    from visionrl.core.evaluation.judges import check_judge_specs as check_judges
    from visionrl.core.evaluation.models import check_model_source, eval_model
    from visionrl.core.evaluation.outputs import write_results
    from visionrl.robustness.benchmarks import load_benchmarks
    from visionrl.robustness.metrics import summarize
    from visionrl.robustness.perturb import perturb
    from visionrl.robustness.report import write_figures, write_report
    from visionrl.robustness.suite import run_suite

    start = time.perf_counter()
    e = cfg.eval
    console = Console("robustness-eval", quiet=e.quiet, verbose=e.verbose)
    console.quiet_libraries()
    check_model_source(e.model)
    check_judges(cfg.judges if judges is None else [], "--judges")
    console.header("robustness and CoT-consistency suite", {"model": e.model, "data": e.data,
                                                          "variants": len(cfg.variants),
                                                          "judges": ", ".join(cfg.judges)}, e.output_dir)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.eval.seed)
    columns = {
        "question": cfg.question_column,
        "options": cfg.options_column,
        "answer": cfg.answer_column,
        "images": cfg.images_column,
    }
    benchmarks = load_benchmarks(
        cfg.eval.data, cfg.eval.limit, split=cfg.split, columns=columns, shapes_size=cfg.shapes_size
    )
    vlm = eval_model(cfg.eval.model)
    dropped = {}
    for bench, records in benchmarks.items():
        benchmarks[bench], dropped[bench], _ = check_prompt_lengths(
            vlm, records, lambda r: perturb(r, "base").prompt, limit=e.max_prompt_tokens,
            policy=e.overlong_prompts, what=f"{bench} benchmark")
    judges = judges if judges is not None else build_judges(cfg.judges, vlm, cfg)
    out = cfg.eval.output_dir
    results = run_suite(
        vlm,
        benchmarks,
        cfg.variants,
        judges,
        seed=cfg.eval.seed,
        batch_size=cfg.eval.batch_size,
        max_new_tokens=cfg.max_new_tokens,
    )
    image_paths = save_images(benchmarks, out)
    for r in results:
        r.images = image_paths[(r.benchmark, r.id)]
    metrics = summarize(results)
    if len(judges) >= 2:
        metrics.update(judge_agreement(results, [j.name for j in judges]))
    metrics.update({f"eval/{bench}/dropped_overlong": float(n) for bench, n in dropped.items() if n})
    metrics["eval/runtime_s"] = round(time.perf_counter() - start, 2)
    paths = write_results(out, cfg, metrics, [r.to_json() for r in results])
    if cfg.plots:
        write_figures(results, metrics, out)
    write_report(
        results,
        metrics,
        out,
        model=cfg.eval.model,
        extra={
            **{bench: _headline(metrics, bench) for bench in benchmarks},
            "data": cfg.eval.data,
            "judges": ", ".join(j.name for j in judges),
            "seed": cfg.eval.seed,
            "runtime": f"{metrics['eval/runtime_s']:.0f} s",
        },
    )
    console.summary(
        [(bench, _headline(metrics, bench)) for bench in benchmarks]
        + [("report", str(out / "report.md")), ("metrics", str(paths["metrics"])),
           ("predictions", str(paths["predictions"]))]
    )
    return metrics


def _headline(metrics: dict[str, float], bench: str) -> str:
    """Base accuracy and the Wrong-Think accuracy drop, the suite's two headline numbers."""
    base = metrics.get(f"eval/{bench}/base/accuracy")
    wrong = metrics.get(f"eval/{bench}/wrong_think/accuracy")
    parts = [f"base accuracy {base:.3f}" if base is not None else ""]
    if base is not None and wrong is not None:
        parts.append(f"Wrong-Think accuracy {wrong:.3f} (drop {base - wrong:+.3f})")
    return " · ".join(p for p in parts if p)
