"""What a run checks before it reads data or loads a model (output folder, Hub target, checkpoint identity),
prompt lengths at load time, exported file modes, and metrics that reach TensorBoard before a pre-emption."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest
import torch
from visionrl.core.checkpoints import check_resume_identity
from visionrl.core.config import RunArgs
from visionrl.core.errors import UserError
from visionrl.core.runner import RUN_FILES, check_output_dir


def _run(tmp_path: Path, **kw) -> RunArgs:
    return RunArgs(max_steps=1, accelerator="cpu", output_dir=tmp_path / "run", **kw)


def test_an_output_folder_holding_a_run_is_refused_without_resume_or_overwrite(tmp_path: Path) -> None:
    run = _run(tmp_path)
    check_output_dir(run)  # absent: fine
    (run.output_dir / "checkpoints").mkdir(parents=True)
    (run.output_dir / "samples.jsonl").write_text("{}\n")
    (run.output_dir / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"already holds a run \(checkpoints, samples.jsonl\); continue it with "
                                        r"--resume last, or pass --overwrite"):
        check_output_dir(run)
    check_output_dir(_run(tmp_path, resume="last"))  # continuing it is fine
    check_output_dir(_run(tmp_path, overwrite=True))
    assert sorted(p.name for p in run.output_dir.iterdir()) == ["notes.txt"], "only the run's own files go"
    assert set(RUN_FILES) >= {"checkpoints", "tensorboard", "model", "metrics.json", "samples.jsonl", "config.yaml"}


def test_an_output_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("x")
    with pytest.raises(UserError, match="--output-dir .*run: is a file, not a folder"):
        check_output_dir(_run(tmp_path))
    below = RunArgs(max_steps=1, output_dir=tmp_path / "run" / "sub")
    with pytest.raises(UserError, match="is not a writable folder"):
        check_output_dir(below)


def test_overwrite_and_resume_exclude_each_other() -> None:
    from visionrl.core.checks import check_config

    with pytest.raises(UserError, match="--overwrite True: cannot be combined with --resume"):
        check_config(RunArgs(max_steps=1, overwrite=True, resume="last"))


def _checkpoint(path: Path, run: dict[str, str]) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(2)}, "visionrl": {"step": 3, "eval_results": {}, "run": run}}, path)
    return path


def test_resume_refuses_another_runs_checkpoint(tmp_path: Path) -> None:
    mine = {"cli": "robustness-train", "method": "GRPO", "model": "demo"}
    other = _checkpoint(tmp_path / "sr.ckpt", {"cli": "selfreward-train", "method": "Vision-SR1 GRPO (sum)",
                                               "model": "demo"})
    with pytest.raises(UserError, match=r"written by selfreward-train \(Vision-SR1 GRPO \(sum\) on demo\), not by "
                                        r"this robustness-train run"):
        check_resume_identity(other, mine)
    check_resume_identity(_checkpoint(tmp_path / "mine.ckpt", mine), mine)
    other_model = _checkpoint(tmp_path / "m.ckpt", {**mine, "model": "Qwen/Qwen2.5-VL-7B-Instruct"})
    with pytest.raises(UserError, match="not by this robustness-train run"):
        check_resume_identity(other_model, mine)


@pytest.mark.parametrize(("repo", "message"), [
    ("not a repo!", "--push-to-hub 'not a repo!': not a Hub repo id"),
    ("me/tiny", "--push-to-hub: no Hugging Face token found"),
])
def test_push_target_and_token_are_checked_before_training(repo: str, message: str, fake_hub,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from visionrl.core.hub import check_push

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(UserError, match=message):
        check_push(repo)
    assert not fake_hub.requests


def test_push_token_is_verified_with_the_hub(fake_hub, monkeypatch: pytest.MonkeyPatch) -> None:
    from visionrl.core.hub import check_push

    fake_hub.whoami_status = 401
    with pytest.raises(UserError, match=r"--push-to-hub: the Hub refused the token \(HTTP 401\)"):
        check_push("me/tiny", token="hf_bad")
    fake_hub.whoami_status = 200
    check_push("me/tiny", token="hf_good")
    assert len(fake_hub.find("whoami")) == 2


def test_push_is_refused_in_offline_mode() -> None:
    from visionrl.core.hub import check_push

    with pytest.raises(UserError, match="offline mode is on"):
        check_push("me/tiny", token="hf_x")


def test_overlong_prompts_are_refused_naming_the_record_or_dropped_and_counted(tiny_vlm) -> None:
    from visionrl.core.chat import Prompt
    from visionrl.core.data.lengths import check_prompt_lengths, prompt_token_counts
    from visionrl.core.data.records import VQARecord

    vlm = tiny_vlm("qwen2_5_vl")
    rows = [VQARecord(f"q{i}", [], text, "a") for i, text in enumerate(["short?", "word " * 5000, "also short?"])]
    counts = prompt_token_counts(vlm, [Prompt.simple(r.question) for r in rows])
    assert counts[1] > 5000 > counts[0]
    with pytest.raises(UserError, match=r"--max-prompt-tokens 512: training record 'q1' has a \d+-token prompt; "
                                        r"raise --max-prompt-tokens"):
        check_prompt_lengths(vlm, rows, lambda r: Prompt.simple(r.question), limit=512, what="training")
    kept, dropped, longest = check_prompt_lengths(vlm, rows, lambda r: Prompt.simple(r.question), limit=512,
                                                  policy="drop")
    assert [r.id for r in kept] == ["q0", "q2"] and dropped == 1 and longest == counts[1]


def test_image_tokens_count_toward_the_prompt_length(tiny_vlm) -> None:
    from PIL import Image
    from visionrl.core.chat import Prompt
    from visionrl.core.data.lengths import prompt_token_counts

    vlm = tiny_vlm("qwen2_5_vl")
    text, with_image = prompt_token_counts(vlm, [Prompt.simple("q?"), Prompt.simple("q?", [Image.new("RGB", (56, 56))])])
    assert with_image > text


def test_exported_files_follow_the_umask(tmp_path: Path, tiny_build) -> None:
    from visionrl.core.hub import ModelCardInfo, export_model

    built = tiny_build("qwen2_5_vl")
    model, proc = built.model, built.processor
    old = os.umask(0o022)
    try:
        out = export_model(model, proc, tmp_path / "model", ModelCardInfo("demo", ["shapes"], "GRPO", "0000.00000"))
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}, modes


def test_the_pre_empted_step_reaches_tensorboard(tmp_path: Path, tiny_build) -> None:
    """SIGTERM during step 1: last.ckpt holds 2 steps done, and train/* of steps 0 and 1 are on disk (Lightning
    would write a step's metrics only after the callbacks of its end, after the pre-emption checkpoint)."""
    from lightning.pytorch.callbacks import Callback
    from lightning.pytorch.utilities.exceptions import SIGTERMException
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from visionrl.core.chat import Prompt
    from visionrl.core.cli import build_trainer
    from visionrl.core.hparams import OptimConfig, SFTConfig
    from visionrl.core.lit.datamodules import StepDataModule
    from visionrl.core.lit.sft import SFTExample, SFTModule
    from visionrl.core.vlm.model import load_vlm

    vlm = load_vlm(tiny_build("qwen2_5_vl").path)  # a copy: training must not change the shared tiny model
    examples = [SFTExample(Prompt.simple(f"q{i}?"), f"a{i}") for i in range(8)]
    module = SFTModule(vlm, SFTConfig(batch_size=4, micro_batch_size=4, optim=OptimConfig(lr=1e-3)), examples,
                       max_steps=5)

    class Signal(Callback):
        def on_train_batch_start(self, trainer, pl_module, *args) -> None:
            if pl_module.step_idx == 1:  # SLURM's SIGTERM arrives during step 1
                os.kill(os.getpid(), signal.SIGTERM)

    run = RunArgs(max_steps=5, accelerator="cpu", output_dir=tmp_path / "run", save_every_n_steps=100)
    trainer = build_trainer(run, callbacks=[Signal()], enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(SIGTERMException):
        trainer.fit(module, datamodule=StepDataModule(5))
    steps = set()
    for path in (run.output_dir / "tensorboard").glob("events.out.tfevents.*"):
        for event in LegacyEventFileLoader(str(path)).Load():
            steps |= {event.step for v in event.summary.value if v.tag == "train/loss"}
    assert steps == {0, 1}
    saved = torch.load(run.output_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["visionrl"]["step"] == 2
