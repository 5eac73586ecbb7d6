"""`critic-train`: LLaVA-Critic-R1 GRPO on pairwise critic data through core's runner (no local loop)."""

from __future__ import annotations

from typing import Any

from visionrl.critic.config import TrainConfig


def run(cfg: TrainConfig) -> dict[str, Any]:
    """Train as `cfg` says; returns what metrics.json holds."""
    from visionrl.core.runner import train
    from visionrl.critic.method import recipe

    return train(recipe(cfg), cfg, run=cfg.run, algo=cfg.grpo, load=cfg.load, reward=cfg.reward_plugin)
