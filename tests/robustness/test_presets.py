"""Presets (the paper's values), flag validation, --help, and that the CLI modules parse without torch."""

import subprocess
import sys
from pathlib import Path

import pytest
from visionrl.core.cli import parse_config
from visionrl.core.errors import UserError
from visionrl.robustness.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig


def test_paper_preset_values_from_the_reference():
    """robustness-cot.md §1.5: Qwen2.5-VL-7B-Instruct, GRPO with G = 8, R = 0.1·format + 1.0·correct,
    augmentation 10% for each of four variants, evaluation every ~250 steps of 1k+ steps."""
    cfg = TRAIN_PRESETS["paper-7b"]
    assert cfg.run.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert cfg.grpo.num_generations == 8
    assert (cfg.format_weight, cfg.correct_weight) == (0.1, 1.0)
    assert cfg.augment_prob == 0.1 and not cfg.augment and not cfg.faithfulness
    assert cfg.run.eval_every == 250 and cfg.run.max_steps >= 1000
    assert TRAIN_PRESETS["paper-7b-aug"].augment and TRAIN_PRESETS["paper-7b-faithful"].faithfulness
    assert EVAL_PRESETS["paper"].eval.model == "RUBBISHLIKE/SpaceR"


def test_demo_preset_is_the_default_and_cpu_sized():
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=[], prog="t", description="d")
    assert cfg.run.model == "demo" and cfg.run.data == "shapes" and cfg.run.threads == 1
    assert cfg.grpo.beta == 0.0 and cfg.run.max_steps <= 100


@pytest.mark.parametrize("name", list(TRAIN_PRESETS))
def test_every_train_preset_parses_and_validates(name):
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=["--preset", name, "--max-steps", "2"],
                       prog="robustness-train", description="d")
    assert cfg.run.max_steps == 2


@pytest.mark.parametrize("name", list(EVAL_PRESETS))
def test_every_eval_preset_parses_and_validates(name):
    cfg = parse_config(EvalConfig, EVAL_PRESETS, args=["--preset", name, "--limit", "3"], prog="robustness-eval",
                       description="d")
    assert cfg.eval.limit == 3


@pytest.mark.parametrize(
    ("train", "args", "needle"),
    [
        (True, ["--augment-prob", "0.3"], "--augment-prob"),
        (True, ["--eval-variants", "base", "nope"], "--eval-variants"),
        (True, ["--eval-variants", "wrong_think"], "must include base"),
        (True, ["--grpo.num-generations", "1"], "--grpo.num-generations"),
        (False, ["--limit", "0"], "--limit"),
        (False, ["--variants", "bogus"], "--variants"),
        (False, ["--batch-size", "0"], "--batch-size"),
    ],
)
def test_bad_flag_values(train, args, needle):
    cls, presets = (TrainConfig, TRAIN_PRESETS) if train else (EvalConfig, EVAL_PRESETS)
    with pytest.raises(UserError, match=needle):
        parse_config(cls, presets, args=args, prog="p", description="d")


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.mark.parametrize(
    ("cli", "flags"),
    [
        (
            "robustness-eval",
            [
                "--model",
                "--data",
                "--output-dir",
                "--limit",
                "--batch-size",
                "--seed",
                "--variants",
                "--judges",
                "--preset",
            ],
        ),
        (
            "robustness-train",
            [
                "--model",
                "--data",
                "--output-dir",
                "--max-steps",
                "--devices",
                "--num-nodes",
                "--strategy",
                "--precision",
                "--seed",
                "--resume",
                "--push-to-hub",
                "--augment",
                "--faithfulness",
                "--eval-every",
                "--preset",
            ],
        ),
    ],
)
def test_help_lists_the_shared_flags(cli, flags):
    res = subprocess.run([_script(cli), "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for flag in flags:
        assert flag in res.stdout, flag
    assert "demo (default)" in res.stdout


@pytest.mark.parametrize("module", ["visionrl.robustness.cli", "visionrl.robustness.config"])
def test_cli_modules_do_not_import_torch(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'lightning', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
