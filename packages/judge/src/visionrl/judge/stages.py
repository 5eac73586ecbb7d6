"""The five stages of one `judge-train` iteration (iterate.py says what each writes) and the run summary."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visionrl.core.data.records import PairRecord
from visionrl.judge.config import TrainConfig
from visionrl.judge.iterate import Models, card_for, read_jsonl, sft_steps
from visionrl.judge.sources import PromptItem

EVAL_KEYS = ("accuracy", "both_orders_accuracy", "consistency", "position1_rate", "unparsed")
FILTER_KEYS = ("pairs", "kept", "retention", "retention/closed", "retention/open", "label_agreement")


@dataclass
class Context:
    """What every stage of a run reads."""

    cfg: TrainConfig
    out: Path
    digest: str
    rank: int
    world: int
    pool: list[PromptItem]
    heldout: list[PairRecord]
    models: Models
    pool_by_id: dict[str, PromptItem] = field(init=False)

    def __post_init__(self) -> None:
        self.pool_by_id = {it.id: it for it in self.pool}


# ---------------------------------------------------------------- data


def load_pool(cfg: TrainConfig) -> list[PromptItem]:
    """The prompt pool: shapes, or a LLaVA-OneVision-style source (`--data`)."""
    from visionrl.core.recipe import SHAPES, SHAPES_RL_SEED
    from visionrl.judge.sources import llava_prompts, shapes_prompts

    ds = cfg.dataset
    if cfg.run.data == SHAPES:
        pool = shapes_prompts(ds.shapes_train_size, ds.shapes_open_fraction, SHAPES_RL_SEED)
        return pool[: ds.limit] if ds.limit else pool
    return llava_prompts(cfg.run.data, split=ds.split, config=ds.config, limit=ds.limit, classifier=ds.classifier,
                         max_words=ds.closed_max_words)


def load_heldout(cfg: TrainConfig) -> list[PairRecord]:
    """Held-out pairs: the demo's held-out shapes world, or a pairwise benchmark (`--dataset.eval-data`)."""
    from visionrl.core.demo_teacher import HELDOUT_SEED, demo_pairs
    from visionrl.core.evaluation.pairwise_registry import parse_benchmarks

    ds = cfg.dataset
    if not ds.eval_data:
        return demo_pairs(HELDOUT_SEED, ds.eval_size)
    (bench, source), *rest = parse_benchmarks(ds.eval_data, flag="--dataset.eval-data")
    if rest:
        from visionrl.core.errors import UserError

        raise UserError(f"--dataset.eval-data {ds.eval_data!r}: name one benchmark")
    return bench.load(source, limit=ds.eval_size, seed=cfg.run.seed)


# ---------------------------------------------------------------- helpers


def _barrier(ctx: Context) -> None:
    if ctx.world > 1:
        import torch.distributed as dist

        dist.barrier()


def _write_json(ctx: Context, path: Path, payload: dict[str, Any]) -> None:
    from visionrl.core.evaluation.outputs import write_json

    if ctx.rank == 0:
        write_json(path, payload)
    _barrier(ctx)


def _seed(ctx: Context, k: int, stage: str) -> None:
    """Sampling seed of a stage: a function of (seed, iteration, rank, stage), so a redone stage draws as before."""
    import torch
    from visionrl.core.lit.common import step_seed

    torch.manual_seed(step_seed(ctx.cfg.run.seed, k, ctx.rank, stage))


def _log(ctx: Context, metrics: dict[str, float], keys: tuple[str, ...], k: int) -> None:
    """TensorBoard `eval/judge/<metric>` at step k (rank 0)."""
    if ctx.rank != 0:
        return
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(ctx.out / "tensorboard")) as writer:
        for key in keys:
            if key in metrics:
                writer.add_scalar(f"eval/judge/{key}", metrics[key], k)


def _say(ctx: Context, message: str) -> None:
    if ctx.rank == 0 and not ctx.cfg.run.quiet:
        print(message, flush=True)


def iteration_done(folder: Path) -> bool:
    return all((folder / n).is_file() for n in ("eval.json", "kept.jsonl", "metrics.json"))


# ---------------------------------------------------------------- stages


def eval_stage(ctx: Context, k: int, d: Path) -> None:
    """M(k) on the held-out pairs, greedy, both orders."""
    from visionrl.core.evaluation.sharding import shard_map, write_jsonl_rank_zero
    from visionrl.judge.judging import both_orders_metrics, heldout_rows

    cfg, judge = ctx.cfg, ctx.models.judge(k, ctx.out)
    rows = shard_map(lambda shard: heldout_rows(judge, shard, style=cfg.judge_prompt,
                                                max_new_tokens=cfg.eval_max_new_tokens, engine=cfg.engine,
                                                batch_size=cfg.batch_size), ctx.heldout)
    metrics = both_orders_metrics(rows)
    write_jsonl_rank_zero(d / "heldout.jsonl", rows)
    _write_json(ctx, d / "eval.json", metrics)
    _log(ctx, metrics, EVAL_KEYS, k)
    _say(ctx, f"iteration {k}: held-out accuracy {metrics.get('accuracy', float('nan')):.3f}, both orders "
              f"{metrics.get('both_orders_accuracy', float('nan')):.3f}, position-1 rate "
              f"{metrics.get('position1_rate', float('nan')):.3f}")


def pairs_stage(ctx: Context, k: int, d: Path) -> None:
    """Synthesise this iteration's pairs with the generator (the base model)."""
    from visionrl.core.evaluation.sharding import shard_map, write_jsonl_rank_zero
    from visionrl.judge.pairs import finish_rows, match_size, pair_lone_answers, pair_stats, synthesize
    from visionrl.judge.sources import iteration_slice

    cfg = ctx.cfg
    items = iteration_slice(ctx.pool, k, cfg.dataset.prompts_per_iteration)
    generator = ctx.models.judge(0, ctx.out) if k == 0 else ctx.models.load(cfg.run.model)
    _seed(ctx, k, "pairs")
    rows = shard_map(lambda shard: synthesize(generator, shard, cfg, k), items)
    if cfg.lone_answer == "pool":
        rows = pair_lone_answers(rows, cfg.run.seed, k)
    if cfg.match_size:
        rows = match_size(rows, cfg.run.seed, k)
    rows = finish_rows(rows, k)
    write_jsonl_rank_zero(d / "pairs.jsonl", rows)
    if k > 0:
        from visionrl.judge.iterate import free_memory

        del generator
        free_memory()
    stats = pair_stats(rows)
    counts = [f"{key} {v:.0f}" for key, v in stats.items() if key.startswith("dropped") or key.endswith("pooled")]
    _say(ctx, f"iteration {k}: {stats.get('pairs', 0):.0f} pairs from {len(items)} prompts ({', '.join(counts)})")


def judgments_stage(ctx: Context, k: int, d: Path) -> None:
    """M(k) judges every pair in both orders, K samples each."""
    from visionrl.core.evaluation.sharding import shard_map
    from visionrl.judge.judging import judge_rows
    from visionrl.judge.pairs import pair_records

    cfg = ctx.cfg
    pairs = pair_records(read_jsonl(d / "pairs.jsonl"), ctx.pool_by_id)
    judge = ctx.models.judge(k, ctx.out)
    _seed(ctx, k, "judgments")
    shard_map(lambda shard: judge_rows(judge, shard, style=cfg.judge_prompt, samples=cfg.judge_samples,
                                       sampling=cfg.judge_sampling, engine=cfg.engine, batch_size=cfg.batch_size),
              pairs, path=d / "judgments.jsonl")


def kept_stage(ctx: Context, k: int, d: Path) -> None:
    """Keep the traces whose verdict matches the synthetic label (both orders, or `--filter single`)."""
    from visionrl.core.evaluation.sharding import write_jsonl_rank_zero
    from visionrl.judge.judging import filter_traces
    from visionrl.judge.pairs import pair_stats

    kept, stats = filter_traces(read_jsonl(d / "judgments.jsonl"), ctx.cfg.filter)
    stats |= {f"synthesis/{key}": v for key, v in pair_stats(read_jsonl(d / "pairs.jsonl")).items()}
    _write_json(ctx, d / "retention.json", stats)
    write_jsonl_rank_zero(d / "kept.jsonl", kept)
    _log(ctx, stats, FILTER_KEYS, k)
    _say(ctx, f"iteration {k}: kept {len(kept)} traces of {stats.get('pairs', 0):.0f} pairs "
              f"(retention {stats.get('retention', 0.0):.3f})")


def model_stage(ctx: Context, k: int, d: Path) -> None:
    """M(k+1) = SFT of M(k) on the kept traces (core SFTModule through the runner), exported to iter_k/model."""
    from visionrl.core.lit.sft import SFTExample
    from visionrl.core.recipe import Method
    from visionrl.core.runner import build_module, fit_and_export
    from visionrl.judge.judging import order_prompt
    from visionrl.judge.pairs import pair_records

    cfg = ctx.cfg
    pairs = {p.id: p for p in pair_records(read_jsonl(d / "pairs.jsonl"), ctx.pool_by_id)}
    examples = [SFTExample(order_prompt(pairs[t["pair"]], t["order"], cfg.judge_prompt), t["text"])
                for t in read_jsonl(d / "kept.jsonl")]
    judge = ctx.models.judge(k, ctx.out)
    if not examples:
        _keep_unchanged(ctx, judge, d, k)
    else:
        resume = "last" if (d / "checkpoints" / "last.ckpt").is_file() else None
        run_k = dataclasses.replace(cfg.run, output_dir=d, max_steps=sft_steps(cfg, len(examples), ctx.world),
                                    resume=resume, push_to_hub=None, eval_every=0)
        module = build_module(cfg.sft, judge, Method(train=examples), run_k, d)
        module.identity = {"cli": "judge-train", "method": f"judge iteration {k + 1}", "model": cfg.run.model}
        fit_and_export(run_k, module, card=card_for(cfg, k))
    ctx.models.judge_k = -1  # M(k+1) is read back from iter_k/model: a resumed run takes the same path
    _say(ctx, f"iteration {k}: trained M({k + 1}) on {len(examples)} traces -> {d / 'model'}")


def _keep_unchanged(ctx: Context, judge: Any, d: Path, k: int) -> None:
    """No trace kept: M(k+1) = M(k), exported as is."""
    from visionrl.core.hub import export_model

    if ctx.rank == 0:
        export_model(judge.model, judge.processor, d / "model", card_for(ctx.cfg, k))
    _write_json(ctx, d / "metrics.json", {"steps": 0, "train": {}})


def run_iteration(ctx: Context, k: int) -> None:
    """The unfinished stages of iteration k (only `eval` for k = --iterations)."""
    d = ctx.out / f"iter_{k}"
    if ctx.rank == 0:
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "config_hash").is_file():
            (d / "config_hash").write_text(ctx.digest + "\n")
    _barrier(ctx)
    stages = [("eval.json", eval_stage)]
    if k < ctx.cfg.iterations:
        stages += [("pairs.jsonl", pairs_stage), ("judgments.jsonl", judgments_stage), ("kept.jsonl", kept_stage),
                   ("metrics.json", model_stage)]
    for marker, stage in stages:
        if not (d / marker).is_file():
            stage(ctx, k, d)


def summarize(ctx: Context) -> dict[str, Any]:
    """metrics.json: one row per iteration (held-out metrics of M(k), then its filter's retention), plus the
    first and last judge's held-out metrics as `before` and `after`."""
    rows = []
    for k in range(ctx.cfg.iterations + 1):
        d = ctx.out / f"iter_{k}"
        row: dict[str, Any] = {"iteration": k, **json.loads((d / "eval.json").read_text())}
        if (d / "retention.json").is_file():
            row |= {key: v for key, v in json.loads((d / "retention.json").read_text()).items()
                    if key in FILTER_KEYS or key.startswith("synthesis/pairs")}
        if (d / "metrics.json").is_file():
            row["sft_steps"] = json.loads((d / "metrics.json").read_text()).get("steps", 0)
        rows.append(row)
    keys = [key for key in EVAL_KEYS if key in rows[0]]
    return {"iterations": rows, "before": {key: rows[0][key] for key in keys},
            "after": {key: rows[-1][key] for key in keys if key in rows[-1]}, "config_hash": ctx.digest,
            "final_model": f"iter_{ctx.cfg.iterations - 1}/model"}
