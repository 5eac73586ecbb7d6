"""GRPOModule (visionrl.core.lit.grpo) end to end on a tiny Qwen2.5-VL, CPU, one process: parameters move,
the reference model stays frozen, PPO epochs go off-policy, metric names follow the design, NaN rewards stop
the run, prompt choice is a pure function, and gradient accumulation does not change the gradient.

Lightning is imported inside the tests, so collecting this file stays cheap."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from visionrl.core.data.shapes import ShapesWorld
from visionrl.core.hparams import GRPOConfig, OptimConfig, SamplingParams
from visionrl.core.lit.common import records_for_step, step_seed
from visionrl.core.rewards.base import NamedReward, RewardContext
from visionrl.core.vlm import Prompt, load_vlm

FAMILY = "qwen2_5_vl"
RECORDS = ShapesWorld(seed=0).vqa(16)

DESIGN_METRICS = [
    "train/loss", "train/reward", "train/reward_std", "train/rewards/parity/mean", "train/frac_reward_zero_std",
    "train/completions/mean_length", "train/completions/clipped_ratio", "train/kl", "train/entropy",
    "train/clip_ratio/low_mean", "train/clip_ratio/high_mean", "train/grad_norm", "train/lr",
    "perf/completions_per_s", "perf/tokens_per_s",
]


def prompt_fn(record: Any) -> Prompt:
    return Prompt.simple(record.question, record.images)


def parity_reward(ctx: RewardContext) -> list[float]:
    """1 when the decoded completion has an odd number of characters: about half of a tiny random model's
    samples, so most groups have non-zero reward spread and hence non-zero advantages."""
    return [float(len(c) % 2) for c in ctx.completions]


PARITY = NamedReward("parity", parity_reward)


def config(**overrides: Any) -> GRPOConfig:
    base = dict(num_generations=4, prompts_per_step=2, sampling=SamplingParams(max_new_tokens=8),
                micro_batch_size=4, optim=OptimConfig(lr=1e-2, warmup_steps=0))
    return GRPOConfig(**{**base, **overrides})


@pytest.fixture
def fresh_vlm(tiny_build: Callable[[str], Any]) -> Callable[[], Any]:
    """A new, unshared load of the tiny model each call (training mutates it)."""
    path = tiny_build(FAMILY).path
    return lambda: load_vlm(path)


def make_module(vlm: Any, cfg: GRPOConfig, *, max_steps: int, rewards: list[NamedReward] | None = None) -> Any:
    from visionrl.core.lit.grpo import GRPOModule

    return GRPOModule(vlm, cfg, rewards or [PARITY], RECORDS, prompt_fn, max_steps=max_steps, seed=0)


def fit(module: Any, rollout_steps: int) -> Any:
    """Plain Trainer; `max_steps` counts optimizer steps, of which one rollout step makes ppo_epochs × mini_batches."""
    import lightning as L
    from visionrl.core.lit.datamodules import StepDataModule

    trainer = L.Trainer(max_steps=module.trainer_steps, accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, datamodule=StepDataModule(rollout_steps))
    return trainer


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# ---- training moves the policy and logs the design's metrics --------------------------------------


def test_steps_change_every_parameter_and_log_design_metrics(fresh_vlm):
    # No weight decay: AdamW's decay would move every weight even without a gradient, hiding a parameter
    # the loss never reaches. The prompts carry images, so the vision tower must get gradient too.
    vlm = fresh_vlm()
    module = make_module(vlm, config(optim=OptimConfig(lr=1e-2, warmup_steps=0, weight_decay=0.0)), max_steps=3)
    before = snapshot(vlm.model)
    trainer = fit(module, 3)

    assert module.step_idx == 3 and trainer.global_step == 3
    unchanged = [n for n, p in vlm.model.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged, f"parameters never updated: {unchanged}"
    assert any(".visual." in f".{n}" for n in before), "the tiny model should have a vision tower"

    metrics = module.last_metrics
    missing = [k for k in DESIGN_METRICS if k not in metrics]
    assert not missing, f"missing metrics {missing}; logged: {sorted(metrics)}"
    assert all(math.isfinite(float(metrics[k])) for k in DESIGN_METRICS)
    assert float(metrics["train/lr"]) == pytest.approx(1e-2)
    assert 1 <= float(metrics["train/completions/mean_length"]) <= 8
    assert float(metrics["train/kl"]) == 0.0  # β = 0: no reference, no KL
    assert float(metrics["train/grad_norm"]) > 0


def test_no_reference_model_when_beta_is_zero(fresh_vlm):
    assert make_module(fresh_vlm(), config(beta=0.0), max_steps=1)._ref == []


def test_reference_model_is_a_frozen_copy(fresh_vlm):
    vlm = fresh_vlm()
    module = make_module(vlm, config(beta=0.1), max_steps=2)
    assert len(module._ref) == 1
    ref = module._ref[0]
    initial = snapshot(vlm.model)
    policy_storage = {p.data_ptr() for p in vlm.model.parameters()}
    assert not any(p.data_ptr() in policy_storage for p in ref.parameters()), "the reference shares weights"
    assert not any(p.requires_grad for p in ref.parameters())
    # Kept out of the state dict (and so out of DDP and checkpoints).
    assert not any(k.startswith("_ref") for k in module.state_dict())

    fit(module, 2)

    assert all(torch.equal(p, initial[n]) for n, p in ref.named_parameters()), "the reference model moved"
    assert any(not torch.equal(p.detach(), initial[n]) for n, p in vlm.model.named_parameters())
    # The step-2 policy differs from the reference, so the KL of step 2 is positive.
    assert float(module.last_metrics["train/kl"]) > 0


def test_second_ppo_epoch_is_off_policy(fresh_vlm, monkeypatch):
    """ppo_epochs=2: old log-probs are recomputed before the first epoch, so every first-epoch ratio is
    exactly 1; the second epoch runs after an optimizer step, so its ratios are not."""
    import visionrl.core.lit.grpo as grpo

    calls: list[dict[str, Any]] = []
    real = grpo.policy_loss

    def recording_policy_loss(logps_BT, old_logps_BT, *args, **kwargs):
        out = real(logps_BT, old_logps_BT, *args, **kwargs)
        calls.append(dict(ratio_mean=float(out.ratio_mean), logps=logps_BT.detach().clone(),
                          old=old_logps_BT.detach().clone()))
        return out

    monkeypatch.setattr(grpo, "policy_loss", recording_policy_loss)
    module = make_module(fresh_vlm(), config(ppo_epochs=2), max_steps=1)
    trainer = fit(module, 1)

    assert trainer.global_step == 2  # one rollout step, two optimizer steps
    micro_per_epoch = 8 // 4  # N = 2 prompts × 4 generations, micro-batches of 4
    assert len(calls) == 2 * micro_per_epoch
    first, second = calls[:micro_per_epoch], calls[micro_per_epoch:]
    for c in first:
        assert torch.equal(c["logps"], c["old"]), "first-epoch log-probs differ from the recomputed old ones"
        assert c["ratio_mean"] == 1.0
    for c in second:
        assert not torch.equal(c["logps"], c["old"])
        assert c["ratio_mean"] != 1.0
    # The old log-probs are those of the rollout-time policy in both epochs.
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a["old"], b["old"])


def test_nan_reward_stops_with_the_step(fresh_vlm):
    from visionrl.core.lit.common import NumericsError

    seen = []

    def nan_on_second_step(ctx: RewardContext) -> list[float]:
        seen.append(1)
        return [float("nan") if len(seen) == 2 else 1.0] * len(ctx.completions)

    module = make_module(fresh_vlm(), config(nan_policy="stop"), max_steps=3,
                         rewards=[PARITY, NamedReward("broken", nan_on_second_step)])
    with pytest.raises(NumericsError, match=r"'broken'.*step 1\b"):
        fit(module, 3)
    assert module.step_idx == 1


# ---- prompt choice and sampling seeds ------------------------------------------------------------


def test_sampling_is_a_function_of_seed_step_and_rank(fresh_vlm):
    """What exact resume rests on: step k's prompts and completions do not depend on the RNG state or on
    the steps sampled before it."""
    import lightning as L

    module = make_module(fresh_vlm(), config(), max_steps=1)
    module.trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    torch.manual_seed(123)
    a, _ = module.sample(3)
    torch.manual_seed(456)
    module.sample(0)
    b, _ = module.sample(3)
    assert a.texts == b.texts and torch.equal(a.completion_ids_NC, b.completion_ids_NC)
    expected = [RECORDS[i].id for i in records_for_step(len(RECORDS), 3, 2, 0, 1, seed=0)]
    assert [r.id for r in a.rows] == [i for i in expected for _ in range(4)]
    assert module.sample(4)[0].texts != a.texts


def test_records_for_step_is_pure():
    args = dict(n_records=13, step=5, per_rank=3, rank=1, world=2, seed=7)
    assert records_for_step(**args) == records_for_step(**args)
    assert records_for_step(**args) != records_for_step(**{**args, "seed": 8})
    assert step_seed(0, 3, 0) == step_seed(0, 3, 0)
    assert len({step_seed(0, s, r) for s in range(4) for r in range(2)}) == 8


@pytest.mark.parametrize(("n", "per_rank", "world"), [(12, 2, 3), (16, 2, 2), (8, 4, 1)])
def test_records_for_step_disjoint_ranks_and_full_epochs(n, per_rank, world):
    glob = per_rank * world
    steps_per_epoch = n // glob
    for epoch in range(3):
        seen = []
        for step in range(epoch * steps_per_epoch, (epoch + 1) * steps_per_epoch):
            at_step = [records_for_step(n, step, per_rank, r, world, seed=0) for r in range(world)]
            flat = [i for ids in at_step for i in ids]
            assert len(set(flat)) == len(flat) == glob, f"ranks overlap at step {step}: {at_step}"
            seen += flat
        assert sorted(seen) == list(range(n)), f"epoch {epoch} does not cover every record once"


def test_records_for_step_uneven_split_still_balances():
    # 10 records in global batches of 4: five steps draw two full epochs, every record exactly twice.
    draws = [i for step in range(5) for r in range(2) for i in records_for_step(10, step, 2, r, 2, seed=3)]
    assert sorted(draws) == sorted(list(range(10)) * 2)


# ---- gradient accumulation invariance ------------------------------------------------------------


class GradRecorder:
    """Stands in for the optimizer in `GRPOModule.update`: `step` records the accumulated gradients and
    changes no weight, so both accumulation layouts see identical weights."""

    def __init__(self, model: torch.nn.Module):
        self.model, self.grads = model, []

    def step(self) -> None:
        self.grads.append({n: p.grad.clone() for n, p in self.model.named_parameters() if p.grad is not None})

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.model.zero_grad(set_to_none=set_to_none)


@pytest.fixture(scope="module")
def fixed_rollout(tiny_build):
    """One rollout of 2 prompts × 2 completions, lengths set by hand to 8, 2, 5, 3 tokens so that the
    two micro-batches of 2 differ in width and in token count."""
    from visionrl.core.rollout import generate_rollout

    vlm = load_vlm(tiny_build(FAMILY).path)
    rows = RECORDS[:2]
    torch.manual_seed(0)
    rollout = generate_rollout(vlm, [prompt_fn(r) for r in rows], rows, num_generations=2,
                               sampling=SamplingParams(max_new_tokens=8))
    assert rollout.completion_ids_NC.shape == (4, 8)
    lengths = torch.tensor([8, 2, 5, 3])
    mask = (torch.arange(8)[None, :] < lengths[:, None]).long()
    rollout.completion_mask_NC = mask
    rollout.completion_ids_NC = rollout.completion_ids_NC.masked_fill(mask == 0, vlm.pad_token_id)
    adv = torch.tensor([1.0, -0.5, 0.7, -1.2])
    return vlm, rollout, adv


def update_grads(vlm: Any, rollout: Any, adv: torch.Tensor, monkeypatch, **cfg: Any) -> dict[str, torch.Tensor]:
    """The gradient one `GRPOModule.update` call hands to the optimizer (clipping off)."""
    grads = update_all_grads(vlm, rollout, adv, monkeypatch, **cfg)
    assert len(grads) == 1
    return grads[0]


def update_all_grads(vlm: Any, rollout: Any, adv: torch.Tensor, monkeypatch, **cfg: Any) -> list[dict[str, torch.Tensor]]:
    """The gradient of every optimizer step of one `GRPOModule.update` call (clipping off; no weight moves). With
    β > 0 the reference copy is moved off the policy by a fixed perturbation, so the KL term has a gradient."""
    module = make_module(vlm, config(optim=OptimConfig(max_grad_norm=0.0), **cfg), max_steps=1)
    if module._ref:
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in module._ref[0].parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    recorder = GradRecorder(vlm.model)
    # No Trainer: the optimizer and scheduler are stubs, and backward is plain autograd.
    monkeypatch.setattr(module, "optimizers", lambda: recorder)
    monkeypatch.setattr(module, "lr_schedulers", lambda: type("NoSched", (), {"step": lambda self: None})())
    monkeypatch.setattr(module, "manual_backward", lambda loss: loss.backward())
    module.update(rollout, adv, step=0)
    return recorder.grads


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("beta", [0.0, 0.1])
@pytest.mark.parametrize("micro_batch_size", [2, 3])
@pytest.mark.parametrize("loss_agg", ["grpo", "dr_grpo", "dapo"])
def test_micro_batches_accumulate_to_the_full_batch_gradient(fixed_rollout, monkeypatch, loss_agg,
                                                            micro_batch_size, beta):
    """4 rows in one micro-batch == 2 + 2, and == the uneven 3 + 1 (the lone row weighs 1/4, not 1/2),
    with and without the KL term."""
    vlm, rollout, adv = fixed_rollout
    whole = update_grads(vlm, rollout, adv, monkeypatch, loss_agg=loss_agg, micro_batch_size=4, beta=beta)
    split = update_grads(vlm, rollout, adv, monkeypatch, loss_agg=loss_agg, micro_batch_size=micro_batch_size,
                         beta=beta)
    scale = max(float(g.abs().max()) for g in whole.values())
    assert scale > 1e-3, "the gradient is too small for the comparison to mean anything"
    assert max_diff(whole, split) < 1e-5
    if beta > 0:  # the KL term is really in the gradient
        assert max_diff(whole, update_grads(vlm, rollout, adv, monkeypatch, loss_agg=loss_agg,
                                            micro_batch_size=4)) > 1e-4


def test_bnpo_is_not_accumulation_invariant(fixed_rollout, monkeypatch):
    """The check above is sensitive: "bnpo" weighs tokens of the 10-token and the 8-token micro-batch
    differently, and its gradient moves by far more than the tolerance."""
    vlm, rollout, adv = fixed_rollout
    whole = update_grads(vlm, rollout, adv, monkeypatch, loss_agg="bnpo", micro_batch_size=4)
    split = update_grads(vlm, rollout, adv, monkeypatch, loss_agg="bnpo", micro_batch_size=2)
    assert max_diff(whole, split) > 1e-3


def test_dr_grpo_normaliser_ignores_the_rollouts_padded_width(fixed_rollout, monkeypatch):
    """Dr. GRPO divides by a constant (the generation budget, max_new_tokens = 8). A rollout whose longest
    completion has 5 tokens is 5 columns wide when every row stops early, or 8 wide when padded; the two
    hold the same tokens, so they must give the same gradient."""
    import dataclasses

    vlm, rollout, adv = fixed_rollout
    lengths = torch.tensor([5, 2, 5, 3])
    mask = (torch.arange(8)[None, :] < lengths[:, None]).long()
    wide = dataclasses.replace(rollout, completion_mask_NC=mask,
                               completion_ids_NC=rollout.completion_ids_NC.masked_fill(mask == 0, vlm.pad_token_id))
    narrow = dataclasses.replace(wide, completion_mask_NC=wide.completion_mask_NC[:, :5],
                                 completion_ids_NC=wide.completion_ids_NC[:, :5])
    g_wide = update_grads(vlm, wide, adv, monkeypatch, loss_agg="dr_grpo", micro_batch_size=2)
    g_narrow = update_grads(vlm, narrow, adv, monkeypatch, loss_agg="dr_grpo", micro_batch_size=2)
    assert max_diff(g_wide, g_narrow) < 1e-6


def test_mini_batches_give_exactly_that_many_optimizer_steps(fresh_vlm):
    """8 rows in 3 mini-batches (3 + 3 + 2): three optimizer steps per rollout step, as the LR schedule and
    the Trainer's `max_steps` (= rollout steps × `optimizer_steps_per_rollout`) assume."""
    module = make_module(fresh_vlm(), config(mini_batches=3, micro_batch_size=2), max_steps=1)
    assert module.optimizer_steps_per_rollout == 3
    trainer = fit(module, 1)
    assert trainer.global_step == 3
    assert module.lr_schedulers().last_epoch == 3


# ---- work shared by a group: same gradient as the per-row forward -------------------------------------------

NAIVE = dict(shared_vision=False, shared_prefix=False)
SHARING = {"vision": dict(shared_vision=True, shared_prefix=False),
           "prefix": dict(shared_vision=False, shared_prefix=True),
           "vision+prefix": dict(shared_vision=True, shared_prefix=True)}


@pytest.mark.parametrize("sharing", SHARING)
@pytest.mark.parametrize(("beta", "micro_batch_size", "mini_batches"), [(0.0, 3, 1), (0.1, 4, 1), (0.1, 2, 2)])
def test_shared_work_gives_the_per_row_gradient(fixed_rollout, monkeypatch, sharing, beta, micro_batch_size,
                                                mini_batches):
    """Every optimizer step's gradient (vision tower included) equals the per-row forward's: micro-batches of 3
    split a group (the tower's gradient is carried across them), β > 0 adds the reference pass, two mini-batches
    the old-log-prob pass. Tolerance relative to the gradient's scale (float32 sums in another order)."""
    vlm, rollout, adv = fixed_rollout
    cfg = dict(loss_agg="dapo", beta=beta, micro_batch_size=micro_batch_size, mini_batches=mini_batches)
    naive = update_all_grads(vlm, rollout, adv, monkeypatch, **cfg, **NAIVE)
    shared = update_all_grads(vlm, rollout, adv, monkeypatch, **cfg, **SHARING[sharing])
    assert len(naive) == len(shared) == mini_batches
    for a, b in zip(naive, shared, strict=True):
        scale = max(float(g.abs().max()) for g in a.values())
        assert scale > 1e-3
        assert any(".visual." in f".{n}" for n in a), "the vision tower got no gradient"
        assert max_diff(a, b) < 1e-5 * scale


@pytest.mark.parametrize(("freeze_vision", "expected"), [(True, 1), (False, 1 + 2 * 2)])
def test_vision_tower_runs_once_per_pass(tiny_build, fixed_rollout, monkeypatch, freeze_vision, expected):
    """ppo_epochs=2 × mini_batches=2: a frozen tower runs once per step (its features serve the old-log-prob pass
    and all four mini-batches); a trained one once for the old-log-prob pass and once per mini-batch."""
    from visionrl.core.vlm import LoadOptions

    _, rollout, adv = fixed_rollout
    vlm = load_vlm(tiny_build(FAMILY).path, LoadOptions(freeze_vision=freeze_vision))
    calls: list[int] = []
    tower = vlm.adapter.vision_modules(vlm.model)[0]
    hook = tower.register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        update_all_grads(vlm, rollout, adv, monkeypatch, ppo_epochs=2, mini_batches=2, micro_batch_size=1)
    finally:
        hook.remove()
    assert len(calls) == expected
