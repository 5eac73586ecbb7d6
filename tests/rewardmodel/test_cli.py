"""The CLIs: --help, every preset parses, bad input refused with one line naming the flag, file or row (exit 2
from the console scripts), a 2-step demo run and a 1-step sweep cell layout."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from visionrl.core.cli import parse_config
from visionrl.core.errors import UserError
from visionrl.rewardmodel.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig

SCRIPTS = Path(sys.executable).parent


@pytest.mark.parametrize("script", ["rewardmodel-train", "rewardmodel-eval"])
def test_help(script):
    res = subprocess.run([str(SCRIPTS / script), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--preset" in res.stdout and "demo (default)" in res.stdout


@pytest.mark.parametrize("name", list(TRAIN_PRESETS))
def test_train_presets_parse(name):
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=["--preset", name], prog="t", description="d")
    assert cfg == TRAIN_PRESETS[name]


def test_paper_presets_follow_the_paper():
    for name in ("paper-7b", "paper-7b-qwen2vl"):
        cfg = TRAIN_PRESETS[name]
        assert cfg.optim.lr == 3e-6 and cfg.batch_size * cfg.run.devices * cfg.run.num_nodes == 128
        assert (cfg.head_kind, cfg.head_layers, cfg.head_activation, cfg.center_coef, cfg.length_norm) == (
            "mlp", 2, "silu", 0.0, False)
        assert cfg.run.data == "basereward" and cfg.load.freeze_vision
    assert TRAIN_PRESETS["paper-7b"].run.model == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert TRAIN_PRESETS["paper-7b-qwen2vl"].run.model == "Qwen/Qwen2-VL-7B-Instruct"
    assert (TRAIN_PRESETS["ablation-heads"].sweep, TRAIN_PRESETS["ablation-reg"].sweep) == ("heads", "reg")


@pytest.mark.parametrize("name", list(EVAL_PRESETS))
def test_eval_presets_parse(name):
    assert parse_config(EvalConfig, EVAL_PRESETS, args=["--preset", name], prog="e", description="d") == EVAL_PRESETS[name]


@pytest.mark.parametrize(("args", "message"), [
    (["--head-layers", "0"], r"^--head-layers 0: must be > 0\.$"),
    (["--head-activation", "swish"], r"'swish' .*--head-activation.*'none', 'tanh', 'relu', 'silu'"),
    (["--dataset.caps", "mmpr=-5"], r"^--dataset.caps 'mmpr=-5': mmpr must be >= 0\.$"),
    (["--dataset.weights", "rlaif-v=-0.5"], r"^--dataset.weights 'rlaif-v=-0.5': rlaif-v must be >= 0\.$"),
    (["--center-coef", "-0.1"], r"^--center-coef -0.1: must be >= 0\.$"),
])
def test_bad_flags_are_refused_naming_the_flag(args, message):
    with pytest.raises(UserError, match=message) as err:
        parse_config(TrainConfig, TRAIN_PRESETS, args=args, prog="rewardmodel-train", description="d")
    assert "\n" not in str(err.value)


@pytest.mark.slow
@pytest.mark.parametrize(("args", "needle"), [
    (["--head-layers", "0"], "--head-layers"),
    (["--head-activation", "swish"], "--head-activation"),
    (["--dataset.caps", "mmpr=-5"], "--dataset.caps"),
])
def test_console_script_exits_2_with_one_line(args, needle, tmp_path):
    res = subprocess.run([str(SCRIPTS / "rewardmodel-train"), *args, "--output-dir", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and needle in lines[0], res.stderr
    assert not (tmp_path / "o").exists()


def test_a_pair_row_with_an_empty_chosen_names_the_row(tmp_path):
    from visionrl.rewardmodel.cli import train_main

    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "data.jsonl").write_text(
        json.dumps({"question": "q", "chosen": "a", "rejected": "b"}) + "\n"
        + json.dumps({"question": "q", "chosen": " ", "rejected": "b"}) + "\n")
    with pytest.raises(UserError, match=r"pairs/data.jsonl row 2: field 'chosen' is empty or not text$"):
        train_main(["--data", f"rlaif-v={tmp_path / 'pairs'}", "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_the_demo_run_writes_image_and_text_accuracy_and_the_head(demo_rm):
    run = demo_rm.parent
    metrics = json.loads((run / "metrics.json").read_text())
    for phase in ("before", "after"):
        assert {"accuracy", "margin", "text_accuracy", "text_margin"} <= set(metrics[phase])
    assert (demo_rm / "reward_head.safetensors").is_file() and (demo_rm / "reward_head.json").is_file()
    card = (demo_rm / "README.md").read_text()
    assert "BaseReward reward model" in card and "2-layer MLP, silu" in card and "Bradley-Terry" in card
    assert metrics["steps"] == 3


def test_sweep_cells_cover_table_2_and_the_lambda_sweep():
    from visionrl.rewardmodel.train import cells

    heads = cells(TRAIN_PRESETS["ablation-heads"])
    assert [n for n, _ in heads] == ["layers1-none", "layers2-none", "layers2-tanh", "layers2-silu", "layers3-silu",
                                     "layers4-silu", "layers5-silu"]
    assert all(c.sweep == "none" for _, c in heads) and heads[2][1].head_activation == "tanh"
    reg = cells(TRAIN_PRESETS["ablation-reg"])
    assert [(c.center_coef, c.length_norm) for _, c in reg] == [(0.0, False), (0.001, False), (0.01, False),
                                                                (0.1, False), (0.0, True)]
    assert cells(TRAIN_PRESETS["demo"])[0][1] == TRAIN_PRESETS["demo"]
