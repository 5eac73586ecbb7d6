"""Callbacks the core runner adds to every training run."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback


class PeriodicEval(Callback):
    """The module's held-out evaluation on TensorBoard as `eval/<benchmark>/<metric>`, on the axis of the
    `train/*` curves: `before` at step 0, a fresh evaluation every `every` module steps (also stored in
    `eval_results["step_<n>"]`, so it reaches metrics.json and survives a resume), `after` at the end.

    Works with any module of `visionrl.core.lit` (they share `step_idx`, `total_steps`, `evaluate()` and
    `eval_results`); the module itself evaluates before and after training.
    """

    def __init__(self, benchmark: str, every: int = 0):
        self.prefix, self.every = f"eval/{benchmark}", every

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if "before" in pl_module.eval_results:
            self._log(trainer, pl_module.eval_results["before"], 0)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        step = pl_module.step_idx  # already counts the step that just ended
        if not (self.every and pl_module.eval_fn and step % self.every == 0 and step < pl_module.total_steps):
            return
        key = f"step_{step}"
        if key not in pl_module.eval_results:  # a resumed run does not evaluate the same step twice
            pl_module.eval_results[key] = pl_module.evaluate()
        self._log(trainer, pl_module.eval_results[key], trainer.global_step)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        # After the module's own on_train_end, which computes `after`; the loggers are still open here.
        if "after" in pl_module.eval_results:
            self._log(trainer, pl_module.eval_results["after"], trainer.global_step)

    def _log(self, trainer: Any, metrics: dict[str, float], step: int) -> None:
        for logger in trainer.loggers:
            logger.log_metrics({f"{self.prefix}/{k}": v for k, v in metrics.items()}, step=step)
