"""Console scripts: parse (fast, torch-free; every range checked) → import the heavy parts → run.

`train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are the console scripts,
which turn it into one line and exit code 2.
"""

from __future__ import annotations

from visionrl.core.cli import parse_config, run_cli
from visionrl.robustness.config import DESCRIPTION, EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig


def train_main(args: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=args, prog="robustness-train",
                       description="GRPO with the robustness paper's reward, augmentation and faithfulness "
                                   "multiplier; the robustness suite every N steps (arXiv 2602.12506).")
    from visionrl.robustness.train import run

    run(cfg)


def eval_main(args: list[str] | None = None) -> None:
    cfg = parse_config(EvalConfig, EVAL_PRESETS, args=args, prog="robustness-eval", description=DESCRIPTION)
    from visionrl.robustness.evaluate import run_eval

    run_eval(cfg)


def train() -> None:
    run_cli(train_main)


def evaluate() -> None:
    run_cli(eval_main)
