"""Console scripts `critic-train` and `critic-eval`: parse (torch-free, every range checked), then import
the heavy parts and run. `train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are
the console scripts."""

from __future__ import annotations

from visionrl.core.cli import command
from visionrl.critic.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig

train_main, train = command(
    TrainConfig, TRAIN_PRESETS, prog="critic-train", target="visionrl.critic.train:run",
    description=("LLaVA-Critic-R1 (arXiv 2509.00676): pairwise critic data as verifiable GRPO (think, then box 1 "
                 "or 2; reward 0.9·accuracy + 0.1·format)."))
eval_main, evaluate = command(
    EvalConfig, EVAL_PRESETS, prog="critic-eval", target="visionrl.critic.evaluate:run_eval",
    description=("Evaluate a checkpoint the LLaVA-Critic-R1 way: as a critic (VL-RewardBench, MM-RLHF-RewardBench,"
                 " shapes pairs), as a policy, and as its own best-of-N judge."))
