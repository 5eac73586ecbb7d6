"""selfreward-train / selfreward-eval end to end on the embedded demo model (CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

FAST = ["--max-steps", "2", "--dataset.eval-size", "8", "--grpo.prompts-per-step", "4",
        "--grpo.sampling.max-new-tokens", "48", "--eval-max-new-tokens", "48", "--save-every-n-steps", "1"]


def _tags(out: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    return set(acc.Tags()["scalars"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_model_dir) -> Path:
    from visionrl.selfreward.cli import train_main as _main

    out = tmp_path_factory.mktemp("sr1") / "run"
    _main([*FAST, "--output-dir", str(out)])
    return out


def test_output_directory_contract(trained):
    for name in ("config.yaml", "metrics.json", "samples.jsonl", "checkpoints/last.ckpt", "model/README.md",
                 "model/model.safetensors", "model/config.json"):
        assert (trained / name).exists(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    for when in ("before", "after"):
        assert {"reward", "accuracy", "format", "visual"} <= set(metrics[when])
    assert metrics["steps"] == 2
    sample = json.loads((trained / "samples.jsonl").read_text().splitlines()[0])
    assert {"prompt", "completion", "rewards", "answer"} <= set(sample)
    assert set(sample["rewards"]) == {"accuracy", "format", "visual", "description_format"}


def test_tensorboard_has_the_design_tags(trained):
    tags = _tags(trained)
    for t in ("train/loss", "train/reward", "train/reward_std", "train/rewards/format/mean",
              "train/rewards/accuracy/mean", "train/rewards/visual/mean", "train/frac_reward_zero_std",
              "train/completions/mean_length", "train/completions/clipped_ratio", "train/kl", "train/entropy",
              "train/clip_ratio/low_mean", "train/clip_ratio/high_mean", "train/grad_norm", "train/lr",
              "perf/completions_per_s", "perf/tokens_per_s", "perf/pass2_s"):
        assert t in tags, t


def test_export_loads_with_from_pretrained(trained):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(trained / "model")
    AutoProcessor.from_pretrained(trained / "model")
    assert model.config.model_type == "qwen2_5_vl"


def test_eval_reports_accuracy_and_lsr(trained, tmp_path):
    from visionrl.selfreward.cli import eval_main as _main

    _main(["--model", str(trained / "model"), "--limit", "8", "--output-dir", str(tmp_path)])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"eval/shapes/accuracy", "eval/shapes/lsr", "eval/shapes/format"} <= set(metrics)
    assert 0.0 <= metrics["eval/shapes/lsr"] <= metrics["eval/shapes/accuracy"]
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 8 and "self_contained" in json.loads(lines[0])


def test_sft_stage(tmp_path, demo_model_dir):
    from visionrl.selfreward.cli import train_main as _main

    _main(["--preset", "sft-demo", "--max-steps", "2", "--dataset.eval-size", "4", "--eval-max-new-tokens", "16",
           "--output-dir", str(tmp_path / "sft")])
    metrics = json.loads((tmp_path / "sft" / "metrics.json").read_text())
    assert "accuracy" in metrics["after"] and (tmp_path / "sft" / "model" / "model.safetensors").exists()


def _cli(args, tmp_path, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    exe = Path(sys.executable).parent / "selfreward-train"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def test_ddp_two_processes(tmp_path, demo_model_dir):
    out = tmp_path / "ddp"
    res = _cli([*FAST, "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu", "--output-dir", str(out)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2 and "after" in metrics
