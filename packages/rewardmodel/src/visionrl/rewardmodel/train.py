"""`rewardmodel-train`: one BaseReward reward model through core's runner, or an ablation grid of them.

`--sweep heads` trains Table 2's head grid (layers × activation), `--sweep reg` Figure 1's regulariser sweep
(λ of the zero-coefficient loss, and length normalisation), each cell into `<output-dir>/<cell>/`; the cells'
held-out numbers are collected in `<output-dir>/ablation.json` and a Markdown table `ablation.md`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from visionrl.rewardmodel.config import TrainConfig

HEAD_GRID = ((1, "none"), (2, "none"), (2, "tanh"), (2, "silu"), (3, "silu"), (4, "silu"), (5, "silu"))
"""Table 2's rows: (layers, activation)."""
REG_GRID = ((0.0, False), (0.001, False), (0.01, False), (0.1, False), (0.0, True))
"""Figure 1's settings: (λ, length normalisation)."""


def cells(cfg: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """(name, config) of every run `cfg` asks for: itself, or one per grid cell."""
    if cfg.sweep == "heads":
        return [(f"layers{n}-{act}", replace(cfg, sweep="none", head_kind="mlp", head_layers=n, head_activation=act))
                for n, act in HEAD_GRID]
    if cfg.sweep == "reg":
        return [(f"lambda{lam:g}" + ("-lengthnorm" if norm else ""),
                 replace(cfg, sweep="none", center_coef=lam, length_norm=norm)) for lam, norm in REG_GRID]
    return [("", cfg)]


def run(cfg: TrainConfig) -> dict[str, Any]:
    """Train as `cfg` says; returns what metrics.json holds (a sweep: {cell: metrics})."""
    from visionrl.core.runner import train
    from visionrl.rewardmodel.method import recipe, rm_config

    if cfg.sweep == "none":
        return train(recipe(cfg), cfg, run=cfg.run, algo=rm_config(cfg), load=cfg.load)
    results = {}
    for name, cell in cells(cfg):
        cell = replace(cell, run=replace(cell.run, output_dir=cfg.run.output_dir / name))
        results[name] = train(recipe(cell), cell, run=cell.run, algo=rm_config(cell), load=cell.load)
    write_ablation(cfg, results)
    return results


def ablation_table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per cell, the held-out metrics after training (and before, in brackets).

    >>> print(ablation_table({"a": {"before": {"accuracy": 0.5}, "after": {"accuracy": 0.75}}}))
    | cell | accuracy |
    |---|---|
    | a | 0.750 (0.500) |
    """
    names = sorted({k for r in results.values() for k in r.get("after", {}) if "margin" not in k})
    lines = ["| cell | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for cell, r in results.items():
        after, before = r.get("after", {}), r.get("before", {})
        lines.append(f"| {cell} | " + " | ".join(f"{after[k]:.3f} ({before.get(k, float('nan')):.3f})"
                                                 if k in after else "" for k in names) + " |")
    return "\n".join(lines)


def write_ablation(cfg: TrainConfig, results: dict[str, dict[str, Any]]) -> None:
    from visionrl.core.evaluation.outputs import write_json, write_text_atomic

    out = cfg.run.output_dir
    write_json(out / "ablation.json", {"sweep": cfg.sweep, "cells": results})
    write_text_atomic(out / "ablation.md", f"# Ablation `{cfg.sweep}` ({cfg.run.max_steps} steps, seed "
                                          f"{cfg.run.seed})\n\n{ablation_table(results)}\n")
    print(ablation_table(results))
