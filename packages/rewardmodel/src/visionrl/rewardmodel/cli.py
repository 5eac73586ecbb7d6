"""Console scripts `rewardmodel-train` and `rewardmodel-eval`: parse (torch-free, every range checked), then import
the heavy parts and run. `train_main`/`eval_main` raise `UserError` (tests call them); `train`/`evaluate` are
the console scripts."""

from __future__ import annotations

from visionrl.core.cli import command
from visionrl.rewardmodel.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig

train_main, train = command(
    TrainConfig, TRAIN_PRESETS, prog="rewardmodel-train", target="visionrl.rewardmodel.train:run",
    description=("BaseReward (arXiv 2509.16127): train a VLM reward model with an MLP head and the Bradley-Terry "
                 "loss."))
eval_main, evaluate = command(
    EvalConfig, EVAL_PRESETS, prog="rewardmodel-eval", target="visionrl.rewardmodel.evaluate:run_eval",
    description=("Score reward models (and their ensembles) on VL-RewardBench, Multimodal RewardBench, MM-RLHF-"
                 "RewardBench, text sets and shapes pairs."))
