"""`robustness-train`: GRPO with the paper's reward, augmentation and faithfulness multiplier, and the
robustness suite every `--eval-every` steps (arXiv 2602.12506 §RL experiments), through core's runner."""

from __future__ import annotations

from typing import Any

from visionrl.robustness.config import TrainConfig


def run(cfg: TrainConfig) -> dict[str, Any]:
    """Train as `cfg` says; returns what metrics.json holds."""
    from visionrl.core.runner import train
    from visionrl.robustness.method import recipe

    return train(recipe(cfg), cfg, run=cfg.run, algo=cfg.sft if cfg.stage == "sft" else cfg.grpo, load=cfg.load,
                 reward=cfg.reward)
