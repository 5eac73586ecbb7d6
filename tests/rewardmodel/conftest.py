"""Fixtures of the reward-model tests: tiny images, and a demo reward model trained once per session."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image


def png(color: tuple[int, int, int] = (200, 10, 10), size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def demo_rm(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    """A reward model trained for a few steps on the demo backbone through `rewardmodel-train` (its model folder)."""
    from visionrl.rewardmodel.cli import train_main

    out = tmp_path_factory.mktemp("demo-rm") / "run"
    train_main(["--max-steps", "3", "--output-dir", str(out), "--dataset.shapes-train-size", "64",
                "--dataset.eval-size", "16", "--dataset.text-eval-size", "8", "--batch-size", "8",
                "--micro-batch-size", "8"])
    return out / "model"
