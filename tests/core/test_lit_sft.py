"""SFTModule (visionrl.core.lit.sft) on a tiny Qwen2.5-VL, CPU: a few steps on shapes questions lower the
loss on their answers, and the step counter (which picks each step's rows) survives a checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.hparams import OptimConfig, SFTConfig
from visionrl.core.vlm import Prompt, load_vlm

FAMILY = "qwen2_5_vl"


def examples(n: int) -> list[Any]:
    from visionrl.core.lit.sft import SFTExample

    return [SFTExample(Prompt.simple(r.question, r.images), r.answer) for r in ShapesWorld(seed=0).vqa(n)]


def make_module(tiny_build: Callable[[str], Any], cfg: SFTConfig, data: list[Any], max_steps: int) -> Any:
    from visionrl.core.lit.sft import SFTModule

    return SFTModule(load_vlm(tiny_build(FAMILY).path), cfg, data, max_steps=max_steps, seed=0)


def trainer(max_steps: int, **kwargs: Any) -> Any:
    import lightning as L

    kw = dict(max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False)
    return L.Trainer(**{**kw, **kwargs})


def test_sft_steps_lower_the_loss(tiny_build):
    from visionrl.core.lit.datamodules import StepDataModule

    data = examples(4)
    # batch 4 = the whole set each step, accumulated over 2 micro-batches of 2
    cfg = SFTConfig(batch_size=4, micro_batch_size=2, optim=OptimConfig(lr=1e-2, schedule="constant"))
    module = make_module(tiny_build, cfg, data, max_steps=6)
    with torch.no_grad():
        before = float(module.loss_on(data).loss)
    t = trainer(6)
    t.fit(module, datamodule=StepDataModule(6))
    with torch.no_grad():
        after = float(module.loss_on(data).loss)

    assert module.step_idx == 6
    assert after < 0.5 * before, f"loss {before:.3f} -> {after:.3f}"
    assert {"train/loss", "train/token_accuracy", "train/grad_norm", "train/lr"} <= set(module.last_metrics)


def test_sft_restores_step_from_checkpoint(tiny_build, tmp_path):
    import lightning as L
    from visionrl.core.lit.datamodules import StepDataModule

    class StepAtStart(L.Callback):
        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            self.step = pl_module.step_idx

    data = examples(6)
    cfg = SFTConfig(batch_size=2, micro_batch_size=2, optim=OptimConfig(lr=1e-3, schedule="constant"))
    first = make_module(tiny_build, cfg, data, max_steps=5)
    first.eval_results = {"before": {"accuracy": 0.25}}
    t = trainer(3)
    t.fit(first, datamodule=StepDataModule(5))
    assert first.step_idx == 3
    ckpt = tmp_path / "sft.ckpt"
    t.save_checkpoint(ckpt)

    second = make_module(tiny_build, cfg, data, max_steps=5)
    seen = StepAtStart()
    t2 = trainer(5, callbacks=[seen])
    t2.fit(second, datamodule=StepDataModule(5), ckpt_path=ckpt)

    assert seen.step == 3, "step_idx was not restored before training resumed"
    assert second.step_idx == 5 and t2.global_step == 5
    assert second.eval_results == {"before": {"accuracy": 0.25}}
