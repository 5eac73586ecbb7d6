"""`selfreward-train` killed with SIGKILL, pre-empted with SIGTERM, and resumed (CPU, one thread, fixed seed).

For GRPO and for the SFT stage, a real `selfreward-train` process is SIGKILLed once its second step
checkpoint exists, while the uninterrupted run of the same command goes on in this process. The killed run
is then continued with `--resume last` through the console-script entry (`main()`); for GRPO that run is
first pre-empted with SIGTERM, which must save `last.ckpt` and exit with 143, and resumed once more. Every
step's logged metrics (TensorBoard; the newest write of a step wins) and the exported weights must equal the
uninterrupted run's to 1e-6, which holds only when the weights, the optimizer and LR-scheduler state, the
sampling seeds and the data order all come back. (The killed process logged the steps before the kill, so
those are also compared across processes.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

STEPS = 6
COMMON = (
    f"--max-steps {STEPS} --save-every-n-steps 1 --threads 1 --accelerator cpu --seed 0 "
    "--dataset.eval-size 2 --eval-max-new-tokens 8 --dataset.shapes-train-size 64"
).split()
# lr 1e-3 with a 3-step warm-up: the weights move far beyond the tolerance, and the schedule is mid-ramp
# when the run is killed, so a lost optimizer or scheduler state shows.
GRPO = [*COMMON, "--grpo.prompts-per-step", "2", "--grpo.optim.lr", "1e-3", "--grpo.optim.warmup-steps", "3",
        "--grpo.log-samples-every", "1"]
SFT = [*COMMON, "--preset", "sft-demo", "--sft.batch-size", "4", "--sft.micro-batch-size", "2"]
GRPO_TAGS = (
    "train/loss",
    "train/entropy",
    "train/grad_norm",
    "train/reward",
    "train/completions/mean_length",
    "train/lr",
)
SFT_TAGS = ("train/loss", "train/token_accuracy", "train/grad_norm", "train/lr")
CKPT = re.compile(r"step=(\d+)\.ckpt$")
RANK_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


@pytest.fixture(autouse=True)
def _plain_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Rank 0 of one process; torch's thread count and the SIGTERM handler are restored afterwards, and a
    SIGTERM that arrives outside a fit is ignored instead of ending pytest."""
    for var in RANK_VARS:
        monkeypatch.delenv(var, raising=False)
    threads, handler = torch.get_num_threads(), signal.signal(signal.SIGTERM, lambda *_: None)
    yield
    signal.signal(signal.SIGTERM, handler)
    torch.set_num_threads(threads)


def newest_step_checkpoint(out: Path) -> int:
    folder = out / "checkpoints"
    found = [CKPT.search(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    return max((int(m.group(1)) for m in found if m), default=0)


def when_checkpoint(
    out: Path, step: int, action: Callable[[], object], alive: Callable[[], bool]
) -> threading.Thread:
    """Start a thread that runs `action` once `out` has a step-`step` checkpoint (or gives up when `alive`
    turns False)."""

    def watch() -> None:
        deadline = time.monotonic() + 600
        while newest_step_checkpoint(out) < step and alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if newest_step_checkpoint(out) >= step and alive():
            action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def train(argv: list[str], out: Path) -> int:
    """`selfreward-train ARGV --output-dir OUT` through the console-script entry; returns the exit code."""
    from visionrl.selfreward.cli import train as main

    saved, sys.argv = sys.argv, ["selfreward-train", *argv, "--output-dir", str(out)]
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    finally:
        sys.argv = saved
    return 0


def start_and_sigkill(argv: list[str], out: Path) -> tuple[subprocess.Popen, threading.Thread]:
    """A real `selfreward-train` process, SIGKILLed from a thread once its step-2 checkpoint exists."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    exe = Path(sys.executable).parent / "selfreward-train"
    with (out.parent / "killed.log").open("w") as log:  # the child keeps its own copy of the handle
        proc = subprocess.Popen(
            [str(exe), *argv, "--output-dir", str(out)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=out.parent,
        )
    return proc, when_checkpoint(out, 2, proc.kill, lambda: proc.poll() is None)


def killed_and_straight(argv: list[str], tmp_path: Path) -> tuple[Path, Path]:
    """Run the killed process and, meanwhile, the uninterrupted run here; return (killed dir, straight dir)."""
    out, straight = tmp_path / "run", tmp_path / "straight"
    proc, watcher = start_and_sigkill(argv, out)
    assert train(argv, straight) == 0
    code = proc.wait(timeout=600)
    watcher.join()
    assert code == -signal.SIGKILL, f"exit code {code}:\n" + (tmp_path / "killed.log").read_text()[-3000:]
    assert_interrupted(out)
    return out, straight


def last_step(out: Path) -> int:
    """The step of `last.ckpt`, read the safe way (tensors and plain data only)."""
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True, mmap=True)
    return ckpt["global_step"]


def assert_interrupted(out: Path) -> None:
    """An interrupted run leaves a resumable checkpoint and nothing that looks like a finished run."""
    assert 1 <= last_step(out) < STEPS
    assert not (out / "metrics.json").exists() and not (out / "model").exists()


def logged(out: Path, tags: tuple[str, ...]) -> dict[str, dict[int, float]]:
    """tag -> step -> value over every event file of the run; a step logged again later wins."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    newest: dict[tuple[str, int], tuple[float, float]] = {}
    for path in (out / "tensorboard").glob("events.out.tfevents.*"):
        for event in LegacyEventFileLoader(str(path)).Load():
            for value in event.summary.value:
                key = (value.tag, event.step)
                if value.tag in tags and (key not in newest or event.wall_time >= newest[key][0]):
                    newest[key] = (event.wall_time, value.simple_value)
    table: dict[str, dict[int, float]] = {t: {} for t in tags}
    for (tag, step), (_, value) in newest.items():
        table[tag][step] = value
    return table


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


def assert_same_run(
    resumed: Path, straight: Path, tags: tuple[str, ...], initial: dict[str, torch.Tensor]
) -> None:
    want, got = logged(straight, tags), logged(resumed, tags)
    for tag in tags:
        assert sorted(want[tag]) == list(range(STEPS)), f"{tag}: uninterrupted run logged {sorted(want[tag])}"
        assert sorted(got[tag]) == sorted(want[tag]), f"{tag}: resumed run logged steps {sorted(got[tag])}"
        for step, value in want[tag].items():
            assert got[tag][step] == pytest.approx(value, abs=1e-6), f"{tag} differs at step {step}"
    a, b = weights(straight / "model"), weights(resumed / "model")
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-6, "final weights differ"
    moved = max(float((a[k].float() - initial[k].float()).abs().max()) for k in a)
    assert moved > 1e-4, "training barely moved the weights: the comparison would not notice a lost state"


def test_grpo_survives_sigkill_and_sigterm(
    tmp_path: Path, demo_model_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out, straight = killed_and_straight(GRPO, tmp_path)
    k = last_step(out)

    # SIGTERM (what SLURM sends) once a step checkpoint newer than any the killed run left exists.
    target = max(k, newest_step_checkpoint(out)) + 1
    finished = threading.Event()
    watcher = when_checkpoint(
        out, target, lambda: os.kill(os.getpid(), signal.SIGTERM), lambda: not finished.is_set()
    )
    capfd.readouterr()
    code = train([*GRPO, "--resume", "last"], out)
    finished.set()
    watcher.join()
    err = capfd.readouterr().err
    assert code == 128 + signal.SIGTERM, err[-3000:]
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert last_step(out) >= target, "SIGTERM did not save a newer last.ckpt"
    assert_interrupted(out)

    assert train([*GRPO, "--resume", "last"], out) == 0
    assert last_step(out) == STEPS
    assert_same_run(out, straight, GRPO_TAGS, weights(demo_model_dir))
    # the rollouts of steps run again after a resume replace their first write instead of repeating it
    samples = [(d / "samples.jsonl").read_text(encoding="utf-8").splitlines() for d in (out, straight)]
    assert sorted({json.loads(r)["step"] for r in samples[1]}) == list(range(STEPS))
    assert samples[0] == samples[1]


def test_sft_survives_sigkill(tmp_path: Path, demo_model_dir: Path) -> None:
    out, straight = killed_and_straight(SFT, tmp_path)
    assert train([*SFT, "--resume", "last"], out) == 0
    assert last_step(out) == STEPS
    assert_same_run(out, straight, SFT_TAGS, weights(demo_model_dir))
