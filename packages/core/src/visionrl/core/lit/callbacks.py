"""Callbacks the core runner adds to every training run."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import Callback


class HeldOutCallback(Callback):
    """The module's held-out evaluation as phases of the run: `before` (unless a resumed checkpoint holds it),
    a fresh one every `every` module steps (stored as `eval_results["step_<n>"]`, so it reaches metrics.json
    and survives a resume), `after` at the end; each inside a progress bar with its result on one line, and
    on TensorBoard as `eval/<benchmark>/<metric>` on the axis of the `train/*` curves (`before` at step 0).

    Works with any module of `visionrl.core.lit` (they share `step_idx`, `total_steps`, `evaluate()` and
    `eval_results`); without this callback a module still evaluates before and after training by itself.
    """

    def __init__(self, benchmark: str, every: int = 0, console: Any = None, headline: tuple[str, ...] = ()):
        self.benchmark, self.prefix, self.every = benchmark, f"eval/{benchmark}", every
        self.console, self.headline = console, headline

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if pl_module.eval_fn and "before" not in pl_module.eval_results:
            pl_module.eval_results["before"] = self._evaluate(pl_module, "before")

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if "before" in pl_module.eval_results:
            self._log(trainer, pl_module.eval_results["before"], 0)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        step = pl_module.step_idx  # already counts the step that just ended
        if not (self.every and pl_module.eval_fn and step % self.every == 0 and step < pl_module.total_steps):
            return
        key = f"step_{step}"
        if key not in pl_module.eval_results:  # a resumed run does not evaluate the same step twice
            pl_module.eval_results[key] = self._evaluate(pl_module, f"step {step}")
        self._log(trainer, pl_module.eval_results[key], trainer.global_step)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if pl_module.eval_fn:
            pl_module.eval_results["after"] = self._evaluate(pl_module, "after")
            self._log(trainer, pl_module.eval_results["after"], trainer.global_step)

    def _evaluate(self, pl_module: Any, when: str) -> dict[str, float]:
        if self.console is None:
            return pl_module.evaluate()
        from visionrl.core.console import one_metric_line

        with self.console.bar(f"held-out {self.benchmark} {when}", unit=" prompts"):
            out = pl_module.evaluate()
        self.console.line(f"held-out {self.benchmark} {when}: {one_metric_line(out, list(self.headline) or None)}")
        return out

    def _log(self, trainer: Any, metrics: dict[str, float], step: int) -> None:
        for logger in trainer.loggers:
            logger.log_metrics({f"{self.prefix}/{k}": v for k, v in metrics.items()}, step=step)
