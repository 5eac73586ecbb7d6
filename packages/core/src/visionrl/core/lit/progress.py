"""The training phase's progress bar: module steps done / planned (a resumed run starts where it stopped,
not at 0 of an "epoch"), with the step's main numbers."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import TQDMProgressBar

# (metric, short name) shown after the bar when the module logs it, in this order, at most four.
SHOWN = (("train/reward", "reward"), ("train/rewards/accuracy/mean", "acc"), ("train/loss", "loss"),
         ("train/accuracy", "acc"), ("train/token_accuracy", "tok_acc"), ("train/kl", "kl"))


class StepProgressBar(TQDMProgressBar):
    def __init__(self, name: str = "train") -> None:
        super().__init__()
        self.name = name

    @property
    def train_description(self) -> str:
        """The bar's name from its first frame (Lightning's "Training" would be drawn once before it)."""
        return self.name

    def on_train_epoch_start(self, trainer: Any, pl_module: Any, *_: Any) -> None:
        bar = self.train_progress_bar
        bar.reset(total=pl_module.total_steps)
        bar.initial = bar.n = pl_module.step_idx
        bar.set_description(self.name)
        bar.refresh()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        bar = self.train_progress_bar
        if bar is None or bar.disable:
            return
        bar.n = pl_module.step_idx
        bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=True)

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, str]:
        values = pl_module.last_metrics
        shown: dict[str, str] = {}
        for key, name in SHOWN:
            if key in values and name not in shown and len(shown) < 4:
                shown[name] = f"{values[key]:.3g}"
        return shown
