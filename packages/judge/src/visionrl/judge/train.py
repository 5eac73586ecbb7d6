"""`judge-train`: synthesise pairs, filter the previous judge's verdicts, SFT, repeat (iterate.py), through core's
runner pieces (`build_module`, `fit_and_export`) for each iteration's SFT."""

from __future__ import annotations

from typing import Any

from visionrl.judge.config import TrainConfig


def run(cfg: TrainConfig) -> dict[str, Any]:
    """Train as `cfg` says; returns what metrics.json holds."""
    from visionrl.judge.iterate import run as iterate

    return iterate(cfg)
