"""Every preset parses; the paper presets carry the reference settings (vision-sr1.md §1.5)."""

import pytest
from visionrl.core.cli import parse_config
from visionrl.core.errors import UserError
from visionrl.selfreward.cli import train_main as _main
from visionrl.selfreward.config import TRAIN_PRESETS as PRESETS
from visionrl.selfreward.config import TrainConfig


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_parses_and_validates(name):
    cfg = parse_config(TrainConfig, PRESETS, args=["--preset", name, "--max-steps", "2"], prog="t", description="d")
    assert cfg.run.max_steps == 2


def test_paper_7b_matches_the_reference_table():
    cfg = PRESETS["paper-7b"]
    g, s, o = cfg.grpo, cfg.grpo.sampling, cfg.grpo.optim
    assert cfg.run.model == "LMMs-Lab-Turtle/Qwen-2.5VL-7B-Cold-Start"
    assert cfg.run.data == "LMMs-Lab-Turtle/Vision-SR1-47K"
    assert cfg.mode == "sum" and cfg.format_weight == 0.1 and cfg.stage == "rl"
    assert g.num_generations == 8  # n = 8
    assert g.prompts_per_step * cfg.run.devices == 512  # rollout_batch_size 512 prompts
    assert g.mini_batches == 4  # global_batch_size 128 prompts -> 4 optimiser steps per rollout step
    assert (g.beta, g.kl_kind) == (0.01, "low_var_kl")
    assert (g.clip_low, g.clip_high, g.clip_dual) == (0.2, 0.3, 3.0)
    assert g.ppo_epochs == 1 and g.loss_agg == "bnpo" and g.adv_eps == 1e-6 and g.adv_scale == "group"
    assert (o.lr, o.weight_decay, o.betas, o.warmup_steps, o.schedule, o.max_grad_norm) == (
        1e-6, 1e-2, (0.9, 0.999), 0, "constant", 1.0)
    assert (s.temperature, s.top_p, s.max_new_tokens) == (1.0, 0.99, 2048)
    assert cfg.run.strategy == "fsdp" and cfg.run.devices == 8 and cfg.run.precision.startswith("bf16")
    assert PRESETS["paper-3b"].run.model == "LMMs-Lab-Turtle/Qwen-2.5VL-3B-Cold-Start"


def test_sft_preset_matches_cold_start_recipe():
    cfg = PRESETS["sft-7b"]
    assert cfg.stage == "sft" and cfg.run.data == "LMMs-Lab-Turtle/Vision-SR1-Cold-9K"
    assert cfg.sft.optim.lr == 1e-5 and cfg.sft.optim.schedule == "cosine" and cfg.load.freeze_vision


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--grpo.num-generations", "1", "num-generations"),
    ("--format-weight", "2", "format-weight"),
    ("--grpo.sampling.top-p", "0", "top-p"),
])
def test_bad_method_flags_are_user_errors(flag, value, message):
    with pytest.raises(UserError, match=message):
        _main([flag, value])


def test_help_lists_presets(capsys):
    with pytest.raises(SystemExit) as exc:
        _main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "paper-7b" in out and "--max-steps" in out and "--mode" in out
