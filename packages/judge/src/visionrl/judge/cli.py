"""Console scripts: parse (fast, torch-free; every range checked) → import the heavy parts → run.

`train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are the console scripts,
which turn it into one line and exit code 2.
"""

from __future__ import annotations

import json

from visionrl.core.cli import parse_config, run_cli
from visionrl.judge.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig


def train_main(args: list[str] | None = None) -> None:
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=args, prog="judge-train",
                       description="Self-improving VLM judge (arXiv 2512.05145): synthetic pairs (majority vote, "
                                   "error injection), the previous judge's verdicts kept when right in both orders, "
                                   "SFT, repeated. Re-running the same command resumes at the first unfinished "
                                   "stage.")
    from visionrl.core.evaluation.sharding import rank_and_world
    from visionrl.judge.train import run

    metrics = run(cfg)
    if rank_and_world()[0] != 0:
        return
    rows = [{k: r[k] for k in ("iteration", "accuracy", "both_orders_accuracy", "position1_rate", "retention")
             if k in r} for r in metrics["iterations"]]
    print(json.dumps(rows, indent=1))


def eval_main(args: list[str] | None = None) -> None:
    cfg = parse_config(EvalConfig, EVAL_PRESETS, args=args, prog="judge-eval",
                       description="Evaluate a pairwise VLM judge: VL-RewardBench (cal.py rules), Multimodal "
                                   "RewardBench, held-out shapes pairs; --both-orders adds position bias.")
    from visionrl.judge.evaluate import run_eval

    metrics = run_eval(cfg)
    print(json.dumps(metrics, indent=2, sort_keys=True))


def train() -> None:
    run_cli(train_main)


def evaluate() -> None:
    run_cli(eval_main)
