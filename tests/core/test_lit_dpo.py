"""DPOModule (visionrl.core.lit.dpo) on a tiny Qwen2.5-VL, CPU: the loss at step 0 is the hand-derived value,
the frozen reference never moves and stays out of the checkpoint, steps lower the loss, IPO runs."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.hparams import DPOConfig, OptimConfig
from visionrl.core.vlm import load_vlm

FAMILY = "qwen2_5_vl"
PAIRS = ShapesWorld(seed=0).pairs(8)
TRL_METRICS = {"train/loss", "train/rewards/chosen", "train/rewards/rejected", "train/rewards/accuracies",
               "train/rewards/margins", "train/lr", "train/grad_norm"}


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_module(tiny_build: Callable[[str], Any], max_steps: int, **overrides: Any) -> Any:
    from visionrl.core.lit.dpo import DPOModule

    base = dict(batch_size=8, micro_batch_size=4, optim=OptimConfig(lr=1e-2, schedule="constant"))
    cfg = DPOConfig(**{**base, **overrides})
    return DPOModule(load_vlm(tiny_build(FAMILY).path), cfg, PAIRS, max_steps=max_steps, seed=0)


def fit(module: Any, steps: int) -> Any:
    import lightning as L
    from visionrl.core.lit.datamodules import StepDataModule

    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, datamodule=StepDataModule(steps))
    return trainer


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_step_zero_loss_is_log2_then_steps_lower_it_and_the_reference_stays_frozen(tiny_build):
    """At step 0 the policy is the reference, so every log-ratio is 0 and h = (π_c − ref_c) − (π_r − ref_r) = 0.
    Sigmoid DPO with ε = 0: loss = −log σ(β·0) = −log(1/2) = log 2 ≈ 0.693147, whatever β; both implicit
    rewards β·(π − ref) are 0, so margins are 0 and accuracy (strict >) is 0."""
    module = make_module(tiny_build, max_steps=3)
    ref_before = snapshot(module._ref[0])
    policy_before = snapshot(module.policy)
    with torch.no_grad():
        out = module.loss_on(PAIRS)
    assert float(out.loss) == pytest.approx(math.log(2), abs=1e-6)
    assert float(out.reward_margin) == 0.0 and float(out.reward_accuracy) == 0.0

    fit(module, 3)
    with torch.no_grad():
        after = module.loss_on(PAIRS)

    assert module.step_idx == 3
    assert float(after.loss) < math.log(2) - 0.05, f"loss log 2 -> {float(after.loss):.3f}"
    assert TRL_METRICS <= set(module.last_metrics)
    for name, p in module._ref[0].named_parameters():
        assert torch.equal(p, ref_before[name]), f"reference parameter {name} changed"
        assert not p.requires_grad
    moved = [n for n, p in module.policy.named_parameters() if not torch.equal(p, policy_before[n])]
    assert moved, "no policy parameter changed"
    assert not any("_ref" in k for k in module.state_dict()), "the reference leaked into the state_dict"


def test_logged_loss_of_the_first_step_is_log2(tiny_build):
    module = make_module(tiny_build, max_steps=1)
    fit(module, 1)
    assert float(module.last_metrics["train/loss"]) == pytest.approx(math.log(2), abs=1e-6)
    assert float(module.last_metrics["train/rewards/margins"]) == 0.0


def test_ipo_runs_and_starts_at_its_hand_derived_loss(tiny_build):
    """IPO at step 0: h = 0, so loss = (h − 1/(2β))² = (1/(2·0.1))² = 25; token-mean log-probs by default."""
    module = make_module(tiny_build, max_steps=2, loss_type="ipo", beta=0.1, optim=OptimConfig(lr=1e-3))
    assert module.average_logps
    with torch.no_grad():
        assert float(module.loss_on(PAIRS).loss) == pytest.approx(25.0, abs=1e-4)
    fit(module, 2)
    assert module.step_idx == 2
    assert math.isfinite(float(module.last_metrics["train/loss"]))
    with torch.no_grad():
        assert float(module.loss_on(PAIRS).loss) < 25.0
