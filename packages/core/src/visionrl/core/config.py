"""Arguments every visionrl CLI shares, as frozen dataclasses whose field docstrings are the `--help`.

A paper package nests them so the flags stay flat (`--max-steps`, not `--run.max-steps`):

    @dataclass(frozen=True)
    class TrainConfig(Checked):
        run: FlatRunArgs
        beta: float = 0.0
        '''KL coefficient β (Eq. 3).'''
        RANGES = {"beta": NON_NEGATIVE}

Value ranges live with each dataclass (`RANGES`, `problems()`; see `visionrl.core.checks`) and are checked by
`parse_config` before anything heavy happens. `validate_run_args` checks what depends on this machine or its
file system (GPUs, core count, the `--resume` file) and raises `UserError` naming the flag.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import tyro
from visionrl.core.checkpoints import check_checkpoint
from visionrl.core.checks import NON_NEGATIVE, POSITIVE, Checked, Range
from visionrl.core.errors import UserError

# The precisions Lightning accepts that make sense for these models; "16-mixed" needs a GPU.
PRECISIONS = ("32-true", "bf16-mixed", "bf16-true", "16-mixed")


@dataclass(frozen=True, kw_only=True)
class RunArgs(Checked):
    """Flags every train CLI shares."""

    RANGES: ClassVar[dict[str, Range]] = {
        "max_steps": POSITIVE, "devices": POSITIVE, "num_nodes": POSITIVE, "seed": NON_NEGATIVE,
        "save_every_n_steps": POSITIVE, "log_every_n_steps": POSITIVE, "eval_every": NON_NEGATIVE,
        "threads": POSITIVE, "max_prompt_tokens": POSITIVE}

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.precision not in PRECISIONS:
            yield "precision", f"is not supported; choose one of {', '.join(PRECISIONS)}"
        if self.quiet and self.verbose:
            yield "quiet", "cannot be combined with --verbose"
        if self.overwrite and self.resume is not None:
            yield "overwrite", "cannot be combined with --resume (one starts over, the other continues)"

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
    """Random seed for weights, sampling and data order (identical on every rank; >= 0)."""
    eval_every: int = 0
    """Also run the held-out evaluation every N training steps (0: only before and after training); the
    numbers go to TensorBoard as `eval/<benchmark>/<metric>` and to metrics.json as `step_<N>`."""
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
    max_prompt_tokens: int = 8192
    """Longest prompt, in tokens as the model sees it (chat template and image tokens included), checked
    for every training and held-out record once the model has loaded (EasyR1: max_prompt_length)."""
    overlong_prompts: Literal["error", "drop"] = "error"
    """A prompt over --max-prompt-tokens: stop naming its record, or drop such records and count them."""
    overwrite: bool = False
    """Start over in an --output-dir that already holds a run (its checkpoints, curves, samples, model and
    metrics are deleted first); without it such a folder is refused unless --resume continues it."""
    quiet: bool = False
    """Print only errors and the closing summary."""
    verbose: bool = False
    """Also show the libraries' own messages (Lightning, transformers) that are hidden by default."""


@dataclass(frozen=True, kw_only=True)
class EvalArgs(Checked):
    """Flags every eval CLI shares."""

    RANGES: ClassVar[dict[str, Range]] = {"limit": POSITIVE, "batch_size": POSITIVE, "seed": NON_NEGATIVE,
                                          "max_prompt_tokens": POSITIVE}

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
    """Random seed for sampling and subsetting (>= 0)."""
    max_prompt_tokens: int = 8192
    """Longest prompt in tokens (chat template and image tokens included), checked for every record before
    generating."""
    overlong_prompts: Literal["error", "drop"] = "error"
    """A prompt over --max-prompt-tokens: stop naming its record, or drop such records and count them."""
    quiet: bool = False
    """Print only errors and the closing summary."""
    verbose: bool = False
    """Also show the libraries' own messages (Lightning, transformers) that are hidden by default."""


@dataclass(frozen=True)
class DataArgs(Checked):
    """Where training prompts and the held-out set come from (`--data` names the training source); a paper
    package extends it with its own column maps."""

    RANGES: ClassVar[dict[str, Range]] = {"limit": POSITIVE, "eval_size": POSITIVE, "shapes_train_size": POSITIVE}

    split: str = "train"
    """Split of a hub dataset."""
    limit: int | None = None
    """Train on at most this many records (None: all; applies to `shapes` too)."""
    eval_data: str | None = None
    """Held-out set (hub id or local dir); default: the last `eval_size` records of `--data` (shapes: a
    separate held-out world)."""
    eval_size: int = 64
    """Held-out records evaluated greedily before and after training."""
    shapes_train_size: int = 2000
    """Generated training records when `--data shapes`."""


# Nest as `run: FlatRunArgs` / `eval: FlatEvalArgs` to keep the contract's flat flag names.
FlatRunArgs = Annotated[RunArgs, tyro.conf.OmitArgPrefixes]
FlatEvalArgs = Annotated[EvalArgs, tyro.conf.OmitArgPrefixes]


def validate_run_args(run: RunArgs) -> None:
    """Raise `UserError` naming the flag if `run` cannot work on this machine; otherwise return None.
    (Value ranges were checked at parse time, `visionrl.core.checks`.)"""
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
