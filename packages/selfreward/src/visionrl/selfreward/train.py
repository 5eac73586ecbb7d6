"""`selfreward-train`: Vision-SR1 self-rewarding GRPO (and its cold-start SFT stage) through core's runner."""

from __future__ import annotations

from typing import Any

from visionrl.selfreward.config import TrainConfig


def run(cfg: TrainConfig) -> dict[str, Any]:
    """Train as `cfg` says; returns what metrics.json holds."""
    from visionrl.core.runner import train
    from visionrl.selfreward.method import recipe

    return train(recipe(cfg), cfg, run=cfg.run, algo=cfg.sft if cfg.stage == "sft" else cfg.grpo, load=cfg.load,
                 reward=cfg.reward)
