"""Supervised fine-tuning on (prompt, target) pairs: token-mean cross-entropy over target tokens
(+ EOS) only; the prompt is masked. Manual optimisation with micro-batches so a step is the same
number of examples whatever fits in memory, and rows are picked per step (exact resume)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L
from visionrl.core.hparams import SFTConfig
from visionrl.core.lit.common import (
    EvalFn,
    HeldOutEval,
    accumulate_and_step,
    build_optimizer,
    log_step,
    records_for_step,
)
from visionrl.core.losses import masked_ce_loss
from visionrl.core.vlm.model import VLM, Prompt


@dataclass
class SFTExample:
    """One supervised example: a prompt and the assistant text to learn."""

    prompt: Prompt
    target: str


class SFTModule(HeldOutEval, L.LightningModule):
    def __init__(self, vlm: VLM, cfg: SFTConfig, examples: Sequence[SFTExample], *, max_steps: int, seed: int = 0,
                 eval_fn: EvalFn | None = None, eval_records: Sequence[Any] = ()):
        super().__init__()
        self.automatic_optimization = False
        self.vlm, self.policy, self.cfg = vlm, vlm.model, cfg
        self.examples, self.total_steps, self.seed = list(examples), max_steps, seed
        self.eval_fn, self.eval_records = eval_fn, list(eval_records)
        self.eval_results: dict[str, dict[str, float]] = {}
        self.step_idx = 0

    def configure_optimizers(self):
        opt, sched = build_optimizer(list(self.policy.parameters()), self.cfg.optim, self.total_steps)
        return [opt], [{"scheduler": sched, "interval": "step"}]

    def on_fit_start(self) -> None:
        self.policy.train()
        self.evaluate_before()

    def loss_on(self, batch: Sequence[SFTExample]):
        enc = self.vlm.encode([e.prompt for e in batch], device=self.device)
        ids_BC, mask_BC = self.vlm.encode_targets([e.target for e in batch], device=self.device)
        logits_BCV = self.vlm.completion_logits(enc, ids_BC, mask_BC)
        return masked_ce_loss(logits_BCV, ids_BC, mask_BC)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        idx = records_for_step(len(self.examples), self.step_idx, self.cfg.batch_size, self.global_rank,
                               self.trainer.world_size, self.seed)
        rows = [self.examples[i] for i in idx]
        out = accumulate_and_step(self, rows, self.cfg.micro_batch_size, self.loss_on, ("loss", "accuracy"),
                                  list(self.policy.parameters()), "SFT")
        log_step(self, {"train/loss": out["loss"], "train/token_accuracy": out["accuracy"],
                        "train/grad_norm": out["grad_norm"], "train/lr": out["lr"]}, self.step_idx)
        self.step_idx += 1
