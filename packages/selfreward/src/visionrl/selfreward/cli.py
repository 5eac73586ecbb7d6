"""Console scripts `selfreward-train` and `selfreward-eval`: parse (torch-free, every range checked), then import
the heavy parts and run. `train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are
the console scripts."""

from __future__ import annotations

from visionrl.core.cli import command
from visionrl.selfreward.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig

train_main, train = command(
    TrainConfig, TRAIN_PRESETS, prog="selfreward-train", target="visionrl.selfreward.train:run",
    description="Vision-SR1 self-rewarding GRPO (arXiv 2508.19652) and its cold-start SFT.")
eval_main, evaluate = command(
    EvalConfig, EVAL_PRESETS, prog="selfreward-eval", target="visionrl.selfreward.evaluate:run_eval",
    description="Evaluate a checkpoint the Vision-SR1 way: accuracy, LLM judge, Language Shortcut Rate.")
