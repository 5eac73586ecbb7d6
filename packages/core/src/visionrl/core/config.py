"""Arguments every visionrl CLI shares, as frozen dataclasses whose field docstrings are the `--help`.

A paper package nests them so the flags stay flat (`--max-steps`, not `--run.max-steps`):

    @dataclass(frozen=True)
    class TrainConfig:
        run: FlatRunArgs
        beta: float = 0.0
        '''KL coefficient β (Eq. 3).'''

`validate_run_args` checks what tyro cannot (values that depend on the machine or the file system) and
raises `UserError` naming the flag; call it right after parsing, before anything heavy happens.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro
from visionrl.core.checkpoints import check_checkpoint
from visionrl.core.errors import UserError
from visionrl.core.hparams import GRPOConfig, SFTConfig

# The precisions Lightning accepts that make sense for these models; "16-mixed" needs a GPU.
PRECISIONS = ("32-true", "bf16-mixed", "bf16-true", "16-mixed")


@dataclass(frozen=True, kw_only=True)
class RunArgs:
    """Flags every train CLI shares."""

    model: str = "demo"
    """Policy to train: a Hugging Face hub id, a local model directory, or "demo" (a tiny offline model)."""
    data: str = "shapes"
    """Training data: a Hugging Face dataset id, a local folder (.jsonl/.parquet + images), or "shapes"."""
    output_dir: Path = Path("outputs/run")
    """Run directory: config.yaml, tensorboard/, checkpoints/, model/, metrics.json are written here."""
    max_steps: int
    """Number of optimizer steps to train for (> 0)."""
    devices: int = 1
    """Processes (GPUs, or CPU processes with gloo) per node."""
    num_nodes: int = 1
    """Number of machines; Lightning reads the rank layout from torchrun or SLURM."""
    strategy: Literal["auto", "ddp", "fsdp"] = "auto"
    """Distribution: auto (single process, or DDP when devices × nodes > 1), ddp, or fsdp (GPUs only)."""
    precision: str = "32-true"
    """Numeric precision: 32-true, bf16-mixed, bf16-true, or 16-mixed (GPU only)."""
    seed: int = 0
    """Random seed for weights, sampling and data order (identical on every rank)."""
    resume: str | None = None
    """Resume from a Lightning checkpoint: a path, or "last" for <output-dir>/checkpoints/last.ckpt."""
    push_to_hub: str | None = None
    """After training, upload <output-dir>/model to this Hugging Face repo id (private)."""
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    """Hardware: auto uses GPUs when CUDA sees any, else the CPU."""
    save_every_n_steps: int = 100
    """Write a checkpoint (and refresh last.ckpt) every this many optimizer steps."""
    log_every_n_steps: int = 1
    """Log training metrics to TensorBoard every this many optimizer steps."""
    trust_remote_code: bool = False
    """Allow model/processor code from the hub repo to run (only for repos you trust)."""
    threads: int | None = None
    """Intra-op CPU threads per process (None: cores / processes on the node). Tiny models want 1: their
    ops are too small to split, and a core shared with another process slows every op ~10× (measured)."""


@dataclass(frozen=True, kw_only=True)
class EvalArgs:
    """Flags every eval CLI shares."""

    model: str = "demo"
    """Model to evaluate: a Hugging Face hub id, a local model directory, or "demo"."""
    data: str = "shapes"
    """Benchmark data: a Hugging Face dataset id, a local folder (.jsonl/.parquet + images), or "shapes"."""
    output_dir: Path = Path("outputs/eval")
    """Where metrics.json and samples.jsonl are written."""
    limit: int | None = None
    """Evaluate only the first N records (None: all)."""
    batch_size: int = 8
    """Prompts per forward/generate call."""
    seed: int = 0
    """Random seed for sampling and subsetting."""


# Nest as `run: FlatRunArgs` / `eval: FlatEvalArgs` to keep the contract's flat flag names.
FlatRunArgs = Annotated[RunArgs, tyro.conf.OmitArgPrefixes]
FlatEvalArgs = Annotated[EvalArgs, tyro.conf.OmitArgPrefixes]


def validate_run_args(run: RunArgs) -> None:
    """Raise `UserError` naming the flag if `run` cannot work on this machine; otherwise return None."""
    for flag, value in (
        ("--max-steps", run.max_steps),
        ("--devices", run.devices),
        ("--num-nodes", run.num_nodes),
        ("--save-every-n-steps", run.save_every_n_steps),
        ("--log-every-n-steps", run.log_every_n_steps),
        ("--threads", 1 if run.threads is None else run.threads),
    ):
        if value <= 0:
            raise UserError(f"{flag} must be a positive integer, got {value}.")
    if run.precision not in PRECISIONS:
        raise UserError(
            f"--precision {run.precision!r} is not supported; choose one of {', '.join(PRECISIONS)}."
        )

    use_gpu, available = _hardware(run.accelerator)
    if run.strategy == "fsdp" and not use_gpu:
        raise UserError("--strategy fsdp needs GPUs; use ddp on CPU.")
    if run.precision == "16-mixed" and not use_gpu:
        raise UserError("--precision 16-mixed needs a GPU; use bf16-mixed or 32-true on CPU.")
    if run.devices > available:
        kind = "GPUs" if use_gpu else "CPU cores"
        raise UserError(
            f"--devices {run.devices} is more than the {available} {kind} available on this machine."
        )
    _check_resume(run)


def _hardware(accelerator: str) -> tuple[bool, int]:
    """(uses GPUs, how many devices of that kind this machine has)."""
    if accelerator == "cpu":
        return False, os.cpu_count() or 1
    import torch  # only here: the CPU path and `--help` stay free of the torch import

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if accelerator == "gpu":
        if gpus == 0:
            raise UserError("--accelerator gpu was given but CUDA sees no GPU; use --accelerator cpu.")
        return True, gpus
    return (True, gpus) if gpus else (False, os.cpu_count() or 1)


def _check_resume(run: RunArgs) -> None:
    if run.resume is None:
        return
    if run.resume == "last":
        path = run.output_dir / "checkpoints" / "last.ckpt"
        if not path.exists():
            raise UserError(f"--resume last: there is no {path} yet; start without --resume.")
    else:
        path = Path(run.resume)
        if not path.exists():
            # A directory is fine: FSDP sharded checkpoints are directories.
            raise UserError(f"--resume {run.resume}: no such checkpoint file or directory.")
    check_checkpoint(path)  # before any model is built: a bad or unsafe file fails fast


def validate_grpo(g: GRPOConfig, prefix: str = "--grpo") -> None:
    """Raise `UserError` naming the flag for GRPO settings that cannot work (every GRPO CLI shares these)."""
    checks = [(g.num_generations >= 2, f"{prefix}.num-generations must be at least 2 (GRPO compares a group)"),
              (g.prompts_per_step > 0, f"{prefix}.prompts-per-step must be positive"),
              (g.micro_batch_size > 0 and g.gen_batch_size > 0, f"{prefix} batch sizes must be positive"),
              (g.sampling.max_new_tokens > 0, f"{prefix}.sampling.max-new-tokens must be positive"),
              (g.sampling.temperature > 0, f"{prefix}.sampling.temperature must be positive"),
              (0 < g.sampling.top_p <= 1, f"{prefix}.sampling.top-p must be in (0, 1]"),
              (g.optim.lr > 0, f"{prefix}.optim.lr must be positive")]
    for ok, msg in checks:
        if not ok:
            raise UserError(msg)


def validate_sft(s: SFTConfig, prefix: str = "--sft") -> None:
    """Raise `UserError` naming the flag for SFT settings that cannot work."""
    if s.batch_size <= 0 or s.micro_batch_size <= 0:
        raise UserError(f"{prefix} batch sizes must be positive")
    if s.optim.lr <= 0:
        raise UserError(f"{prefix}.optim.lr must be positive")
