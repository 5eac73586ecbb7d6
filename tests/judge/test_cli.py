"""The CLIs: `--help` of both, presets parse, and bad input exits 2 with one line naming the flag, file or row
before any model loads (ranges, the majority threshold, a prompt row without its image, another run's folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from visionrl.core.cli import parse_config, run_cli
from visionrl.core.errors import UserError
from visionrl.judge.cli import eval_main, train_main
from visionrl.judge.config import EVAL_PRESETS, TRAIN_PRESETS, EvalConfig, TrainConfig
from visionrl.judge.iterate import config_hash


@pytest.mark.parametrize("script", ["judge-train", "judge-eval"])
def test_help(script: str) -> None:
    exe = str(Path(sys.executable).parent / script)
    res = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--preset" in res.stdout and "demo (default)" in res.stdout
    assert "--judge-prompt" in res.stdout


@pytest.mark.parametrize("name", list(TRAIN_PRESETS))
def test_train_presets_parse(name: str) -> None:
    cfg = parse_config(TrainConfig, TRAIN_PRESETS, args=["--preset", name], prog="judge-train", description="d")
    assert cfg == TRAIN_PRESETS[name]


def test_paper_preset_holds_the_paper_settings() -> None:
    p = TRAIN_PRESETS["paper-11b"]
    assert p.run.model == "meta-llama/Llama-3.2-11B-Vision-Instruct" and p.iterations == 4
    assert p.sft.optim.lr == 1e-5 and p.epochs == 5 and p.run.strategy == "fsdp" and p.run.precision == "bf16-true"
    assert (p.num_samples, p.majority_threshold, p.lone_answer) == (16, 5, "drop")  # the reference's default
    assert (p.sampling.temperature, p.sampling.top_k, p.sampling.top_p) == (0.6, 50, 0.9)
    assert p.dataset.prompts_per_iteration * p.iterations == p.dataset.limit == 100_000


@pytest.mark.parametrize("name", list(EVAL_PRESETS))
def test_eval_presets_parse(name: str) -> None:
    assert parse_config(EvalConfig, EVAL_PRESETS, args=["--preset", name], prog="judge-eval",
                        description="d") == EVAL_PRESETS[name]


@pytest.mark.parametrize(("args", "flag"), [
    (["--iterations", "0"], "--iterations"),
    (["--majority-threshold", "17"], "--majority-threshold"),
    (["--num-samples", "4"], "--majority-threshold"),  # the preset's threshold 5 is now above N
    (["--length-ratio", "1.3", "1.1"], "--length-ratio"),
    (["--match-size"], "--match-size"),
    (["--closed-answers", "response"], "--lone-answer"),  # the demo preset pools lone short answers
    (["--judge-samples", "0"], "--judge-samples"),
    (["--max-errors", "4"], "--max-errors"),
])
def test_bad_train_flags(args: list[str], flag: str) -> None:
    with pytest.raises(UserError) as err:
        parse_config(TrainConfig, TRAIN_PRESETS, args=args, prog="judge-train", description="d")
    assert str(err.value).startswith(flag) and "\n" not in str(err.value)


def test_bad_eval_flags() -> None:
    with pytest.raises(UserError, match="^--repeats 0"):
        parse_config(EvalConfig, EVAL_PRESETS, args=["--repeats", "0"], prog="judge-eval", description="d")


def one_error_line(capsys: pytest.CaptureFixture[str], main, args: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        run_cli(lambda: main(args))
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1, err
    return err[0]


def test_a_prompt_row_without_its_image_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "prompts"
    (data / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(data / "images" / "a.png")
    rows = [{"id": "1", "image": "images/a.png", "conversations": [{"from": "human", "value": "<image>\nQ?"},
                                                                 {"from": "gpt", "value": "2"}]},
            {"id": "2", "image": "images/gone.png", "conversations": [{"from": "human", "value": "<image>\nQ?"}]}]
    (data / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    line = one_error_line(capsys, train_main, ["--data", str(data), "--output-dir", str(out)])
    assert "data.jsonl row 2: image 'images/gone.png' not found" in line
    assert not out.exists()


def test_resuming_into_a_folder_with_other_settings_names_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    (out / "iter_0").mkdir(parents=True)
    other = parse_config(TrainConfig, TRAIN_PRESETS, args=["--epochs", "2"], prog="judge-train", description="d")
    (out / "iter_0" / "config_hash").write_text(config_hash(other) + "\n")
    line = one_error_line(capsys, train_main, ["--output-dir", str(out)])
    assert line.startswith(f"error: {out / 'iter_0'}: written with other settings")
    assert "--overwrite" in line


def test_config_hash_ignores_where_and_how_long() -> None:
    base = TRAIN_PRESETS["demo"]
    same = parse_config(TrainConfig, TRAIN_PRESETS, args=["--iterations", "5", "--output-dir", "x", "--devices", "2",
                                                          "--threads", "2"], prog="judge-train", description="d")
    other = parse_config(TrainConfig, TRAIN_PRESETS, args=["--seed", "1"], prog="judge-train", description="d")
    assert config_hash(same) == config_hash(base) != config_hash(other)


def test_resume_takes_no_checkpoint_path(tmp_path: Path, capsys) -> None:
    line = one_error_line(capsys, train_main, ["--resume", str(tmp_path / "x.ckpt"), "--output-dir", str(tmp_path)])
    assert line.startswith("error: --resume") and "resumes by stage" in line


def test_unknown_eval_data(tmp_path: Path, capsys) -> None:
    line = one_error_line(capsys, eval_main, ["--data", "nonsense", "--output-dir", str(tmp_path / "o")])
    assert line.startswith("error: --data 'nonsense': unknown benchmark")
