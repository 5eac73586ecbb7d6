"""Pieces every LightningModule here shares: optimiser config, LR schedule, per-step prompt
selection and sampling seeds that make resume exact, held-out evaluation across ranks."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from visionrl.core.hparams import OptimConfig

_log = logging.getLogger(__name__)


class NumericsError(RuntimeError):
    """A non-finite reward or loss; the message names the step."""


def check_finite(values: torch.Tensor, what: str, step: int, policy: str) -> bool:
    """True when every entry of `values` is finite on every rank. Otherwise `policy` "stop" raises
    `NumericsError` naming `what` and `step`, and "skip" logs a warning and returns False so the caller
    drops the values. Under DDP all ranks decide together: a rank that stopped or skipped a backward alone
    would leave the others waiting in the gradient all-reduce."""
    finite = torch.isfinite(values).all().float()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if bool(finite):
        return True
    message = f"{what} is not finite at step {step}"
    if policy == "stop":
        raise NumericsError(message)
    assert policy == "skip", f"unknown nan_policy {policy!r}"
    _log.warning("%s; skipped (nan_policy=skip)", message)
    return False


def build_optimizer(params: Sequence[torch.nn.Parameter], cfg: OptimConfig, total_steps: int):
    """AdamW + LambdaLR (warm-up, then constant/cosine/linear to `min_lr_ratio`)."""
    opt = torch.optim.AdamW([p for p in params if p.requires_grad], lr=cfg.lr, betas=cfg.betas,
                            weight_decay=cfg.weight_decay)

    def factor(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        frac = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        shape = 0.5 * (1 + math.cos(math.pi * frac)) if cfg.schedule == "cosine" else 1 - frac
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def step_seed(seed: int, step: int, rank: int, salt: str = "") -> int:
    """A seed that depends only on (seed, step, rank): ranks differ, and a resumed run draws
    exactly what the uninterrupted run drew, without saving any RNG state."""
    digest = hashlib.sha256(f"{seed}/{step}/{rank}/{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % (2**63)


def records_for_step(n_records: int, step: int, per_rank: int, rank: int, world: int, seed: int) -> list[int]:
    """Indices of the prompts rank `rank` trains on at `step`: an epoch-wise shuffled stream cut into
    global batches of `per_rank × world`. A pure function of its arguments, so resume is exact."""
    assert n_records > 0, "no training records"
    glob = per_rank * world
    out = []
    for j in range(per_rank):
        k = step * glob + rank * per_rank + j
        epoch, pos = divmod(k, n_records)
        out.append(_epoch_order(n_records, seed, epoch)[pos])
    return out


@functools.lru_cache(maxsize=4)
def _epoch_order(n_records: int, seed: int, epoch: int) -> tuple[int, ...]:
    """The shuffled record order of one epoch (shuffled once per epoch, not once per row)."""
    perm = list(range(n_records))
    random.Random(seed * 1_000_003 + epoch).shuffle(perm)
    return tuple(perm)


EvalFn = Callable[[Any, Sequence[Any]], dict[str, list[float]]]
"""(vlm, records) -> per-record values of each metric; the module averages them across ranks."""


def evaluate_sharded(module: Any, eval_fn: EvalFn, records: Sequence[Any]) -> dict[str, float]:
    """Run `eval_fn` on this rank's shard and average every metric over all ranks' records."""
    trainer = module.trainer
    rank, world = trainer.global_rank, trainer.world_size
    shard = list(records)[rank::world]
    values = eval_fn(module.vlm, shard) if shard else {}
    names = sorted(values) if values else []
    names = trainer.strategy.broadcast(names, src=0)
    sums = torch.tensor([[sum(values.get(n, [])), len(values.get(n, []))] for n in names], dtype=torch.float64,
                        device=module.device).reshape(-1, 2)
    sums = trainer.strategy.reduce(sums, reduce_op="sum")
    return {n: float(s / c) if c > 0 else float("nan") for n, (s, c) in zip(names, sums.tolist())}


def append_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def drop_jsonl_rows(path: Path, drop: Callable[[dict[str, Any]], bool]) -> None:
    """Rewrite `path` without the rows `drop` selects (atomically: a temp file, then rename). A last line
    without its newline is a write torn by a kill and is dropped too."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    whole = lines if not lines or lines[-1].endswith("\n") else lines[:-1]
    kept = [line for line in whole if line.strip() and not drop(json.loads(line))]
    if len(kept) == len(lines):
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


def accumulate_and_step(module: Any, rows: Sequence[Any], micro_batch_size: int, loss_on: Callable[[Sequence[Any]], Any],
                        stat_names: Sequence[str], params: Sequence[torch.nn.Parameter], what: str) -> dict[str, float]:
    """One optimiser step of a supervised-style module (SFT, DPO, reward model): micro-batches weighted by
    their share of rows (accumulation equals one batch of all rows), a non-finite loss stops naming the
    step (or is skipped: `cfg.nan_policy`), global-norm clipping, optimiser and schedule step. Returns
    row-weighted stats, grad norm and lr."""
    opt, sched = module.optimizers(), module.lr_schedulers()
    stats = dict.fromkeys(stat_names, 0.0)
    policy = getattr(module.cfg, "nan_policy", "stop")  # configs without the field (DPO, reward model) stop
    for lo in range(0, len(rows), micro_batch_size):
        chunk = rows[lo:lo + micro_batch_size]
        out = loss_on(chunk)
        if not check_finite(out.loss, f"{what} loss", module.step_idx, policy):
            continue  # skip: this micro-batch adds no gradient
        share = len(chunk) / len(rows)
        module.manual_backward(out.loss * share)
        for k in stats:
            stats[k] += float(getattr(out, k).detach()) * share
    grads = [p for p in params if p.grad is not None]
    max_norm = module.cfg.optim.max_grad_norm or float("inf")
    gn = float(torch.nn.utils.clip_grad_norm_(grads, max_norm)) if grads else 0.0
    opt.step()
    opt.zero_grad(set_to_none=True)
    sched.step()
    return {**stats, "grad_norm": gn, "lr": sched.get_last_lr()[0]}


def log_step(module: Any, metrics: dict[str, float], step: int) -> None:
    """One step's training metrics: averaged over ranks, written to the loggers now (so they reach disk with
    the step's checkpoint, and a run killed or pre-empted right after it loses no point of any curve), at
    the module's step (resumed runs continue the same x-axis), every `log_every_n_steps`; also kept in
    `module.last_metrics` for the progress bar and metrics.json. One collective per step, and no trip through
    Lightning's `log_dict` result collection, which took ~80% of the logging time in a cProfile of the GRPO step."""
    names = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in names], dtype=torch.float64, device=module.device)
    values = module.trainer.strategy.reduce(values, reduce_op="mean")
    averaged = dict(zip(names, values.tolist()))
    if step % max(1, module.trainer.log_every_n_steps) == 0:
        for logger in module.loggers:
            logger.log_metrics(averaged, step=step)
    module.last_metrics = averaged


class HeldOutEval:
    """Mixin for the LightningModules here: greedy held-out evaluation once before training (skipped when
    a resumed checkpoint already holds it) and once after, stored in `eval_results`; the step counter
    `step_idx` (steps done) and `eval_results` travel with the checkpoint. Expects `eval_fn`,
    `eval_records`, `eval_results`, `step_idx` and `total_steps` (steps planned) attributes.

    Every module counts its own steps under these two names; `trainer_steps` is what the Trainer's
    `max_steps` must be (optimiser steps, which differ from the module's steps only for GRPO)."""

    last_metrics: dict[str, float] = {}
    """The latest step's training metrics (`log_step` replaces it; never mutated in place)."""

    @property
    def trainer_steps(self) -> int:
        return self.total_steps

    identity: dict[str, str] = {}
    """Which run this is ({"cli", "method", "model"}; set by the runner), saved in every checkpoint so that
    `--resume` can refuse another run's checkpoint."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["visionrl"] = {"step": self.step_idx, "eval_results": self.eval_results, "run": self.identity}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("visionrl", {})
        self.step_idx, self.eval_results = state.get("step", 0), dict(state.get("eval_results", {}))
        self.eval_results.pop("after", None)  # belongs to the end of a fit; this one evaluates its own

    def export_extras(self, model_dir: Path, state: dict[str, torch.Tensor]) -> None:
        """Write files beside the exported model in `model_dir` (called on rank 0 right after the export, with
        the gathered state dict; `model_dir` is the final folder). Default: nothing."""
        return None

    def evaluate_before(self) -> None:
        if self.eval_fn and "before" not in self.eval_results:
            self.eval_results["before"] = self.evaluate()

    def on_train_end(self) -> None:
        # The runner's `HeldOutCallback` may have evaluated already (inside its progress bar).
        if self.eval_fn and "after" not in self.eval_results:
            self.eval_results["after"] = self.evaluate()

    def evaluate(self) -> dict[str, float]:
        self.eval()
        with torch.no_grad():
            out = evaluate_sharded(self, self.eval_fn, self.eval_records)
        # Back to train mode unconditionally: Lightning keeps a module loaded in eval mode (as HF models
        # load) in eval mode, so "restore what it was" would train in eval mode.
        self.train()
        return out
