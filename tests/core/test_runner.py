"""GRPO through the shared Trainer (visionrl.core.cli.build_trainer), CPU: a run stopped after its step-4
checkpoint and resumed from `last.ckpt` continues exactly as an uninterrupted run, and a 2-process DDP run
(gloo) samples differently per rank while keeping every rank's weights identical."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from visionrl.core.config import RunArgs
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.hparams import GRPOConfig, OptimConfig, SamplingParams
from visionrl.core.rewards.base import NamedReward, RewardContext
from visionrl.core.vlm import Prompt, load_vlm

FAMILY = "qwen2_5_vl"
TOTAL_STEPS = 8


def parity_reward(ctx: RewardContext) -> list[float]:
    """1 for completions with an odd number of characters (non-zero spread within most groups)."""
    return [float(len(c) % 2) for c in ctx.completions]


def make_module(model_path: Path) -> Any:
    from visionrl.core.lit.grpo import GRPOModule

    cfg = GRPOConfig(num_generations=4, prompts_per_step=2, sampling=SamplingParams(max_new_tokens=8),
                     micro_batch_size=4, optim=OptimConfig(lr=1e-2, warmup_steps=0, schedule="cosine"))
    # Every module is a fresh load of the same folder: identical initial weights.
    return GRPOModule(load_vlm(model_path), cfg, [NamedReward("parity", parity_reward)], ShapesWorld(seed=0).vqa(16),
                      lambda r: Prompt.simple(r.question, r.images), max_steps=TOTAL_STEPS, seed=0)


# On-policy GRPO's loss is −mean(A)·r with r = 1 and z-scored A, i.e. ~0 at every step whatever was sampled;
# entropy, grad norm and reward depend on the exact weights and samples, so they catch a resume that differs.
TRACKED = ("train/loss", "train/entropy", "train/grad_norm", "train/reward", "train/completions/mean_length")


def fit(module: Any, output_dir: Path, max_steps: int, ckpt_path: str | None = None) -> dict[int, dict[str, float]]:
    """Fit through `build_trainer`; returns the `TRACKED` metrics per optimizer step (1-based)."""
    import lightning as L
    from visionrl.core.cli import build_trainer
    from visionrl.core.lit.datamodules import StepDataModule

    class MetricRecorder(L.Callback):
        def __init__(self) -> None:
            self.metrics: dict[int, dict[str, float]] = {}

        def on_train_batch_end(self, trainer: Any, pl_module: Any, *args: Any) -> None:
            self.metrics[trainer.global_step] = {k: float(pl_module.last_metrics[k]) for k in TRACKED}

    run = RunArgs(output_dir=output_dir, max_steps=max_steps, save_every_n_steps=2, accelerator="cpu")
    recorder = MetricRecorder()
    trainer = build_trainer(run, callbacks=[recorder], enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=StepDataModule(TOTAL_STEPS), ckpt_path=ckpt_path)
    return recorder.metrics


def assert_same_metrics(got: dict[str, float], want: dict[str, float], step: int) -> None:
    for k in TRACKED:
        assert got[k] == pytest.approx(want[k], abs=1e-6), f"{k} differs at step {step}: {got[k]} != {want[k]}"


def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(tiny_build, tmp_path):
    path = tiny_build(FAMILY).path

    straight = make_module(path)
    straight_metrics = fit(straight, tmp_path / "straight", TOTAL_STEPS)
    assert sorted(straight_metrics) == list(range(1, TOTAL_STEPS + 1))

    first = make_module(path)
    first_metrics = fit(first, tmp_path / "resumed", 4)
    ckpts = tmp_path / "resumed" / "checkpoints"
    names = sorted(p.name for p in ckpts.iterdir())
    assert "last.ckpt" in names and any("step=2" in n for n in names) and any("step=4" in n for n in names), names
    assert not any(n.endswith(".tmp") for n in names)
    saved = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert saved["global_step"] == 4 and saved["visionrl"]["step"] == 4
    for step in range(1, 5):
        assert_same_metrics(first_metrics[step], straight_metrics[step], step)

    second = make_module(path)  # new module, initial weights: everything else must come from the checkpoint
    resumed_metrics = fit(second, tmp_path / "resumed", TOTAL_STEPS, ckpt_path=str(ckpts / "last.ckpt"))
    assert sorted(resumed_metrics) == [5, 6, 7, 8]
    for step in range(5, TOTAL_STEPS + 1):
        assert_same_metrics(resumed_metrics[step], straight_metrics[step], step)
    assert second.step_idx == straight.step_idx == TOTAL_STEPS

    want, got = straight.policy.state_dict(), second.policy.state_dict()
    assert want.keys() == got.keys()
    worst = max(float((want[k] - got[k]).abs().max()) for k in want)
    assert worst <= 1e-6, f"final weights differ by {worst}"


# ---- DDP ----------------------------------------------------------------------------------------

DDP_SCRIPT = textwrap.dedent('''
    """2-process GRPO on CPU; Lightning re-runs this file for rank 1. Args: model dir, output dir."""
    import hashlib
    import json
    import sys
    from pathlib import Path

    import torch

    torch.set_num_threads(1)  # one core per rank

    from visionrl.core.cli import build_trainer
    from visionrl.core.config import RunArgs
    from visionrl.core.data.shapes import ShapesWorld
    from visionrl.core.hparams import GRPOConfig, OptimConfig, SamplingParams
    from visionrl.core.lit.datamodules import StepDataModule
    from visionrl.core.lit.grpo import GRPOModule
    from visionrl.core.rewards.base import NamedReward
    from visionrl.core.vlm import Prompt, load_vlm

    model_dir, out = sys.argv[1], Path(sys.argv[2])


    def digest(model):
        h = hashlib.sha256()
        for name, p in sorted(model.named_parameters()):
            h.update(name.encode())
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


    cfg = GRPOConfig(num_generations=4, prompts_per_step=2, sampling=SamplingParams(max_new_tokens=8),
                     micro_batch_size=4, loss_agg="dapo", optim=OptimConfig(lr=1e-2, warmup_steps=0))
    module = GRPOModule(load_vlm(model_dir), cfg, [NamedReward("parity", lambda ctx: [float(len(c) % 2) for c in ctx.completions])],
                        ShapesWorld(seed=0).vqa(16), lambda r: Prompt.simple(r.question, r.images), max_steps=2)
    initial = digest(module.policy)
    sampled = {}
    sample = module.sample


    def recording_sample(step):
        rollout, ctx = sample(step)
        sampled["texts"], sampled["ids"] = list(rollout.texts), [row.id for row in rollout.rows]
        return rollout, ctx


    module.sample = recording_sample
    run = RunArgs(output_dir=out / "run", max_steps=2, devices=2, accelerator="cpu", strategy="ddp",
                  save_every_n_steps=100)
    trainer = build_trainer(run, find_unused_parameters=True, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=StepDataModule(2))
    record = dict(rank=trainer.global_rank, world=trainer.world_size, steps=module.step_idx, initial=initial,
                  final=digest(module.policy), param_sum=float(sum(p.double().sum() for p in module.policy.parameters())),
                  **sampled)
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
''')


@pytest.mark.slow
def test_ddp_ranks_sample_apart_and_stay_in_sync(tiny_build, tmp_path):
    import os

    script = tmp_path / "ddp_grpo.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    # Each rank is a fresh interpreter importing torch and Lightning; `.ci/run` installs with
    # precompiled bytecode so neither compiles them from source.
    proc = subprocess.run([sys.executable, str(script), str(tiny_build(FAMILY).path), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]

    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 and r["steps"] == 2 for r in ranks)
    assert ranks[0]["texts"] != ranks[1]["texts"], "both ranks sampled the same completions"
    assert set(ranks[0]["ids"]).isdisjoint(ranks[1]["ids"]), "ranks trained on the same prompts"
    assert ranks[0]["initial"] == ranks[1]["initial"]
    assert ranks[0]["final"] != ranks[0]["initial"], "training did not change the weights"
    assert ranks[0]["final"] == ranks[1]["final"], "ranks ended with different weights"
    assert ranks[0]["param_sum"] == ranks[1]["param_sum"]
