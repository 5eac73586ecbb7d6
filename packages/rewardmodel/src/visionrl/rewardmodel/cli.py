"""Console scripts: parse (fast, torch-free; every range checked) → import the heavy parts → run.

`train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are the console scripts,
which turn it into one line and exit code 2.
"""

from __future__ import annotations

import json

from visionrl.core.cli import parse_config, run_cli
from visionrl.rewardmodel.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig


def train_main(args: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=args, prog="rewardmodel-train",
                       description="BaseReward (arXiv 2509.16127): train a VLM reward model with an MLP head and the "
                                   "Bradley-Terry loss.")
    from visionrl.rewardmodel.train import run

    run(cfg)


def eval_main(args: list[str] | None = None) -> None:
    cfg = parse_config(EvalConfig, EVAL_PRESETS, args=args, prog="rewardmodel-eval",
                       description="Score reward models (and their ensembles) on VL-RewardBench, Multimodal "
                                   "RewardBench, MM-RLHF-RewardBench, text sets and shapes pairs.")
    from visionrl.rewardmodel.evaluate import run_eval

    metrics = run_eval(cfg)
    print(json.dumps(metrics, indent=2, sort_keys=True))


def train() -> None:
    run_cli(train_main)


def evaluate() -> None:
    run_cli(eval_main)
