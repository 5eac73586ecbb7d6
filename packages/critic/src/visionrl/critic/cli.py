"""Console scripts: parse (fast, torch-free; every range checked) → import the heavy parts → run.

`train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are the console scripts,
which turn it into one line and exit code 2.
"""

from __future__ import annotations

from visionrl.core.cli import parse_config, run_cli
from visionrl.critic.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig


def train_main(args: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=args, prog="critic-train",
                       description="LLaVA-Critic-R1 (arXiv 2509.00676): pairwise critic data as verifiable GRPO "
                                   "(think, then box 1 or 2; reward 0.9·accuracy + 0.1·format).")
    from visionrl.critic.train import run

    run(cfg)


def eval_main(args: list[str] | None = None) -> None:
    cfg = parse_config(EvalConfig, EVAL_PRESETS, args=args, prog="critic-eval",
                       description="Evaluate a checkpoint the LLaVA-Critic-R1 way: as a critic (VL-RewardBench, "
                                   "MM-RLHF-RewardBench, shapes pairs), as a policy, and as its own best-of-N judge.")
    from visionrl.critic.evaluate import run_eval

    run_eval(cfg)


def train() -> None:
    run_cli(train_main)


def evaluate() -> None:
    run_cli(eval_main)
