"""Every preset parses; the paper presets carry the reference settings (llava-critic-r1.md §1.5)."""

from __future__ import annotations

import dataclasses

import pytest
from visionrl.core.cli import parse_config
from visionrl.critic.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig

PAPER = ["paper-7b", "plus-7b", "mimo-7b", "llama-11b"]


@pytest.mark.parametrize("name", sorted(TRAIN_PRESETS))
def test_every_train_preset_parses(name):
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=["--preset", name, "--max-steps", "2"], prog="t",
                       description="d")
    assert cfg.run.max_steps == 2 and cfg.reward == "critic" and cfg.format_weight == 0.1


@pytest.mark.parametrize("name", sorted(EVAL_PRESETS))
def test_every_eval_preset_parses(name):
    cfg = parse_config(EvalConfig, EVAL_PRESETS, args=["--preset", name, "--limit", "2"], prog="t", description="d")
    assert cfg.eval.limit == 2 and set(cfg.reports) == {"critic", "policy", "self-critic"}


@pytest.mark.parametrize("name", PAPER)
def test_shared_settings_match_the_reference(name):
    cfg = TRAIN_PRESETS[name]
    g, s, o = cfg.grpo, cfg.grpo.sampling, cfg.grpo.optim
    assert cfg.run.data == "lmms-lab/LLaVA-Critic-GRPO-dataset"
    assert g.num_generations == 8  # rollout.n
    assert (s.temperature, s.top_p, s.max_new_tokens) == (1.0, 0.99, 2048)  # 2048 response tokens
    assert (g.beta, g.kl_kind) == (0.01, "low_var_kl")  # use_kl_loss: KL as a loss term, not in the reward
    assert (g.clip_low, g.clip_high, g.clip_dual) == (0.2, 0.3, 3.0)
    assert g.ppo_epochs == 1 and g.loss_agg == "bnpo"  # token-mean per micro-batch
    assert (g.adv_scale, g.adv_eps) == ("group", 1e-6)
    assert (o.weight_decay, o.warmup_steps, o.schedule, o.max_grad_norm) == (1e-2, 0, "constant", 1.0)
    assert g.prompts_per_step * cfg.run.devices == 256  # rollout_batch_size
    assert g.mini_batches == 2  # global_batch_size 128 of 256 → 2 optimiser steps per rollout step
    assert g.micro_batch_size == 4
    assert cfg.load.freeze_vision is False  # freeze_vision_tower: false
    # no entropy term: the GRPO config has no entropy bonus to switch on
    assert not [f.name for f in dataclasses.fields(g) if "entropy" in f.name]
    assert cfg.run.max_steps == 15 * 157  # total_epochs 15 × ⌈40,154 / 256⌉ rollout steps
    assert cfg.run.save_every_n_steps == 2 * 10  # save_freq 10 rollout steps = 20 optimiser steps
    assert cfg.run.devices == 8 and cfg.run.strategy == "fsdp" and cfg.run.precision.startswith("bf16")
    # max_prompt_length 6142 (Llama: 4096), overlong prompts filtered out
    assert cfg.run.max_prompt_tokens == (4096 if name == "llama-11b" else 6142)
    assert cfg.run.overlong_prompts == "drop"


@pytest.mark.parametrize(("name", "model", "lr", "prefill", "max_images"), [
    ("paper-7b", "Qwen/Qwen2.5-VL-7B-Instruct", 1e-6, "", None),
    ("plus-7b", "russwang/ThinkLite-VL-7B", 5e-7, "", None),
    ("mimo-7b", "XiaomiMiMo/MiMo-VL-7B-SFT-2508", 1e-6, "<think>", None),
    ("llama-11b", "meta-llama/Llama-3.2-11B-Vision-Instruct", 5e-7, "", 1),
])
def test_per_model_settings(name, model, lr, prefill, max_images):
    cfg = TRAIN_PRESETS[name]
    assert (cfg.run.model, cfg.grpo.optim.lr, cfg.prefill, cfg.dataset.max_images) == (model, lr, prefill, max_images)


def test_demo_preset_is_small():
    cfg = TRAIN_PRESETS["demo"]
    assert cfg.run.model == "demo" and cfg.run.data == "shapes" and cfg.dataset.eval_size == 200
    assert cfg.grpo.num_generations == 4 and cfg.grpo.prompts_per_step == 16 and cfg.grpo.beta == 0.0
    assert cfg.run.threads == 1 and cfg.dataset.policy_eval == "shapes"
