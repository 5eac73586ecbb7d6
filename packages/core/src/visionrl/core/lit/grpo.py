"""GRPO as a LightningModule (manual optimisation).

One `training_step` = one rollout step: pick prompts → sample G completions → score them with
named, weighted rewards → group advantages → `ppo_epochs` × `mini_batches` optimiser steps, each
accumulated over micro-batches. Semantics follow EasyR1 / TRL (see `visionrl.core.losses`):

1. Old log-probs are recomputed only when the update can be off-policy (`ppo_epochs > 1` or
   `mini_batches > 1`); otherwise the ratio is exactly 1 and the old log-probs are the detached
   current ones, which gives the same gradient at half the forward cost.
2. A frozen reference model exists only when β > 0 (for LoRA the adapter-disabled base is used).
3. Sampling seeds and prompt choice are pure functions of (seed, step, rank), so `--resume last`
   reproduces an uninterrupted run exactly and DDP ranks sample different completions.
4. Work that depends on the prompt alone is done once per distinct prompt (vlm/sharing.py): the rollout's
   encoding is reused by every pass; with `shared_vision` the vision tower runs once per prompt per pass
   (once per step when it is frozen); with `shared_prefix` each micro-batch runs a prompt once and its
   completions on the prompt's KV cache. Log-probs and gradients equal the per-row forward's.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from visionrl.core.hparams import GRPOConfig
from visionrl.core.lit.common import (
    EvalFn,
    HeldOutEval,
    append_jsonl,
    build_optimizer,
    check_finite,
    drop_jsonl_rows,
    log_step,
    records_for_step,
    step_seed,
)
from visionrl.core.losses import AggNorm, group_advantages, make_norm, policy_loss
from visionrl.core.rewards.base import NamedReward, RewardContext
from visionrl.core.rollout import Rollout, generate_rollout
from visionrl.core.vlm.model import VLM, LogProbs, Prompt
from visionrl.core.vlm.sharing import SharedFeatures, shares_vision, vision_trained

AdvantageFn = Callable[[Rollout, dict[str, torch.Tensor], RewardContext, GRPOConfig],
                       tuple[Rollout, torch.Tensor]]
"""(rollout, rewards by name, ctx, cfg) -> (rows to train on, their advantages (N,) or (N, C));
lets a method train on extra sequences or use several advantage channels."""


def weighted_sum_advantages(rollout: Rollout, rewards: dict[str, torch.Tensor], ctx: RewardContext,
                            cfg: GRPOConfig, weights: dict[str, float] | None = None) -> tuple[Rollout, torch.Tensor]:
    """The default: one group z-score of the weighted reward sum."""
    total_N = sum(rewards[n] * (weights or {}).get(n, 1.0) for n in rewards)
    return rollout, group_advantages(total_N, rollout.group_ids_N, cfg.adv_scale, cfg.adv_eps)


class GRPOModule(HeldOutEval, L.LightningModule):
    """Composes a policy, rewards and prompts; holds no method-specific logic."""

    def __init__(self, vlm: VLM, cfg: GRPOConfig, rewards: Sequence[NamedReward], records: Sequence[Any],
                 prompt_fn: Callable[[Any], Prompt], *, max_steps: int, seed: int = 0,
                 advantage_fn: AdvantageFn | None = None, eval_fn: EvalFn | None = None,
                 eval_records: Sequence[Any] = (), samples_path: Path | None = None):
        super().__init__()
        self.automatic_optimization = False
        self.vlm, self.policy, self.cfg = vlm, vlm.model, cfg
        self.rewards, self.records, self.prompt_fn = list(rewards), list(records), prompt_fn
        self.total_steps, self.seed = max_steps, seed  # rollout steps
        weights = {r.name: r.weight for r in self.rewards}
        self.advantage_fn = advantage_fn or (lambda ro, rw, ctx, c: weighted_sum_advantages(ro, rw, ctx, c, weights))
        self.eval_fn, self.eval_records, self.samples_path = eval_fn, list(eval_records), samples_path
        self.step_idx = 0  # rollout steps done (each is `optimizer_steps_per_rollout` optimiser steps)
        self.eval_results: dict[str, dict[str, float]] = {}
        self._ref: list[torch.nn.Module] = []  # a list keeps it out of state_dict, DDP and checkpoints
        if cfg.beta > 0 and not hasattr(self.policy, "disable_adapter"):
            self._ref.append(copy.deepcopy(self.policy).eval().requires_grad_(False))

    @property
    def optimizer_steps_per_rollout(self) -> int:
        return self.cfg.ppo_epochs * self.cfg.mini_batches

    @property
    def trainer_steps(self) -> int:
        """The Trainer's `max_steps`: Lightning counts optimiser steps, this module rollout steps."""
        return self.total_steps * self.optimizer_steps_per_rollout

    def configure_optimizers(self):
        opt, sched = build_optimizer(list(self.policy.parameters()), self.cfg.optim,
                                     self.trainer_steps)
        return [opt], [{"scheduler": sched, "interval": "step"}]

    def on_fit_start(self) -> None:
        self.policy.train()
        for ref in self._ref:
            ref.to(self.device)
        self.evaluate_before()

    # ---- the step ----------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        step, t0 = self.step_idx, time.perf_counter()
        rollout, ctx = self.sample(step)
        rewards = self.score(rollout, ctx, step)
        train_rows, adv = self.advantage_fn(rollout, rewards, ctx, self.cfg)
        stats = self.update(train_rows, adv, step)
        self.log_metrics(rollout, rewards, stats, time.perf_counter() - t0, ctx)
        if self.samples_path is not None and self.cfg.log_samples_every and step % self.cfg.log_samples_every == 0:
            self.write_samples(rollout, rewards, step)
        self.step_idx += 1

    def sample(self, step: int) -> tuple[Rollout, RewardContext]:
        idx = records_for_step(len(self.records), step, self.cfg.prompts_per_step, self.global_rank,
                               self.trainer.world_size, self.seed)
        rows = [self.records[i] for i in idx]
        torch.manual_seed(step_seed(self.seed, step, self.global_rank))
        rollout = generate_rollout(self.vlm, [self.prompt_fn(r) for r in rows], rows,
                                   num_generations=self.cfg.num_generations, sampling=self.cfg.sampling,
                                   engine=self.cfg.engine, batch_size=self.cfg.gen_batch_size)
        ctx = RewardContext(prompts=[getattr(r, "question", getattr(r, "prompt", "")) for r in rollout.rows],
                            completions=rollout.texts, rows=rollout.rows, group_ids=rollout.group_ids_N.tolist(),
                            policy=self.vlm, sampling=self.cfg.sampling)
        return rollout, ctx

    def score(self, rollout: Rollout, ctx: RewardContext, step: int) -> dict[str, torch.Tensor]:
        out = {}
        for r in self.rewards:
            vals = torch.tensor(r.fn(ctx), dtype=torch.float32, device=self.device)
            assert vals.shape == (len(rollout),), f"reward {r.name!r} returned {tuple(vals.shape)} values for {len(rollout)} completions"
            if not check_finite(vals, f"reward {r.name!r}", step, self.cfg.nan_policy):
                vals = torch.nan_to_num(vals, nan=0.0, posinf=0.0, neginf=0.0)  # skip: such rows score 0
            out[r.name] = vals
        return out

    def _features(self, rows: Rollout, idx: Sequence[int], model: torch.nn.Module) -> SharedFeatures | None:
        """Vision features of the prompts of rows `idx` for one pass (None: `shared_vision` off or unsupported)."""
        if not (self.cfg.shared_vision and shares_vision(self.vlm)):
            return None
        encoded, index_N = rows.encoded_prompts(self.vlm)
        return SharedFeatures(self.vlm, encoded, model, sorted({index_N[i] for i in idx}))

    def _logps(self, model: torch.nn.Module, rows: Rollout, idx: list[int], features: SharedFeatures | None, *,
               live: bool = False, with_entropy: bool = False) -> tuple[LogProbs, torch.Tensor, torch.Tensor]:
        """Log-probs of rows `idx` under `model`, grouped by prompt; also their completion ids and mask."""
        groups = rows.prompt_groups(self.vlm, idx)
        ids_BC, mask_BC = rows.completions(idx)
        feats = features.get(groups.source, live=live) if features is not None else None
        lp = self.vlm.grouped_logprobs(groups, ids_BC, mask_BC, temperature=self.cfg.sampling.temperature,
                                       with_entropy=with_entropy, model=model, features=feats,
                                       shared_prefix=self.cfg.shared_prefix)
        return lp, ids_BC, mask_BC

    @contextlib.contextmanager
    def _scorer(self, ref: bool) -> Iterator[torch.nn.Module]:
        """The policy, or the frozen reference (for LoRA: the policy with adapters off)."""
        if not ref:
            yield self.policy
        elif self._ref:
            yield self._ref[0]
        else:
            with self.policy.disable_adapter():
                yield self.policy

    @torch.no_grad()
    def _full_logps(self, rows: Rollout, ref: bool, features: SharedFeatures | None = None) -> torch.Tensor:
        n, width = len(rows), rows.completion_ids_NC.shape[1]
        out = torch.zeros(n, width, device=self.device)
        mb = self.cfg.micro_batch_size
        with self._scorer(ref) as model:
            features = features if features is not None else self._features(rows, range(n), model)
            for lo in range(0, n, mb):
                idx = list(range(lo, min(n, lo + mb)))
                lp = self._logps(model, rows, idx, features)[0].logps_BC
                out[lo:lo + len(idx), : lp.shape[1]] = lp
        return out

    def update(self, rows: Rollout, adv: torch.Tensor, step: int) -> dict[str, float]:
        cfg, n = self.cfg, len(rows)
        opt, sched = self.optimizers(), self.lr_schedulers()
        off_policy = cfg.ppo_epochs > 1 or cfg.mini_batches > 1
        # A frozen vision tower gives the same features all step: compute them once, without a graph.
        frozen = None
        if not vision_trained(self.vlm, self.policy):
            with torch.no_grad():
                frozen = self._features(rows, range(n), self.policy)
        old = self._full_logps(rows, ref=False, features=frozen) if off_policy else None
        ref = self._full_logps(rows, ref=True) if cfg.beta > 0 else None
        assert n >= cfg.mini_batches, f"{n} rollout rows cannot fill {cfg.mini_batches} mini-batches"
        # Exactly `mini_batches` optimizer steps per epoch (sizes differ by at most one row), as the LR
        # schedule and the Trainer's step budget (`optimizer_steps_per_rollout`) assume.
        bounds = [n * i // cfg.mini_batches for i in range(cfg.mini_batches + 1)]
        acc: dict[str, list[float]] = {}
        for _ in range(cfg.ppo_epochs):
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                idx_all = list(range(lo, hi))
                micro = [idx_all[i:i + cfg.micro_batch_size] for i in range(0, len(idx_all), cfg.micro_batch_size)]
                norm = self._norm(rows, idx_all, len(micro))
                feats = frozen if frozen is not None else self._features(rows, idx_all, self.policy)
                for i, idx in enumerate(micro):
                    self._micro_step(rows, adv, idx, old, ref, norm, step, acc, feats, last=i == len(micro) - 1)
                gn = self.clip_gradients_and_norm(opt)
                acc.setdefault("grad_norm", []).append(gn)
                opt.step()
                opt.zero_grad(set_to_none=True)
                sched.step()
        return {k: sum(v) / len(v) for k, v in acc.items()}

    def _norm(self, rows: Rollout, idx: list[int], num_micro: int) -> AggNorm:
        # Dr. GRPO divides by a constant, the generation budget, not by this rollout's padded width
        # (which shrinks whenever every completion stops early).
        width = max(self.cfg.sampling.max_new_tokens, rows.completion_ids_NC.shape[1])
        norm = make_norm(rows.completion_mask_NC[idx].float(), num_micro, width)
        if self.cfg.loss_agg == "dapo" and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # DDP averages gradients over W ranks, so divide by all ranks' tokens / W (TRL's "dapo").
            tokens = self.trainer.strategy.reduce(torch.tensor(norm.global_tokens, device=self.device),
                                                  reduce_op="mean")
            norm = norm._replace(global_tokens=max(float(tokens), 1.0))
        return norm

    def _micro_step(self, rows, adv, idx, old, ref, norm, step, acc, feats=None, last=True) -> None:
        cfg = self.cfg
        # A trained tower: earlier micro-batches collected gradient on detached features; the last one
        # reads the live features and carries that gradient into the tower in its own backward.
        live = last and feats is not None and feats.trained
        pending = feats.pending_loss() if live else None
        lp, ids_BC, mask_BC = self._logps(self.policy, rows, idx, feats, live=live, with_entropy=True)
        w = ids_BC.shape[1]
        adv_b = adv[idx][:, :w] if adv.dim() == 2 else adv[idx]
        old_BC = old[idx][:, :w] if old is not None else lp.logps_BC.detach()
        out = policy_loss(lp.logps_BC, old_BC, adv_b, mask_BC, clip_low=cfg.clip_low, clip_high=cfg.clip_high,
                          clip_dual=cfg.clip_dual, agg=cfg.loss_agg, beta=cfg.beta, kl_kind=cfg.kl_kind,
                          ref_logps_BT=ref[idx][:, :w] if ref is not None else None, norm=norm)
        if not check_finite(out.loss, "loss", step, cfg.nan_policy):
            if pending is not None:  # skip this micro-batch, not what the earlier ones gave the tower
                self.manual_backward(pending)
            return  # skip: this micro-batch adds no gradient
        self.manual_backward(out.loss if pending is None else out.loss + pending)
        m = mask_BC.float()
        ent = float((lp.entropy_BC * m).sum() / m.sum().clamp(min=1))
        for k, v in dict(loss=out.loss.item(), kl=out.kl.item(), entropy=ent, clip_low=out.clip_low_frac.item(),
                         clip_high=out.clip_high_frac.item()).items():
            acc.setdefault(k, []).append(v)

    def clip_gradients_and_norm(self, opt) -> float:
        params = [p for p in self.policy.parameters() if p.grad is not None]
        if not params:
            return 0.0
        max_norm = self.cfg.optim.max_grad_norm or float("inf")
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    # ---- logging ----------------------------------------------------------------------------
    def log_metrics(self, rollout: Rollout, rewards: dict[str, torch.Tensor], stats: dict[str, float],
                 seconds: float, ctx: RewardContext) -> None:
        from visionrl.core.lit.metrics import grpo_metrics

        metrics = grpo_metrics(rollout, rewards, stats, seconds, ctx, self.lr_schedulers().get_last_lr()[0],
                               {r.name: r.weight for r in self.rewards})
        log_step(self, metrics, self.step_idx)

    def write_samples(self, rollout: Rollout, rewards: dict[str, torch.Tensor], step: int) -> None:
        if self.global_rank != 0:
            return
        rows = [{"step": step, "group": int(g), "prompt": getattr(rw, "question", getattr(rw, "prompt", "")),
                 "answer": getattr(rw, "answer", None), "completion": t,
                 "rewards": {k: float(v[i]) for k, v in rewards.items()}}
                for i, (g, rw, t) in enumerate(zip(rollout.group_ids_N.tolist(), rollout.rows, rollout.texts))]
        append_jsonl(self.samples_path, rows)

    # ---- checkpoint state -------------------------------------------------------------------
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.samples_path is not None and self.global_rank == 0:  # steps after the checkpoint run again
            drop_jsonl_rows(self.samples_path, lambda row: row.get("step", 0) >= self.step_idx)
