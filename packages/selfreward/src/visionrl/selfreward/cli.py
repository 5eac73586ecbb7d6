"""Console scripts: parse (fast, torch-free; every range checked) → import the heavy parts → run.

`train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are the console scripts,
which turn it into one line and exit code 2.
"""

from __future__ import annotations

from visionrl.core.cli import parse_config, run_cli
from visionrl.selfreward.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig


def train_main(args: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=args, prog="selfreward-train",
                       description="Vision-SR1 self-rewarding GRPO (arXiv 2508.19652) and its cold-start SFT.")
    from visionrl.selfreward.train import run

    run(cfg)


def eval_main(args: list[str] | None = None) -> None:
    cfg = parse_config(EvalConfig, EVAL_PRESETS, args=args, prog="selfreward-eval",
                       description="Evaluate a checkpoint the Vision-SR1 way: accuracy, LLM judge, Language "
                                   "Shortcut Rate.")
    from visionrl.selfreward.evaluate import run_eval

    run_eval(cfg)


def train() -> None:
    run_cli(train_main)


def evaluate() -> None:
    run_cli(eval_main)
