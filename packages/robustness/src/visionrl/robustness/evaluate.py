"""`robustness-eval`: the robustness and CoT-consistency suite of arXiv 2602.12506 on any checkpoint.

Writes into `--output-dir`: `metrics.json` (every reported number, flat `eval/<benchmark>/<variant>/<metric>`
keys), `predictions.jsonl` (one row per item and variant: the exact scoring prompt, the saved image path,
letter probabilities, P(correct), entropy, parsed answer, correctness, the judges' reading of the reasoning,
consistency), `images/`, `report.md` and four PNG figures.

Departures (switchable):
1. Judges load through the core VLM wrapper, so the paper's text-only judges (Qwen3-32B, GPT-OSS-120B,
   Llama-3.1-70B) are replaced in the `paper` preset by a VLM of the same family; `--judges` takes any
   local or hub VLM, `self` (the evaluated model) or `rule`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import tyro
from visionrl.core.cli import parse_config, prepare_output_dir, run_cli
from visionrl.core.config import EvalArgs
from visionrl.core.errors import UserError
from visionrl.robustness.perturb import VARIANTS

ALL_VARIANTS: tuple[str, ...] = tuple(VARIANTS)
DESCRIPTION = (
    "Robustness and chain-of-thought consistency of a VLM under prompt perturbations (arXiv 2602.12506). "
    "--data takes comma-separated entries: shapes; a benchmark name (3dsrbench, cvbench, spatial-mm-obj, "
    "spatial-mm-multihop, whatsup, vstar, mme-realworld-lite, mmbench) or its hub id; NAME=FOLDER for a local "
    "copy in that benchmark's format; or any folder/hub id in the canonical MCQ layout."
)


@dataclass(frozen=True)
class EvalConfig:
    """Robustness and chain-of-thought consistency evaluation (arXiv 2602.12506)."""

    eval: Annotated[EvalArgs, tyro.conf.OmitArgPrefixes]
    variants: tuple[str, ...] = ALL_VARIANTS
    """Prompt variants to run (`base` is needed for accuracy drops and AUROC)."""
    judges: tuple[str, ...] = ("rule",)
    """Consistency judges, the first is primary: `rule`, `self` (the evaluated model as an LLM judge), or
    a local/hub VLM id. Two or more also report strict agreement and Fleiss' κ."""
    max_new_tokens: int = 64
    """Greedy completion budget per item and variant."""
    judge_max_new_tokens: int = 64
    split: str = "test"
    """Split of a hub dataset in the canonical layout (table benchmarks use their own)."""
    question_column: str = "question"
    """Canonical-layout column maps (`--data` folders or hub ids that are not in the benchmark table)."""
    options_column: str = "options"
    answer_column: str = "answer"
    images_column: str = "images"
    shapes_size: int = 200
    """Generated shapes questions when `--data shapes` and no `--limit`."""
    threads: int | None = None
    """Intra-op CPU threads (tiny models want 1); None leaves torch's default."""
    plots: bool = True
    """Write the PNG figures."""


PRESETS: dict[str, EvalConfig] = {
    "demo": EvalConfig(
        eval=EvalArgs(model="demo", data="shapes", output_dir=Path("outputs/robustness-eval"), batch_size=64),
        max_new_tokens=48,
        threads=1,
    ),
    "paper": EvalConfig(
        eval=EvalArgs(
            model="RUBBISHLIKE/SpaceR",
            data="cvbench,vstar,mme-realworld-lite,mmbench",
            output_dir=Path("outputs/robustness-eval-paper"),
            batch_size=16,
        ),
        variants=ALL_VARIANTS,
        judges=("Qwen/Qwen3-VL-32B-Instruct", "rule"),
        max_new_tokens=1024,
        judge_max_new_tokens=256,
    ),
}


def validate(cfg: EvalConfig) -> None:
    """Flag values users can get wrong (before anything heavy is loaded)."""
    e = cfg.eval
    unknown = [v for v in cfg.variants if v not in VARIANTS]
    checks = [
        (e.limit is None or e.limit > 0, "--limit must be positive"),
        (e.batch_size > 0, "--batch-size must be positive"),
        (not unknown, f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS)}"),
        (bool(cfg.variants), "--variants needs at least one variant"),
        (bool(cfg.judges), "--judges needs at least one judge (e.g. rule)"),
        (len(set(cfg.judges)) == len(cfg.judges), "--judges lists a judge twice"),
        (cfg.max_new_tokens > 0 and cfg.judge_max_new_tokens > 0, "--max-new-tokens values must be positive"),
        (cfg.shapes_size > 0, "--shapes-size must be positive"),
        (cfg.threads is None or cfg.threads > 0, "--threads must be positive"),
    ]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg)


def build_judges(names: tuple[str, ...], vlm: Any, cfg: EvalConfig) -> list[Any]:
    """Judges from `--judges` names (a VLM named twice is loaded once)."""
    from visionrl.core.config import RunArgs
    from visionrl.core.runner import load_policy
    from visionrl.robustness.judge import LLMJudge, RuleJudge

    out, loaded = [], {"self": vlm}
    for name in names:
        if name == "rule":
            out.append(RuleJudge())
            continue
        if name not in loaded:
            loaded[name] = load_policy(RunArgs(model=name, max_steps=1), None)
        out.append(
            LLMJudge(
                loaded[name],
                name=name,
                batch_size=cfg.eval.batch_size,
                max_new_tokens=cfg.judge_max_new_tokens,
            )
        )
    return out


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
    from visionrl.core.config import RunArgs
    from visionrl.core.runner import load_policy
    from visionrl.robustness.benchmarks import load_benchmarks
    from visionrl.robustness.metrics import summarize
    from visionrl.robustness.report import write_figures, write_report
    from visionrl.robustness.suite import run_suite

    start = time.perf_counter()
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
    vlm = load_policy(RunArgs(model=cfg.eval.model, max_steps=1), None)
    judges = judges if judges is not None else build_judges(cfg.judges, vlm, cfg)
    out = prepare_output_dir(cfg.eval, cfg)
    image_paths = save_images(benchmarks, out)
    results = run_suite(
        vlm,
        benchmarks,
        cfg.variants,
        judges,
        seed=cfg.eval.seed,
        batch_size=cfg.eval.batch_size,
        max_new_tokens=cfg.max_new_tokens,
    )
    for r in results:
        r.images = image_paths[(r.benchmark, r.id)]
    metrics = summarize(results)
    if len(judges) >= 2:
        metrics.update(judge_agreement(results, [j.name for j in judges]))
    metrics["eval/runtime_s"] = round(time.perf_counter() - start, 2)
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r.to_json(), ensure_ascii=False) + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    if cfg.plots:
        write_figures(results, metrics, out)
    write_report(
        results,
        metrics,
        out,
        model=cfg.eval.model,
        extra={
            "data": cfg.eval.data,
            "judges": ", ".join(j.name for j in judges),
            "seed": cfg.eval.seed,
            "runtime": f"{metrics['eval/runtime_s']:.0f} s",
        },
    )
    return metrics


def _main(args: list[str] | None = None) -> None:
    cfg = parse_config(
        EvalConfig,
        PRESETS,
        args=args,
        prog="robustness-eval",
        description=DESCRIPTION,
    )
    validate(cfg)
    metrics = run_eval(cfg)
    base = {k: round(v, 4) for k, v in metrics.items() if k.endswith("/accuracy")}
    print(json.dumps(base, indent=2, sort_keys=True))
    print(f"wrote {cfg.eval.output_dir}/report.md")


def main() -> None:
    run_cli(_main)


if __name__ == "__main__":
    main()
