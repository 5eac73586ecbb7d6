"""DPO / IPO as a LightningModule (manual optimisation), following TRL's `DPOTrainer`:

1. Sequence log-probs are masked sums over response tokens (+ EOS) given the prompt, in the policy's
   layout [left-padded prompt | right-padded response]; with `average_logps` (default for ipo, as in
   TRL) they are token means instead (`length_normalize(..., kind="mean")`).
2. The reference is a frozen deep copy of the starting policy, kept in a list so it stays out of
   `state_dict`, DDP and checkpoints (for LoRA, the policy with adapters off). Reference log-probs are
   computed per micro-batch, not precomputed over the data set.
3. Rows are picked per step (`records_for_step`), so `--resume` reproduces an uninterrupted run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from visionrl.core.data.records import PairRecord
from visionrl.core.hparams import DPOConfig
from visionrl.core.lit.common import (
    EvalFn,
    HeldOutEval,
    accumulate_and_step,
    build_optimizer,
    log_step,
    records_for_step,
)
from visionrl.core.lit.reward_model import pair_prompt
from visionrl.core.losses import DPOOut, dpo_loss, length_normalize
from visionrl.core.vlm.model import VLM, Prompt

# DPOOut field -> logged metric (TRL's names)
METRICS = {"loss": "train/loss", "chosen_reward": "train/rewards/chosen", "rejected_reward": "train/rewards/rejected",
           "reward_accuracy": "train/rewards/accuracies", "reward_margin": "train/rewards/margins"}


class DPOModule(HeldOutEval, L.LightningModule):
    def __init__(self, vlm: VLM, cfg: DPOConfig, pairs: Sequence[PairRecord], *, max_steps: int, seed: int = 0,
                 prompt_fn: Callable[[PairRecord], Prompt] = pair_prompt, eval_fn: EvalFn | None = None,
                 eval_records: Sequence[Any] = ()):
        super().__init__()
        self.automatic_optimization = False
        self.vlm, self.policy, self.cfg = vlm, vlm.model, cfg
        self.pairs, self.prompt_fn, self.total_steps, self.seed = list(pairs), prompt_fn, max_steps, seed
        self.eval_fn, self.eval_records = eval_fn, list(eval_records)
        self.eval_results: dict[str, dict[str, float]] = {}
        self.step_idx = 0
        self._ref: list[torch.nn.Module] = []  # a list keeps it out of state_dict, DDP and checkpoints
        if not hasattr(self.policy, "disable_adapter"):
            self._ref.append(copy.deepcopy(self.policy).eval().requires_grad_(False))

    @property
    def average_logps(self) -> bool:
        avg = self.cfg.average_logps
        return self.cfg.loss_type == "ipo" if avg is None else avg

    def configure_optimizers(self):
        opt, sched = build_optimizer(list(self.policy.parameters()), self.cfg.optim, self.total_steps)
        return [opt], [{"scheduler": sched, "interval": "step"}]

    def on_fit_start(self) -> None:
        self.policy.train()
        for ref in self._ref:
            ref.to(self.device)
        self.evaluate_before()

    # ---- log-probs -----------------------------------------------------------------------------
    def sequence_logps(self, enc: dict[str, torch.Tensor], ids_BC: torch.Tensor, mask_BC: torch.Tensor,
                       model: torch.nn.Module) -> torch.Tensor:
        """Sequence log-probs (B,) of the responses under `model`: masked sum, or mean (see `average_logps`)."""
        logps_BC = self.vlm.completion_logprobs(enc, ids_BC, mask_BC, model=model).logps_BC  # (B, C)
        m_BC = mask_BC.to(logps_BC.dtype)
        sum_B = (logps_BC * m_BC).sum(1)  # (B,)
        return length_normalize(sum_B, m_BC.sum(1), kind="mean") if self.average_logps else sum_B

    @torch.no_grad()
    def reference_logps(self, enc: dict[str, torch.Tensor], ids_BC: torch.Tensor, mask_BC: torch.Tensor) -> torch.Tensor:
        if self._ref:
            return self.sequence_logps(enc, ids_BC, mask_BC, self._ref[0])
        with self.policy.disable_adapter():  # LoRA: the base model is the policy with adapters off
            return self.sequence_logps(enc, ids_BC, mask_BC, self.policy)

    def loss_on(self, batch: Sequence[PairRecord]) -> DPOOut:
        """DPO loss of a batch of pairs: chosen and rejected go through one forward of 2B rows."""
        prompts = [self.prompt_fn(r) for r in batch]
        enc = self.vlm.encode(prompts + prompts, device=self.device)
        ids_BC, mask_BC = self.vlm.encode_targets([r.chosen for r in batch] + [r.rejected for r in batch],
                                                  device=self.device)
        pol_2B = self.sequence_logps(enc, ids_BC, mask_BC, self.policy)  # (2B,)
        ref_2B = self.reference_logps(enc, ids_BC, mask_BC)  # (2B,)
        b = len(batch)
        return dpo_loss(pol_2B[:b], pol_2B[b:], ref_2B[:b], ref_2B[b:], beta=self.cfg.beta,
                        loss_type=self.cfg.loss_type, label_smoothing=self.cfg.label_smoothing)

    # ---- the step ------------------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> None:
        idx = records_for_step(len(self.pairs), self.step_idx, self.cfg.batch_size, self.global_rank,
                               self.trainer.world_size, self.seed)
        rows = [self.pairs[i] for i in idx]
        out = accumulate_and_step(self, rows, self.cfg.micro_batch_size, self.loss_on, tuple(METRICS),
                                  list(self.policy.parameters()), "DPO")
        log_step(self, {**{METRICS[k]: out[k] for k in METRICS}, "train/grad_norm": out["grad_norm"],
                        "train/lr": out["lr"]}, self.step_idx)
        self.step_idx += 1
