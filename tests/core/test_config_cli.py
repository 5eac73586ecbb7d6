"""Tests for the shared CLI plumbing: presets, flat flags, --help, user errors, the run dir and the Trainer.

Only the last two tests import Lightning (~10 s on a small machine); everything above stays import-light.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from visionrl.core.checkpoints import resolve_resume
from visionrl.core.cli import parse_config, prepare_output_dir, run_cli
from visionrl.core.config import FlatRunArgs, RunArgs, validate_run_args
from visionrl.core.errors import UserError


@dataclass(frozen=True)
class _TrainConfig:
    run: FlatRunArgs
    beta: float = 0.0
    """KL coefficient β (Eq. 3)."""
    max_new_tokens: int = 32
    """Completion length budget."""
    hf_token: str | None = None
    """Must never reach config.yaml."""


PRESETS = {
    "demo": _TrainConfig(run=RunArgs(max_steps=5)),
    "paper-7b": _TrainConfig(
        run=RunArgs(max_steps=500, model="Qwen/Qwen2.5-VL-7B-Instruct", devices=8), beta=0.04
    ),
}
RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # The suite may itself run under a launcher; these tests model a plain rank-0 process.
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # keep tyro's help on unwrapped lines


def parse(*args: str) -> _TrainConfig:
    return parse_config(_TrainConfig, PRESETS, args=list(args), prog="x-train", description="Train X.")


def raising(exc: BaseException):
    def main() -> None:
        raise exc

    return main


def cpu_run(tmp_path: Path, **changes) -> RunArgs:
    args = {"max_steps": 5, "accelerator": "cpu", "output_dir": tmp_path / "run"} | changes
    return RunArgs(**args)


# ---------------------------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("argv", "max_steps", "devices", "beta"),
    [
        ([], 5, 1, 0.0),
        (["--preset", "paper-7b"], 500, 8, 0.04),
        (["--preset=paper-7b"], 500, 8, 0.04),
        (["--preset", "paper-7b", "--devices", "2"], 500, 2, 0.04),
        (["--devices", "2", "--preset", "paper-7b", "--beta", "0.1"], 500, 2, 0.1),
        (["--max-steps", "3"], 3, 1, 0.0),
    ],
)
def test_preset_then_overrides(argv: list[str], max_steps: int, devices: int, beta: float) -> None:
    cfg = parse(*argv)
    assert (cfg.run.max_steps, cfg.run.devices, cfg.beta) == (max_steps, devices, beta)


def test_flags_are_flat_and_typed() -> None:
    cfg = parse(
        "--model",
        "m",
        "--data",
        "d",
        "--output-dir",
        "o",
        "--num-nodes",
        "2",
        "--strategy",
        "ddp",
        "--precision",
        "bf16-mixed",
        "--seed",
        "7",
        "--resume",
        "last",
        "--push-to-hub",
        "me/x",
        "--accelerator",
        "cpu",
        "--save-every-n-steps",
        "9",
        "--log-every-n-steps",
        "3",
        "--trust-remote-code",
    )
    assert cfg.run == RunArgs(
        model="m",
        data="d",
        output_dir=Path("o"),
        max_steps=5,
        num_nodes=2,
        strategy="ddp",
        precision="bf16-mixed",
        seed=7,
        resume="last",
        push_to_hub="me/x",
        accelerator="cpu",
        save_every_n_steps=9,
        log_every_n_steps=3,
        trust_remote_code=True,
    )
    assert cfg.run.model == "m" and isinstance(cfg.run.output_dir, Path)


def test_parsing_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    parse("--output-dir", "somewhere/run")
    assert list(tmp_path.iterdir()) == []


def test_help_shows_docstrings_presets_and_preset_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        parse("--preset", "paper-7b", "--help")
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--max-steps" in out and "--run.max-steps" not in out
    assert "Number of optimizer steps to train for" in out  # a field docstring
    assert "KL coefficient β" in out
    assert "--preset NAME" in out and "demo (default), paper-7b" in out
    assert "Qwen/Qwen2.5-VL-7B-Instruct" in out and "(default: 500)" in out  # the chosen preset's values


@pytest.mark.parametrize("argv", [["--bogus", "1"], ["--run.max-steps", "3"], ["--max-steps", "many"]])
def test_bad_flag_exits_2_and_reports_once(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """tyro's boxed parse error becomes one line naming the flag."""
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: parse(*argv))
    assert exc.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and captured.out == ""
    assert argv[0].split("=")[0] in lines[0] or "Unrecognized" in lines[0], lines[0]


@pytest.mark.parametrize("argv", [["--preset", "nope"], ["--preset=nope"], ["--preset"]])
def test_unknown_preset_is_a_user_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: parse(*argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --preset") and "available presets: demo, paper-7b" in err


# ------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"max_steps": 0}, "--max-steps"),
        ({"devices": -1}, "--devices"),
        ({"num_nodes": 0}, "--num-nodes"),
        ({"save_every_n_steps": 0}, "--save-every-n-steps"),
        ({"log_every_n_steps": 0}, "--log-every-n-steps"),
        ({"threads": 0}, "--threads"),
        ({"devices": (os.cpu_count() or 1) + 1}, "--devices"),
        ({"strategy": "fsdp"}, "--strategy fsdp needs GPUs; use ddp on CPU"),
        ({"precision": "bf17"}, "--precision"),
        ({"precision": "16-mixed"}, "--precision 16-mixed"),
        ({"resume": "/no/such/file.ckpt"}, "--resume /no/such/file.ckpt"),
        ({"resume": "last"}, "--resume last"),
    ],
)
def test_validate_names_the_flag(tmp_path: Path, changes: dict, flag: str) -> None:
    """Ranges are checked at parse time (`check_config`), machine facts by `validate_run_args`."""
    from visionrl.core.checks import check_config

    run = cpu_run(tmp_path, **changes)
    with pytest.raises(UserError, match="^" + flag.replace("+", r"\+")):
        check_config(run)
        validate_run_args(run)


def test_validate_accepts_good_args_and_existing_last(tmp_path: Path) -> None:
    import torch

    validate_run_args(cpu_run(tmp_path, devices=1, precision="bf16-mixed", strategy="ddp"))
    run = cpu_run(tmp_path, resume="last")
    (run.output_dir / "checkpoints").mkdir(parents=True)
    # --resume reads the file as data (weights_only) while validating: it must be a real checkpoint.
    torch.save({"global_step": 3, "state_dict": {}}, run.output_dir / "checkpoints" / "last.ckpt")
    validate_run_args(run)
    assert resolve_resume(run) == str(run.output_dir / "checkpoints" / "last.ckpt")
    assert resolve_resume(dataclasses.replace(run, resume="a.ckpt")) == "a.ckpt"


# --------------------------------------------------------------------------------------- output dir


def test_prepare_output_dir_writes_config_without_secrets(tmp_path: Path) -> None:
    cfg = dataclasses.replace(PRESETS["demo"], hf_token="hf_SECRETTOKEN123")
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, output_dir=tmp_path / "out"))
    out = prepare_output_dir(cfg.run, cfg)
    text = (out / "config.yaml").read_text()
    record = yaml.safe_load(text)
    assert "hf_SECRET" not in text and "hf_token" not in record
    assert record["max_new_tokens"] == 32  # "token" inside a hyperparameter name is not a secret
    assert record["run"]["output_dir"] == str(tmp_path / "out") and record["run"]["max_steps"] == 5


def test_prepare_output_dir_is_rank_zero_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    out = prepare_output_dir(tmp_path / "out", PRESETS["demo"])
    assert out == tmp_path / "out" and not out.exists()


# ------------------------------------------------------------------------------------------- run_cli


def test_run_cli_maps_user_error_to_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_cli(raising(UserError("--data foo: no such dataset.")))
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.err == "error: --data foo: no such dataset.\n" and "Traceback" not in captured.out


def test_run_cli_is_silent_on_other_ranks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(SystemExit) as exc:
        run_cli(raising(UserError("bad")))
    assert exc.value.code == 2 and capsys.readouterr().err == ""


def test_run_cli_maps_data_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad dataset row is a user error too (`DataError` is a `UserError`)."""
    from visionrl.core.data.validate import DataError

    with pytest.raises(SystemExit) as exc:
        run_cli(raising(DataError("rows.jsonl line 3: missing 'answer'.")))
    assert exc.value.code == 2 and capsys.readouterr().err == "error: rows.jsonl line 3: missing 'answer'.\n"


def test_run_cli_lets_bugs_through_and_maps_exit_codes() -> None:
    with pytest.raises(ZeroDivisionError):
        run_cli(lambda: 1 // 0)
    with pytest.raises(SystemExit) as exc:
        run_cli(raising(KeyboardInterrupt()))
    assert exc.value.code == 130
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: 3)
    assert exc.value.code == 3
    run_cli(lambda: None)  # success returns normally


# ------------------------------------------------------------------------- Trainer (imports Lightning)


def test_build_trainer_follows_the_output_contract(tmp_path: Path) -> None:
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy, SingleDeviceStrategy
    from visionrl.core.checkpoints import AtomicCheckpointIO, PreemptionCallback
    from visionrl.core.cli import _strategy, build_trainer

    run = cpu_run(tmp_path, save_every_n_steps=2)
    trainer = build_trainer(run, enable_progress_bar=False)
    assert Path(trainer.logger.log_dir) == run.output_dir / "tensorboard"
    ckpt = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint))
    assert Path(ckpt.dirpath) == run.output_dir / "checkpoints" and ckpt.save_last
    assert any(isinstance(c, PreemptionCallback) for c in trainer.callbacks)
    assert isinstance(trainer.strategy, SingleDeviceStrategy)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert trainer.max_steps == 5 and not list(tmp_path.iterdir())  # building writes nothing

    ddp = build_trainer(dataclasses.replace(run, devices=2), max_steps=7)
    assert isinstance(ddp.strategy, DDPStrategy) and ddp.max_steps == 7
    assert isinstance(ddp.strategy.checkpoint_io, AtomicCheckpointIO)
    fsdp_run = dataclasses.replace(run, strategy="fsdp", accelerator="auto")
    with pytest.raises(UserError, match="^--strategy fsdp needs GPUs"):
        validate_run_args(fsdp_run)
    # The strategy object itself builds on CPU; only a Trainer would insist on GPUs.
    fsdp = _strategy(fsdp_run, {torch.nn.Linear}, find_unused_parameters=False)
    assert isinstance(fsdp, FSDPStrategy) and fsdp._state_dict_type == "full"
    assert fsdp._activation_checkpointing_kwargs and "auto_wrap_policy" in fsdp.kwargs


def test_sigterm_saves_last_ckpt_and_resume_continues(tmp_path: Path) -> None:
    """SIGTERM during step 3 -> last.ckpt at step 3, exit 143; --resume last then trains on to step 6."""
    import lightning
    import torch
    from visionrl.core.cli import build_trainer

    class Tiny(lightning.LightningModule):
        def __init__(self, kill_at: int | None) -> None:
            super().__init__()
            self.layer, self.kill_at = torch.nn.Linear(4, 1), kill_at

        def training_step(self, batch, batch_idx):
            if self.global_step + 1 == self.kill_at:
                signal.raise_signal(signal.SIGTERM)  # what a scheduler sends on preemption
            return self.layer(batch).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.randn(64, 4), batch_size=8)

    run = cpu_run(tmp_path, save_every_n_steps=2)
    trainer = build_trainer(run, enable_progress_bar=False, enable_model_summary=False)
    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: trainer.fit(Tiny(kill_at=3)))
    assert exc.value.code == 143
    ckpt_dir = run.output_dir / "checkpoints"
    last = torch.load(ckpt_dir / "last.ckpt", weights_only=False)
    assert last["global_step"] == 3
    assert (run.output_dir / "tensorboard").is_dir()
    assert not list(ckpt_dir.glob("*.tmp"))
    assert signal.getsignal(signal.SIGTERM) is handler_before  # Lightning restored the test's handler

    resumed = dataclasses.replace(run, resume="last")
    validate_run_args(resumed)
    trainer = build_trainer(resumed, max_steps=6, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(kill_at=None), ckpt_path=resolve_resume(resumed))
    assert trainer.global_step == 6
    # Lightning refreshes last.ckpt with each periodic save (every 2 steps here), keeping the newest two.
    assert torch.load(ckpt_dir / "last.ckpt", weights_only=False)["global_step"] == 6
    assert {p.name for p in ckpt_dir.iterdir()} == {"last.ckpt", "epoch=0-step=4.ckpt", "epoch=0-step=6.ckpt"}
