"""The self-training loop of `judge-train`, stage by stage, resumable at the first unfinished stage.

Iteration k's judge is M(k): M(0) = `--model`, M(k+1) = core `SFTModule` on M(k)'s kept traces (prompt masked),
exported to `iter_k/model`. Folder `iter_k/` holds, one stage each, written atomically when the stage ends:

    config_hash     the settings that shape this iteration (a re-run with other settings is refused)
    eval.json       M(k) on the held-out pairs, greedy, both orders (core `position_bias`)
    pairs.jsonl     one row per prompt: a synthetic pair, or why none (pairs.py)
    judgments.jsonl M(k)'s K sampled judgements per pair and order (judging.py)
    kept.jsonl      the traces the filter keeps, and retention.json their statistics
    model/          M(k+1) (with checkpoints/ while training and metrics.json when done)

After the last iteration K, `iter_K/eval.json` scores the final judge. Re-running the same command skips every
finished stage and redoes an interrupted one (an interrupted SFT continues from `iter_k/checkpoints/last.ckpt`);
`--overwrite` starts over. Generation is sharded over ranks (core `evaluation.sharding`); rank 0 writes.
`<output-dir>/metrics.json` gathers `iterations: [...]`, TensorBoard `eval/judge/*` has one point per iteration,
and `<output-dir>/model` links to the final judge.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from visionrl.core.console import Console
from visionrl.core.errors import UserError
from visionrl.judge.config import PAPER, TrainConfig

RUN_ONLY = {"output_dir", "devices", "num_nodes", "strategy", "accelerator", "threads", "resume", "push_to_hub",
            "save_every_n_steps", "log_every_n_steps", "eval_every", "overwrite", "quiet", "verbose"}
"""RunArgs fields that say how or where a run goes, not what it computes: left out of the config hash."""


def config_hash(cfg: TrainConfig) -> str:
    """A digest of every setting that shapes an iteration's files (not `--iterations`, nor where or on how many
    processes it runs), so a longer run can continue a shorter one."""
    record = dataclasses.asdict(cfg)
    record.pop("iterations")
    record["run"] = {k: v for k, v in record["run"].items() if k not in RUN_ONLY}
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_folders(out: Path, digest: str) -> None:
    """Every existing `iter_k` must have been written with these settings."""
    for folder in sorted(out.glob("iter_*")):
        saved = folder / "config_hash"
        if saved.is_file() and saved.read_text().strip() != digest:
            raise UserError(f"{folder}: written with other settings (config hash {saved.read_text().strip()}, this "
                            f"run {digest}); use another --output-dir, or --overwrite to start over")


def clear_run(out: Path) -> None:
    """`--overwrite`: delete what judge-train wrote into `out` (nothing else)."""
    for path in [*out.glob("iter_*"), *(out / n for n in ("config.yaml", "metrics.json", "tensorboard", "model"))]:
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class Models:
    """The judge of the current iteration, loaded once, and the generator, loaded for the pairs stage only."""

    def __init__(self, cfg: TrainConfig):
        self.cfg, self.judge_k, self.vlm = cfg, -1, None

    def load(self, name: str) -> Any:
        from visionrl.core.evaluation.models import load_model

        vlm = load_model(name, self.cfg.load, trust_remote_code=self.cfg.run.trust_remote_code)
        return place(vlm, self.cfg)

    def judge(self, k: int, out: Path) -> Any:
        if self.judge_k != k:
            self.vlm = None  # free the previous judge first
            free_memory()
            self.vlm = self.load(self.cfg.run.model if k == 0 else str(out / f"iter_{k - 1}" / "model"))
            self.judge_k = k
        return self.vlm


def free_memory() -> None:
    """Let go of dropped models now (a judge replaced by the next iteration's, a generator after its stage)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def place(vlm: Any, cfg: TrainConfig) -> Any:
    """Move a loaded model to this rank's GPU when the run uses GPUs (Lightning does it inside a fit)."""
    import torch

    if cfg.run.accelerator != "cpu" and torch.cuda.is_available():
        vlm.model.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return vlm


def run(cfg: TrainConfig) -> dict[str, Any]:
    """Every stage of every iteration not yet done; returns what `<output-dir>/metrics.json` holds."""
    from visionrl.core.evaluation.sharding import rank_and_world, start_ranks
    from visionrl.judge.stages import Context, load_heldout, load_pool, run_iteration, summarize

    console = Console("judge-train", quiet=cfg.run.quiet, verbose=cfg.run.verbose)
    console.quiet_libraries(lightning=True)
    _check_run(cfg)
    console.header(f"self-improving judge, {cfg.iterations} iterations", {
        "model": cfg.run.model, "data": cfg.run.data, "judge prompt": cfg.judge_prompt}, cfg.run.output_dir)
    start_ranks(cfg.run)
    rank, world = rank_and_world()
    out = cfg.run.output_dir
    digest = config_hash(cfg)
    if cfg.run.overwrite and rank == 0:
        clear_run(out)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # no rank reads the folder while rank 0 clears it
    check_folders(out, digest)
    pool, heldout = load_pool(cfg), load_heldout(cfg)
    ctx = Context(cfg=cfg, out=out, digest=digest, rank=rank, world=world, pool=pool, heldout=heldout,
                  models=Models(cfg))
    ctx.models.judge(_first_needed_judge(cfg, out), out)  # a bad --model fails before any folder is written
    _prepare(cfg, out, rank)
    start = time.perf_counter()
    for k in range(cfg.iterations + 1):
        run_iteration(ctx, k)
    metrics = summarize(ctx)
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    if rank == 0:
        from visionrl.core.evaluation.outputs import write_json

        write_json(out / "metrics.json", metrics)
        _link_final_model(out, cfg.iterations)
        if cfg.run.push_to_hub:
            from visionrl.core.hub import push_to_hub

            final = out / f"iter_{cfg.iterations - 1}" / "model"
            url = push_to_hub(final, cfg.run.push_to_hub, commit_message=f"Self-improving VLM judge ({PAPER})")
            console.line(f"pushed to {url}")
    console.summary(_summary_rows(metrics, out))
    return metrics


def _summary_rows(metrics: dict[str, Any], out: Path) -> list[tuple[str, str]]:
    """Held-out judge metrics per iteration (with its filter's retention), then the output paths."""
    from visionrl.core.console import before_after, one_metric_line

    rows = [(f"iteration {r['iteration']}", one_metric_line(
        r, ["accuracy", "both_orders_accuracy", "position1_rate", "retention"])) for r in metrics["iterations"]]
    return [*rows, ("held-out", before_after(metrics, ["accuracy", "both_orders_accuracy", "position1_rate"])),
            ("judge", str(out / metrics["final_model"])), ("metrics", str(out / "metrics.json")),
            ("curves", f"tensorboard --logdir {out / 'tensorboard'}")]


def _check_run(cfg: TrainConfig) -> None:
    import lightning as L
    import torch
    from visionrl.core.config import validate_run_args
    from visionrl.core.evaluation.models import check_model_source

    if cfg.run.resume not in (None, "last"):
        raise UserError(f"--resume {cfg.run.resume}: judge-train resumes by stage in --output-dir; re-run the "
                        "same command (or pass --resume last)")
    validate_run_args(dataclasses.replace(cfg.run, resume=None))
    check_model_source(cfg.run.model)
    if cfg.run.push_to_hub:
        from visionrl.core.hub import check_push

        check_push(cfg.run.push_to_hub)  # token and repo id checked before hours of training
    torch.set_num_threads(cfg.run.threads or max(1, (os.cpu_count() or 1) // cfg.run.devices))
    L.seed_everything(cfg.run.seed, workers=True, verbose=False)


def _first_needed_judge(cfg: TrainConfig, out: Path) -> int:
    """The iteration whose judge the first unfinished stage needs (so a finished run loads nothing more)."""
    from visionrl.judge.stages import iteration_done

    k = 0
    while k < cfg.iterations and iteration_done(out / f"iter_{k}"):
        k += 1
    return k


def _prepare(cfg: TrainConfig, out: Path, rank: int) -> None:
    from visionrl.core.cli import prepare_output_dir

    if rank == 0:
        prepare_output_dir(out, cfg)


def _link_final_model(out: Path, iterations: int) -> None:
    link, target = out / "model", Path(f"iter_{iterations - 1}") / "model"
    if link.is_symlink() or link.exists():
        if link.is_symlink() and Path(link.readlink()) == target:
            return
        link.unlink() if link.is_symlink() or link.is_file() else shutil.rmtree(link)
    link.symlink_to(target, target_is_directory=True)


def sft_steps(cfg: TrainConfig, examples: int, world: int) -> int:
    """Steps for `--epochs` passes over the kept traces at `--sft.batch-size` per rank, capped by `--max-steps`.

    >>> from visionrl.judge.config import TRAIN_PRESETS
    >>> sft_steps(TRAIN_PRESETS["demo"], 100, 1)  # ceil(5 × 100 / 16)
    32
    """
    return max(1, min(cfg.run.max_steps, math.ceil(cfg.epochs * examples / (cfg.sft.batch_size * world))))


def card_for(cfg: TrainConfig, k: int) -> Any:
    from visionrl.core.hub import ModelCardInfo

    return ModelCardInfo(base_model=cfg.run.model, datasets=[cfg.run.data],
                         method=f"Self-improving VLM judge, iteration {k + 1} (SFT on filtered judge traces)",
                         paper=PAPER, hyperparameters={"iteration": k + 1, "judge_prompt": cfg.judge_prompt,
                                                       "pair_labels": cfg.pair_labels, "filter": cfg.filter,
                                                       "epochs": cfg.epochs, "seed": cfg.run.seed})
