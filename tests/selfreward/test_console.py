"""What a user sees: the bare demo command (shortened to two steps) prints a header, one bar per phase and a
closing summary, and none of the libraries' chatter; re-running into the same folder is one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = str(Path(sys.executable).parent / "selfreward-train")
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([script, "--max-steps", "2", "--dataset.eval-size", "8", "--output-dir", str(out), *args],
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_a_demo_run_says_what_it_did_and_nothing_else(tmp_path: Path, demo_model_dir: Path, library_noise) -> None:
    out = tmp_path / "run"
    res = _cli(out)
    text = res.stdout + res.stderr
    assert res.returncode == 0, text[-3000:]
    noise = [n for n in library_noise if n in text]
    assert not noise, f"third-party noise {noise} in:\n{text[-3000:]}"
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    assert lines[0].startswith("selfreward-train: Vision-SR1 GRPO (sum) · model demo · data shapes · steps 2")
    assert lines[0].endswith(f"→ {out}")
    assert any(ln.startswith("train:") and "2/2" in ln and "reward=" in ln for ln in lines)
    assert any(ln.startswith("held-out shapes before: accuracy") for ln in lines)
    tail = text[text.rindex("done in "):]
    assert "held-out shapes  accuracy" in tail and "→" in tail
    for path in (out / "model", out / "metrics.json", f"tensorboard --logdir {out / 'tensorboard'}"):
        assert str(path) in tail, tail

    again = _cli(out)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.strip().splitlines() == [
        f"error: --output-dir {out} already holds a run (config.yaml, tensorboard, checkpoints, model, "
        "samples.jsonl, metrics.json); continue it with --resume last, or pass --overwrite to start over"]

    quiet = _cli(out, "--overwrite", "--quiet")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert quiet.stdout.startswith("done in ") and "train:" not in quiet.stdout + quiet.stderr
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"] or \
        sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt"]
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 1, "the old run's curves were kept"
