"""A tiny `judge-train` run on the demo model, shared by the end-to-end tests (seconds, not minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY = ["--iterations", "2", "--dataset.prompts-per-iteration", "24", "--filter", "single", "--dataset.eval-size", "6", "--num-samples", "6",
        "--majority-threshold", "3", "--max-steps", "4", "--sft.batch-size", "4", "--sft.micro-batch-size", "4",
        "--save-every-n-steps", "2", "--epochs", "4", "--judge-samples", "2", "--quiet"]


def run_tiny(out: Path, *extra: str) -> dict:
    from visionrl.judge.cli import train_main

    train_main([*TINY, "--output-dir", str(out), *extra])
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="session")
def tiny_train():
    """`tiny_train(out, *extra_flags) -> metrics.json`, and `tiny_train.args`: the tiny run's flags."""
    run_tiny.args = TINY  # type: ignore[attr-defined]
    return run_tiny


@pytest.fixture(scope="session")
def judge_run(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> tuple[Path, dict]:
    """(output dir, metrics.json) of a finished tiny run: 2 iterations, 24 prompts each, 4 SFT steps (every right
    trace kept, 4 epochs: enough traces for 4 steps from a judge that is already right on most pairs)."""
    out = tmp_path_factory.mktemp("judge") / "run"
    return out, run_tiny(out)
