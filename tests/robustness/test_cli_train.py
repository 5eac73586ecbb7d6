"""robustness-train end to end on the embedded demo model (CPU): periodic robustness metrics in TensorBoard,
before/after held-out accuracy per variant in metrics.json, and the faithfulness/augmentation path."""

import json
from pathlib import Path

import pytest
from visionrl.robustness.config import EVAL_VARIANTS

pytestmark = pytest.mark.slow

FAST = [
    "--max-steps",
    "2",
    "--eval-every",
    "1",
    "--dataset.eval-size",
    "4",
    "--grpo.prompts-per-step",
    "2",
    "--grpo.sampling.max-new-tokens",
    "32",
    "--eval-max-new-tokens",
    "32",
    "--save-every-n-steps",
    "1",
]


def _scalars(out: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def bare_train(tmp_path_factory, demo_model_dir) -> Path:
    from visionrl.robustness.cli import train_main as _main

    out = tmp_path_factory.mktemp("rob-train") / "run"
    _main([*FAST, "--output-dir", str(out)])
    return out


def test_output_directory_contract(bare_train):
    for name in (
        "config.yaml",
        "metrics.json",
        "samples.jsonl",
        "checkpoints/last.ckpt",
        "model/model.safetensors",
        "model/README.md",
    ):
        assert (bare_train / name).exists(), name
    sample = json.loads((bare_train / "samples.jsonl").read_text().splitlines()[0])
    assert set(sample["rewards"]) == {"format", "correct", "consistent"}


def test_before_after_and_periodic_metrics_per_variant(bare_train):
    metrics = json.loads((bare_train / "metrics.json").read_text())
    assert metrics["steps"] == 2
    for when in ("before", "step_1", "after"):
        assert {"accuracy", "reward", "format"} <= set(metrics[when]), when
        for v in EVAL_VARIANTS:
            for m in ("accuracy", "p_correct", "consistency"):
                assert 0.0 <= metrics[when][f"{v}/{m}"] <= 1.0, (when, v, m)
            assert metrics[when][f"{v}/entropy"] >= 0.0
    assert metrics["before"]["accuracy"] == metrics["before"]["base/accuracy"]
    # reward = 0.1·format + 1.0·accuracy on the base prompts
    b = metrics["before"]
    assert b["reward"] == pytest.approx(0.1 * b["format"] + b["accuracy"])


def test_tensorboard_has_periodic_robustness_curves(bare_train):
    scalars = _scalars(bare_train)
    for v in EVAL_VARIANTS:
        steps = [s for s, _ in scalars[f"eval/robustness/{v}/accuracy"]]
        assert steps == [0, 1, 2], (v, steps)  # before, every step, after
    for tag in (
        "eval/robustness/accuracy",
        "eval/robustness/reward",
        "eval/robustness/base/entropy",
        "eval/robustness/wrong_think/consistency",
        "eval/robustness/base/think_chars",
        "train/reward",
        "train/rewards/format/mean",
        "train/rewards/correct/mean",
        "train/rewards/consistent/mean",
        "train/loss",
    ):
        assert tag in scalars, tag


def test_faithfulness_and_augmentation_with_an_llm_judge(tmp_path, demo_model_dir):
    """The policy judges its own reasoning (judge-in-the-loop); R_faith = R × consistent on every sample."""
    from visionrl.robustness.cli import train_main as _main

    out = tmp_path / "faithful"
    _main(
        [
            "--max-steps",
            "1",
            "--eval-every",
            "0",
            "--dataset.eval-size",
            "2",
            "--grpo.prompts-per-step",
            "4",
            "--grpo.sampling.max-new-tokens",
            "24",
            "--eval-max-new-tokens",
            "24",
            "--eval-variants",
            "base",
            "--faithfulness",
            "--augment",
            "--augment-prob",
            "0.25",
            "--judge",
            "self",
            "--output-dir",
            str(out),
        ]
    )
    scalars = _scalars(out)
    assert "train/rewards/faithful/mean" in scalars and "eval/robustness/base/accuracy" in scalars
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert set(sample["rewards"]) == {"faithful", "format", "correct", "consistent"}
    for line in (out / "samples.jsonl").read_text().splitlines():
        r = json.loads(line)["rewards"]
        assert r["faithful"] == pytest.approx((0.1 * r["format"] + r["correct"]) * r["consistent"])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["after"]) >= {"accuracy", "reward", "base/consistency"}


def test_sft_warm_start_stage(tmp_path, demo_model_dir):
    """`--stage sft`: clean MCQ prompts, targets in the perturbation templates' think style."""
    from visionrl.core.data.records import MCQRecord
    from visionrl.robustness.cli import train_main as _main
    from visionrl.robustness.method import sft_target

    rec = MCQRecord(
        "q",
        [],
        "What color is the shape on the left?",
        {"A": "blue", "B": "red"},
        "B",
        {"template": "color_at"},
    )
    assert sft_target(rec) == (
        "<think>Looking at the image, the shape on the left is red. So the answer should be B."
        "</think><answer>B</answer>"
    )
    out = tmp_path / "sft"
    _main(
        [
            "--preset",
            "sft-demo",
            "--max-steps",
            "2",
            "--eval-every",
            "1",
            "--dataset.eval-size",
            "2",
            "--eval-variants",
            "base",
            "wrong_think",
            "--eval-max-new-tokens",
            "24",
            "--output-dir",
            str(out),
        ]
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"before", "step_1", "after"} <= set(metrics) and "wrong_think/accuracy" in metrics["after"]
    assert (out / "model" / "model.safetensors").exists()
    assert [s for s, _ in _scalars(out)["eval/robustness/base/accuracy"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--data", "/nonexistent/data"], "/nonexistent/data"),
        (["--max-steps", "0"], "--max-steps"),
        (["--augment-prob", "0.5"], "--augment-prob"),
        (["--model", "/nonexistent/model"], "--model"),
    ],
)
def test_user_errors_exit_2_with_one_line(tmp_path, capsys, args, needle, demo_model_dir):
    from visionrl.core.cli import run_cli
    from visionrl.robustness.cli import train_main as _main

    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: _main([*args, "--output-dir", str(tmp_path / "o")]))
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert exc.value.code == 2 and len(errors) == 1 and needle in errors[0], errors
    assert not (tmp_path / "o").exists()


def test_malformed_training_rows_exit_2(tmp_path, capsys, demo_model_dir):
    from visionrl.core.cli import run_cli
    from visionrl.robustness.cli import train_main as _main

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "data.jsonl").write_text('{"question": "Q?", "options": ["a"], "answer": "A"}\n')
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: _main(["--data", str(tmp_path / "data"), "--output-dir", str(tmp_path / "o")]))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "data.jsonl row 1" in err and "at least two options" in err, err
