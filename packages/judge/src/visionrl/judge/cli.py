"""Console scripts `judge-train` and `judge-eval`: parse (torch-free, every range checked), then import the
heavy parts and run. `train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are the
console scripts."""

from __future__ import annotations

from visionrl.core.cli import command
from visionrl.judge.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig

train_main, train = command(
    TrainConfig, TRAIN_PRESETS, prog="judge-train", target="visionrl.judge.train:run",
    description=("Self-improving VLM judge (arXiv 2512.05145): synthetic pairs (majority vote, error injection), the "
                 "previous judge's verdicts kept when right in both orders, SFT, repeated. Re-running the same "
                 "command resumes at the first unfinished stage."))
eval_main, evaluate = command(
    EvalConfig, EVAL_PRESETS, prog="judge-eval", target="visionrl.judge.evaluate:run_eval",
    description=("Evaluate a pairwise VLM judge: VL-RewardBench (cal.py rules), Multimodal RewardBench, held-out "
                 "shapes pairs; --both-orders adds position bias."))
