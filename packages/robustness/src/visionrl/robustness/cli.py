"""Console scripts `robustness-train` and `robustness-eval`: parse (torch-free, every range checked), then import
the heavy parts and run. `train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are
the console scripts."""

from __future__ import annotations

from visionrl.core.cli import command
from visionrl.robustness.config import DESCRIPTION, EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig

train_main, train = command(
    TrainConfig, TRAIN_PRESETS, prog="robustness-train", target="visionrl.robustness.train:run",
    description=("GRPO with the robustness paper's reward, augmentation and faithfulness multiplier; the "
                 "robustness suite every N steps (arXiv 2602.12506)."))
eval_main, evaluate = command(
    EvalConfig, EVAL_PRESETS, prog="robustness-eval", target="visionrl.robustness.evaluate:run_eval",
    description=DESCRIPTION)
